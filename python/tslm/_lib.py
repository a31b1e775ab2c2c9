"""Loading libtslm.so and declaring the C ABI of include/tslm.h with ctypes.

The library is opened with :class:`ctypes.CDLL` (not ``PyDLL``): ctypes releases the GIL for the
duration of every call through a CDLL function, so model loading, prompt processing, generation
and forecasting run in parallel with other Python threads. Callbacks from the library (the token
callback of generation) take the GIL back while they run Python code.

Where the library is looked for, in order:

1. the ``TSLM_LIBRARY`` environment variable (a path to the .so);
2. next to this package (``tslm/libtslm.so``, copied there by ``pip install`` when the repository's
   library was built);
3. the repository's ``.build/release/libtslmc.so`` (``make lib``), searched upward from this
   package's folder, so a source checkout on ``PYTHONPATH`` works;
4. ``ctypes.util.find_library("tslm")`` (``make install`` into a prefix the loader knows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import (POINTER, Structure, c_bool, c_char_p, c_double, c_float, c_int32, c_int64,
                    c_size_t, c_uint32, c_uint64, c_void_p)
from pathlib import Path

from .errors import LibraryNotFoundError, TSLM_OK, error_for_status

#: The TSLM_ABI_VERSION of the include/tslm.h this package was written against.
ABI_VERSION = 3

# ---------------------------------------------------------------------------------------------
# Structs: field for field as in include/tslm.h (ctypes applies the platform's C alignment rules,
# so padding matches; tests/test_abi.py checks sizes and offsets against a C compiler's).
# ---------------------------------------------------------------------------------------------


class ModelParams(Structure):
    _fields_ = [
        ("n_threads", c_int32),
        ("use_mmap", c_bool),
        ("verify_checksums", c_bool),
        ("context_length", c_int32),
    ]


class SessionParams(Structure):
    _fields_ = [
        ("context_length", c_int32),
        ("kv_type", c_int32),
    ]


class SamplerParams(Structure):
    _fields_ = [
        ("temperature", c_float),
        ("top_k", c_int32),
        ("top_p", c_float),
        ("min_p", c_float),
        ("repeat_penalty", c_float),
        ("repeat_window", c_int32),
        ("seed", c_uint64),
    ]


class GenerateParams(Structure):
    _fields_ = [
        ("max_tokens", c_int32),
        ("sampler", SamplerParams),
        ("stop", POINTER(c_char_p)),
        ("n_stop", c_int32),
    ]


class ChatMessage(Structure):
    _fields_ = [
        ("role", c_char_p),
        ("content", c_char_p),
    ]


class GenerationStats(Structure):
    _fields_ = [
        ("prompt_tokens", c_int32),
        ("generated_tokens", c_int32),
        ("prompt_seconds", c_double),
        ("generate_seconds", c_double),
        ("stop_reason", c_int32),
    ]


class ForecastParams(Structure):
    _fields_ = [
        ("horizon", c_int32),
        ("quantile_levels", POINTER(c_float)),
        ("n_quantiles", c_int32),
        ("n_samples", c_int32),
        ("seed", c_uint64),
        ("greedy", c_bool),
        ("context", c_char_p),
    ]


class ForecastInfo(Structure):
    _fields_ = [
        ("input_channels", c_int32),
        ("output_channels", c_int32),
        ("window", c_int32),
        ("max_horizon", c_int32),
    ]


class AnalyzeParams(Structure):
    _fields_ = [
        ("n_samples", c_int32),
        ("seed", c_uint64),
        ("greedy", c_bool),
    ]


#: The C structs by their C names, for the ABI test.
STRUCTS = {
    "tslm_model_params": ModelParams,
    "tslm_session_params": SessionParams,
    "tslm_sampler_params": SamplerParams,
    "tslm_generate_params": GenerateParams,
    "tslm_chat_message": ChatMessage,
    "tslm_generation_stats": GenerationStats,
    "tslm_forecast_params": ForecastParams,
    "tslm_forecast_info": ForecastInfo,
    "tslm_analyze_params": AnalyzeParams,
}

TOKEN_CALLBACK = ctypes.CFUNCTYPE(c_bool, c_char_p, c_void_p)
LOG_CALLBACK = ctypes.CFUNCTYPE(None, c_int32, c_char_p, c_void_p)
PROGRESS_CALLBACK = ctypes.CFUNCTYPE(None, c_int64, c_int64, c_void_p)
ABORT_CALLBACK = ctypes.CFUNCTYPE(c_bool, c_void_p)
LOAD_PROGRESS_CALLBACK = ctypes.CFUNCTYPE(c_bool, c_int64, c_int64, c_void_p)

_model_p = c_void_p
_session_p = c_void_p
_i32p = POINTER(c_int32)
_f32p = POINTER(c_float)
_sizep = POINTER(c_size_t)

# name: (restype, argtypes)
_PROTOTYPES = {
    "tslm_version": (c_char_p, []),
    "tslm_abi_version": (c_uint32, []),
    "tslm_status_name": (c_char_p, [c_int32]),
    "tslm_last_error": (c_char_p, []),
    "tslm_set_log_callback": (None, [LOG_CALLBACK, c_void_p]),
    "tslm_model_default_params": (ModelParams, []),
    "tslm_model_load": (c_int32, [c_char_p, ModelParams, POINTER(_model_p)]),
    "tslm_model_load_with_progress": (c_int32, [c_char_p, ModelParams, LOAD_PROGRESS_CALLBACK, c_void_p,
                                                POINTER(_model_p)]),
    "tslm_model_free": (c_int32, [_model_p]),
    "tslm_model_kind": (c_int32, [_model_p]),
    "tslm_model_architecture": (c_char_p, [_model_p]),
    "tslm_model_context_length": (c_int32, [_model_p]),
    "tslm_model_vocab_size": (c_int32, [_model_p]),
    "tslm_model_meta": (c_int32, [_model_p, c_char_p, c_void_p, c_size_t, _sizep]),
    "tslm_tokenize": (c_int32, [_model_p, c_char_p, c_bool, c_bool, _i32p, c_size_t, _sizep]),
    "tslm_tokenize_n": (c_int32, [_model_p, c_char_p, c_size_t, c_bool, c_bool, _i32p, c_size_t, _sizep]),
    "tslm_detokenize": (c_int32, [_model_p, _i32p, c_size_t, c_bool, c_void_p, c_size_t, _sizep]),
    "tslm_chat_apply_template": (c_int32, [_model_p, POINTER(ChatMessage), c_size_t, c_void_p, c_size_t, _sizep]),
    "tslm_session_default_params": (SessionParams, []),
    "tslm_session_new": (c_int32, [_model_p, SessionParams, POINTER(_session_p)]),
    "tslm_session_free": (c_int32, [_session_p]),
    "tslm_session_reset": (c_int32, [_session_p]),
    "tslm_session_position": (c_int32, [_session_p]),
    "tslm_session_set_progress_callback": (c_int32, [_session_p, PROGRESS_CALLBACK, c_void_p]),
    "tslm_session_set_abort_callback": (c_int32, [_session_p, ABORT_CALLBACK, c_void_p]),
    "tslm_session_context_tokens": (c_int32, [_session_p, _i32p, c_size_t, _sizep]),
    "tslm_session_append_text": (c_int32, [_session_p, c_char_p, c_bool]),
    "tslm_session_append_text_n": (c_int32, [_session_p, c_char_p, c_size_t, c_bool]),
    "tslm_session_append_series": (c_int32, [_session_p, _f32p, c_int64, c_int32, c_char_p, c_char_p]),
    "tslm_session_append_recording": (c_int32, [_session_p, _f32p, c_int64, c_int32, POINTER(c_char_p), c_char_p]),
    "tslm_sampler_default_params": (SamplerParams, []),
    "tslm_generate_default_params": (GenerateParams, []),
    "tslm_session_generate": (c_int32, [_session_p, GenerateParams, TOKEN_CALLBACK, c_void_p]),
    "tslm_session_last_text": (c_int32, [_session_p, c_void_p, c_size_t, _sizep]),
    "tslm_session_last_answer": (c_int32, [_session_p, c_void_p, c_size_t, _sizep]),
    "tslm_session_last_tokens": (c_int32, [_session_p, _i32p, c_size_t, _sizep]),
    "tslm_session_logits": (c_int32, [_session_p, _f32p, c_size_t, _sizep]),
    "tslm_session_last_stats": (c_int32, [_session_p, POINTER(GenerationStats)]),
    "tslm_forecast_default_params": (ForecastParams, []),
    "tslm_model_forecast_info": (c_int32, [_model_p, POINTER(ForecastInfo)]),
    "tslm_forecast": (c_int32, [_model_p, _f32p, c_int64, ForecastParams, _f32p, _f32p]),
    "tslm_forecast_channels": (c_int32, [_model_p, _f32p, c_int64, c_int32, ForecastParams, _f32p, _f32p]),
    "tslm_analyze_default_params": (AnalyzeParams, []),
    "tslm_model_analyze": (c_int32, [_model_p, _f32p, c_int64, c_char_p, AnalyzeParams, c_void_p, c_size_t, _sizep]),
}


def _candidates() -> list[tuple[str, str]]:
    """(where, path) pairs in lookup order; paths that do not exist are left out except the env var."""
    found: list[tuple[str, str]] = []
    env = os.environ.get("TSLM_LIBRARY")
    if env:
        found.append(("TSLM_LIBRARY", env))
        return found  # an explicit choice is not second-guessed
    here = Path(__file__).resolve().parent
    bundled = here / "libtslm.so"
    if bundled.is_file():
        found.append(("next to the package", str(bundled)))
    for parent in here.parents:
        built = parent / ".build" / "release" / "libtslmc.so"
        if built.is_file() and (parent / "include" / "tslm.h").is_file():
            found.append(("the repository's .build/release", str(built)))
            break
    system = ctypes.util.find_library("tslm")
    if system:
        found.append(("ctypes.util.find_library('tslm')", system))
    return found


def _open() -> tuple[ctypes.CDLL, str]:
    candidates = _candidates()
    if not candidates:
        raise LibraryNotFoundError(
            "libtslm.so not found: set TSLM_LIBRARY=/path/to/libtslm.so, or build it with `make lib` "
            "in the tslm repository and (re)install this package with `pip install ./python`, or "
            "install it with `make install PREFIX=...` into a directory the dynamic loader searches")
    where, path = candidates[0]
    try:
        lib = ctypes.CDLL(path)  # CDLL: the GIL is released during every call
    except OSError as e:
        raise LibraryNotFoundError(f"cannot load libtslm.so from {path} ({where}): {e}") from e
    try:
        lib.tslm_abi_version.restype = c_uint32
        lib.tslm_abi_version.argtypes = []
    except AttributeError as e:
        raise LibraryNotFoundError(f"{path} ({where}) is not libtslm (no tslm_abi_version)") from e
    abi = lib.tslm_abi_version()
    if abi != ABI_VERSION:
        raise LibraryNotFoundError(
            f"{path} ({where}) has ABI version {abi}; this package was written for ABI version {ABI_VERSION} "
            f"(rebuild the library with `make lib` and reinstall the package from the same checkout)")
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as e:
            raise LibraryNotFoundError(f"{path} ({where}) lacks {name}") from e
        fn.restype = restype
        fn.argtypes = argtypes
    return lib, path


_lock = threading.Lock()
_loaded: tuple[ctypes.CDLL, str] | None = None


def lib() -> ctypes.CDLL:
    """The loaded library (opened on first use)."""
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _open()
    return _loaded[0]


def library_path() -> str:
    """The path libtslm.so was loaded from."""
    lib()
    assert _loaded is not None
    return _loaded[1]


def last_error() -> str:
    msg = lib().tslm_last_error()
    return msg.decode("utf-8", "replace") if msg else ""


def check(status: int) -> int:
    """Raises the typed exception of a failed call (message from tslm_last_error on this thread)."""
    if status < TSLM_OK:
        raise error_for_status(status, last_error() or lib().tslm_status_name(status).decode())
    return status
