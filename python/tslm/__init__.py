"""tslm — Python bindings of libtslm.so, the embeddable runtime for time-series language models.

A thin ctypes layer over the C API (include/tslm.h); nothing is implemented twice. The library
is opened with ``ctypes.CDLL``, which releases the GIL during every library call, so threads
that each drive their own Session of one Model run in parallel.

    import tslm
    with tslm.Model("basicmotions-q8_0.tslm") as model, model.session() as s:
        values, names = tslm.read_csv("demo/basicmotions/test/10_running.csv")
        s.append_recording(values, names=names)
        print(s.generate(160), s.last_answer)
"""

from ._lib import ABI_VERSION, library_path
from ._lib import lib as _libfn
from .errors import (BufferTooSmallError, CancelledError, ContextFullError, FormatError, InternalError,
                     InvalidArgumentError, LibraryNotFoundError, NoAnswerError, AbortedError, TslmError, TslmIOError, UnsupportedError,
                     WrongKindError)
from .model import (KIND_CLASSIFIER, KIND_FORECASTER, KIND_TEXT, Forecast, ForecastInfo, GenerationStats, Model,
                    Session)
from .series import read_csv

__version__ = "0.1.0"

__all__ = [
    "Model", "Session", "Forecast", "ForecastInfo", "GenerationStats", "read_csv",
    "TslmError", "TslmIOError", "FormatError", "InvalidArgumentError", "UnsupportedError", "WrongKindError",
    "ContextFullError", "BufferTooSmallError", "CancelledError", "InternalError", "NoAnswerError", "AbortedError",
    "LibraryNotFoundError",
    "KIND_TEXT", "KIND_CLASSIFIER", "KIND_FORECASTER", "ABI_VERSION",
    "version", "abi_version", "library_path", "status_name",
]


def version() -> str:
    """The library's version (tslm_version), e.g. "0.1.0"."""
    return _libfn().tslm_version().decode()


def abi_version() -> int:
    """The library's ABI version (tslm_abi_version); equal to ABI_VERSION once loaded."""
    return int(_libfn().tslm_abi_version())


def status_name(status: int) -> str:
    """The constant name of a status code (tslm_status_name)."""
    return _libfn().tslm_status_name(int(status)).decode()
