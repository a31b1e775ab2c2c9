"""Typed exceptions for the status codes of include/tslm.h.

Every failed library call raises a subclass of :class:`TslmError` chosen by its status code; the
message is the library's own (``tslm_last_error()``), which names the argument, file or tensor at
fault. Errors found by the Python layer before a call (a closed handle, an array of the wrong
shape) raise the same classes with the matching status.
"""

from __future__ import annotations

# Status codes, as in include/tslm.h.
TSLM_OK = 0
TSLM_ERR_IO = -1
TSLM_ERR_FORMAT = -2
TSLM_ERR_INVALID_ARGUMENT = -3
TSLM_ERR_UNSUPPORTED = -4
TSLM_ERR_WRONG_KIND = -5
TSLM_ERR_CONTEXT_FULL = -6
TSLM_ERR_BUFFER_TOO_SMALL = -7
TSLM_ERR_CANCELLED = -8
TSLM_ERR_INTERNAL = -9
TSLM_ERR_NO_ANSWER = -10
TSLM_ERR_ABORTED = -11


class TslmError(Exception):
    """A failed tslm call. ``status`` is the TSLM_ERR_* code, ``status_name`` its name."""

    status: int = TSLM_ERR_INTERNAL
    status_name: str = "TSLM_ERR_INTERNAL"

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status
            self.status_name = _NAMES.get(status, f"status {status}")

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class TslmIOError(TslmError, OSError):
    """TSLM_ERR_IO: a file could not be opened, read or written."""
    status, status_name = TSLM_ERR_IO, "TSLM_ERR_IO"


class FormatError(TslmError):
    """TSLM_ERR_FORMAT: a file is malformed, truncated or fails a checksum."""
    status, status_name = TSLM_ERR_FORMAT, "TSLM_ERR_FORMAT"


class InvalidArgumentError(TslmError, ValueError):
    """TSLM_ERR_INVALID_ARGUMENT: a closed handle, a bad length or shape, NaN/Inf, ..."""
    status, status_name = TSLM_ERR_INVALID_ARGUMENT, "TSLM_ERR_INVALID_ARGUMENT"


class UnsupportedError(TslmError):
    """TSLM_ERR_UNSUPPORTED: an architecture, dtype or CPU feature this build lacks."""
    status, status_name = TSLM_ERR_UNSUPPORTED, "TSLM_ERR_UNSUPPORTED"


class WrongKindError(TslmError):
    """TSLM_ERR_WRONG_KIND: the model's kind cannot do this (e.g. forecast with a text model)."""
    status, status_name = TSLM_ERR_WRONG_KIND, "TSLM_ERR_WRONG_KIND"


class ContextFullError(TslmError):
    """TSLM_ERR_CONTEXT_FULL: the prompt or generation does not fit the session's context."""
    status, status_name = TSLM_ERR_CONTEXT_FULL, "TSLM_ERR_CONTEXT_FULL"


class BufferTooSmallError(TslmError):
    """TSLM_ERR_BUFFER_TOO_SMALL (the package sizes its buffers itself; seen only on a bug)."""
    status, status_name = TSLM_ERR_BUFFER_TOO_SMALL, "TSLM_ERR_BUFFER_TOO_SMALL"


class CancelledError(TslmError):
    """TSLM_ERR_CANCELLED: a generation callback returned False."""
    status, status_name = TSLM_ERR_CANCELLED, "TSLM_ERR_CANCELLED"


class InternalError(TslmError):
    """TSLM_ERR_INTERNAL: a bug in the library; please report it with the message."""
    status, status_name = TSLM_ERR_INTERNAL, "TSLM_ERR_INTERNAL"


class NoAnswerError(TslmError):
    """TSLM_ERR_NO_ANSWER: no sampled answer names a choice (Model.analyze)."""
    status, status_name = TSLM_ERR_NO_ANSWER, "TSLM_ERR_NO_ANSWER"


class AbortedError(TslmError):
    """TSLM_ERR_ABORTED: the session's abort callback stopped the call (Session.set_abort_callback)."""
    status, status_name = TSLM_ERR_ABORTED, "TSLM_ERR_ABORTED"


class LibraryNotFoundError(TslmError, ImportError):
    """libtslm.so was not found, or its ABI version is not the one this package was written for."""
    status, status_name = TSLM_ERR_UNSUPPORTED, "TSLM_ERR_UNSUPPORTED"


_CLASSES: dict[int, type[TslmError]] = {
    TSLM_ERR_IO: TslmIOError,
    TSLM_ERR_FORMAT: FormatError,
    TSLM_ERR_INVALID_ARGUMENT: InvalidArgumentError,
    TSLM_ERR_UNSUPPORTED: UnsupportedError,
    TSLM_ERR_WRONG_KIND: WrongKindError,
    TSLM_ERR_CONTEXT_FULL: ContextFullError,
    TSLM_ERR_BUFFER_TOO_SMALL: BufferTooSmallError,
    TSLM_ERR_CANCELLED: CancelledError,
    TSLM_ERR_INTERNAL: InternalError,
    TSLM_ERR_NO_ANSWER: NoAnswerError,
    TSLM_ERR_ABORTED: AbortedError,
}
_NAMES = {code: cls.status_name for code, cls in _CLASSES.items()}


def error_for_status(status: int, message: str) -> TslmError:
    """The exception for a status code (an unknown negative code becomes a TslmError)."""
    cls = _CLASSES.get(status)
    if cls is None:
        return TslmError(f"{message} (unknown status {status})", status)
    return cls(message)
