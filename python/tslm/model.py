"""Model, Session and forecasting over the C API (include/tslm.h).

Every call goes through :mod:`ctypes` into libtslm.so, opened as a ``ctypes.CDLL``: the GIL is
released for the duration of each library call (model loading, tokenization, prompt
processing, generation, forecasting), so other Python threads run meanwhile, and several threads
can each drive their own :class:`Session` of one shared :class:`Model` in parallel.
"""

from __future__ import annotations

import ctypes
import os
import threading
import weakref
from ctypes import byref, c_char_p, c_float, c_int32, c_size_t, c_void_p
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from . import _lib
from ._lib import check, lib
from .errors import (TSLM_ERR_BUFFER_TOO_SMALL, TSLM_ERR_CANCELLED, InvalidArgumentError)

KIND_TEXT = 0
KIND_CLASSIFIER = 1
KIND_FORECASTER = 2
_KIND_NAMES = {KIND_TEXT: "text", KIND_CLASSIFIER: "classifier", KIND_FORECASTER: "forecaster"}
_STOP_NAMES = {0: "eos", 1: "stop_string", 2: "length", 3: "cancelled", 4: "context", 5: "aborted"}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _cstr(value, what: str) -> bytes:
    """UTF-8 bytes for a NUL-terminated C string argument (NUL inside is refused)."""
    b = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if b"\0" in b:
        raise InvalidArgumentError(f"{what} contains a NUL byte")
    return b


def _text_bytes(text) -> bytes:
    """UTF-8 bytes for an explicit-length text argument (NUL bytes allowed)."""
    if isinstance(text, str):
        return text.encode("utf-8")
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text)
    raise InvalidArgumentError(f"text must be str or bytes, not {type(text).__name__}")


def _fill_string(call, initial: int = 256) -> str:
    """Runs a (buf, buf_size, &out_len) call, growing the buffer when the library asks for more."""
    size = initial
    while True:
        buf = ctypes.create_string_buffer(size)
        n = c_size_t()
        status = call(buf, size, byref(n))
        if status == TSLM_ERR_BUFFER_TOO_SMALL and n.value + 1 > size:
            size = n.value + 1
            continue
        check(status)
        return buf.raw[: n.value].decode("utf-8", "replace")


def _fill_array(call, dtype, ctype, initial: int) -> np.ndarray:
    """Runs a (ptr, max, &out_count) call into a numpy array, growing it when asked to."""
    size = max(initial, 1)
    while True:
        out = np.empty(size, dtype=dtype)
        n = c_size_t()
        status = call(out.ctypes.data_as(ctypes.POINTER(ctype)), size, byref(n))
        if status == TSLM_ERR_BUFFER_TOO_SMALL and n.value > size:
            size = n.value
            continue
        check(status)
        return out[: n.value].copy() if n.value < size else out


def _series_array(values, what: str) -> np.ndarray:
    """A C-contiguous float32 [channels, samples] copy-or-view of values (1-D: one channel)."""
    try:
        a = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"{what}: cannot be read as float32 numbers ({e})") from e
    if a.ndim == 1:
        a = a[np.newaxis, :]
    if a.ndim != 2:
        raise InvalidArgumentError(f"{what}: expected a 1-D array (one channel) or a 2-D array "
                                   f"[channels, samples], got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InvalidArgumentError(f"{what}: shape {a.shape} holds no samples")
    return np.ascontiguousarray(a)


def _f32p(a: np.ndarray):
    return a.ctypes.data_as(ctypes.POINTER(c_float))


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GenerationStats:
    """Statistics of a session's last generation (tslm_generation_stats)."""
    prompt_tokens: int
    generated_tokens: int
    prompt_seconds: float
    generate_seconds: float
    stop_reason: str  # "eos", "stop_string", "length", "cancelled", "context" or "aborted"

    @property
    def prompt_per_second(self) -> float:
        return self.prompt_tokens / max(self.prompt_seconds, 1e-9)

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / max(self.generate_seconds, 1e-9)


@dataclass(frozen=True)
class ForecastInfo:
    """What a forecasting model reads and writes (tslm_forecast_info); 0 means "any"."""
    input_channels: int
    output_channels: int
    window: int
    max_horizon: int


@dataclass(frozen=True)
class Forecast:
    """A forecast: ``point`` and, when quantile levels were asked for, ``quantiles``.

    For a 1-D history: point has shape [horizon], quantiles [n_levels, horizon].
    For a 2-D history [channels, length]: point [output_channels, horizon],
    quantiles [output_channels, n_levels, horizon].
    """
    point: np.ndarray
    quantiles: Optional[np.ndarray]
    levels: Optional[np.ndarray]
    horizon: int


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------

class _Handle:
    """What Model and Session share: `free` is `close`, a context manager that checks the
    handle on entry and closes on exit, and a close when garbage-collected."""

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def free(self) -> None:
        self.close()

    def __enter__(self):
        self._h()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Model(_Handle):
    """A loaded .tslm model (tslm_model_load), mapped from its file (zero-copy) by default.

    Use it as a context manager, or call :meth:`close`; sessions still open on the model are
    closed first. A model is immutable and may be shared by many threads, each with its own
    :class:`Session`; :meth:`close` must not race with another use of the model.

    All calls release the GIL while the library works (the library is a ``ctypes.CDLL``).
    """

    def __init__(self, path, threads: int = 0, *, use_mmap: Optional[bool] = None,
                 verify_checksums: Optional[bool] = None, context_length: Optional[int] = None,
                 progress: Optional[Callable[[int, int], Optional[bool]]] = None):
        """Loads ``path``. threads: worker threads of the model's sessions (0 = all cores);
        context_length: default context of new sessions (0 = min(model, 4096)).
        progress(done, total) is called as the load goes (tslm_model_load_with_progress): each
        tensor the model reads, then each checksum with verify_checksums; returning False stops
        the load with AbortedError (None or True goes on); an exception it raises stops the load
        and is re-raised.
        Raises TslmIOError (missing file), FormatError (corrupt), UnsupportedError, ..."""
        self._handle: Optional[c_void_p] = None
        self._sessions: "weakref.WeakSet[Session]" = weakref.WeakSet()
        self.path = os.fspath(path)
        params = lib().tslm_model_default_params()
        params.n_threads = int(threads)
        if use_mmap is not None:
            params.use_mmap = bool(use_mmap)
        if verify_checksums is not None:
            params.verify_checksums = bool(verify_checksums)
        if context_length is not None:
            params.context_length = int(context_length)
        handle = c_void_p()
        path_c = _cstr(os.fsencode(self.path), "path")
        if progress is None:
            check(lib().tslm_model_load(path_c, params, byref(handle)))
        else:
            raised: list = []

            def on_progress(done, total, _user):
                try:
                    return progress(int(done), int(total)) is not False
                except BaseException as e:
                    raised.append(e)
                    return False
            callback = _lib.LOAD_PROGRESS_CALLBACK(on_progress)
            status = lib().tslm_model_load_with_progress(path_c, params, callback, None, byref(handle))
            if raised:
                raise raised[0]
            check(status)
        self._handle = handle

    # -- lifetime ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._handle is None

    def _h(self) -> c_void_p:
        if self._handle is None:
            raise InvalidArgumentError(f"model {self.path} is closed")
        return self._handle

    def close(self) -> None:
        """Frees the model (tslm_model_free) after closing its open sessions. Idempotent."""
        if self._handle is None:
            return
        for s in list(self._sessions):
            s.close()
        handle, self._handle = self._handle, None
        check(lib().tslm_model_free(handle))


    def __repr__(self) -> str:
        if self._handle is None:
            return f"<tslm.Model {self.path!r} closed>"
        return f"<tslm.Model {self.path!r} kind={self.kind} architecture={self.architecture!r}>"

    # -- facts -------------------------------------------------------------------------------

    @property
    def kind_code(self) -> int:
        """TSLM_KIND_* (0 text, 1 classifier, 2 forecaster)."""
        return check(lib().tslm_model_kind(self._h()))

    @property
    def kind(self) -> str:
        """"text", "classifier" (OpenTSLM: series + text in, rationale and answer out) or "forecaster"."""
        code = self.kind_code
        return _KIND_NAMES.get(code, f"kind {code}")

    @property
    def architecture(self) -> str:
        """general.architecture ("llama", "gemma3", "lstm", ...)."""
        s = lib().tslm_model_architecture(self._h())
        if s is None:
            check(-3)
        return s.decode("utf-8", "replace")

    @property
    def vocab_size(self) -> int:
        return check(lib().tslm_model_vocab_size(self._h()))

    @property
    def context_length(self) -> int:
        """The model's maximum context length in tokens."""
        return check(lib().tslm_model_context_length(self._h()))

    def meta(self, key: str, default=None):
        """A metadata value rendered as text (tslm_model_meta), or ``default`` if the key is absent."""
        h = self._h()
        k = _cstr(key, "key")
        try:
            return _fill_string(lambda buf, size, n: lib().tslm_model_meta(h, k, buf, size, n))
        except InvalidArgumentError:  # the key does not exist
            return default

    @property
    def name(self) -> Optional[str]:
        """general.name, when the file has one."""
        return self.meta("general.name")

    # -- tokens ------------------------------------------------------------------------------

    def tokenize(self, text, add_special: bool = True, parse_special: bool = True) -> np.ndarray:
        """Token ids (int32 array) of ``text`` (str, or bytes taken as UTF-8) via tslm_tokenize_n:
        NUL bytes are tokenized like any other byte. add_special: prepend BOS when the model's
        tokenizer does; parse_special: "<|im_start|>" and the like become their special tokens.
        The defaults are those of `tslm tokenize`."""
        h = self._h()
        b = _text_bytes(text)
        return _fill_array(
            lambda out, size, n: lib().tslm_tokenize_n(h, b, len(b), bool(add_special), bool(parse_special),
                                                       out, size, n),
            np.int32, c_int32, len(b) + 4)

    def detokenize(self, tokens: Iterable[int], skip_special: bool = False) -> str:
        """UTF-8 text of token ids (tslm_detokenize); skip_special drops control tokens."""
        h = self._h()
        ids = np.ascontiguousarray(np.asarray(list(tokens) if not isinstance(tokens, np.ndarray) else tokens,
                                              dtype=np.int64))
        if ids.ndim != 1:
            raise InvalidArgumentError(f"tokens: expected a 1-D sequence of ids, got shape {ids.shape}")
        if ids.size and (ids.min() < -2**31 or ids.max() >= 2**31):
            raise InvalidArgumentError("tokens: an id does not fit in int32")
        ids32 = ids.astype(np.int32)
        ptr = ids32.ctypes.data_as(ctypes.POINTER(c_int32))
        return _fill_string(lambda buf, size, n: lib().tslm_detokenize(h, ptr, ids32.size, bool(skip_special),
                                                                       buf, size, n),
                            initial=8 * ids32.size + 16)

    def apply_chat_template(self, messages: Sequence) -> str:
        """The prompt text of ``messages`` (dicts with "role"/"content", or (role, content) pairs)
        in the model's chat template, followed by the prefix of the assistant's reply."""
        h = self._h()
        keep = []
        arr = (_lib.ChatMessage * max(len(messages), 1))()
        for i, m in enumerate(messages):
            role, content = (m["role"], m["content"]) if isinstance(m, dict) else m
            r, c = _cstr(role, "role"), _cstr(content, "content")
            keep += [r, c]
            arr[i].role, arr[i].content = r, c
        return _fill_string(lambda buf, size, n: lib().tslm_chat_apply_template(h, arr, len(messages), buf, size, n),
                            initial=1024)

    # -- sessions ----------------------------------------------------------------------------

    def session(self, context_length: int = 0, kv: str = "auto") -> "Session":
        """A new :class:`Session` on this model (same as ``Session(model, ...)``)."""
        return Session(self, context_length=context_length, kv=kv)

    # -- forecasting -------------------------------------------------------------------------

    @property
    def forecast_info(self) -> ForecastInfo:
        """What this forecasting model reads and writes; WrongKindError for other models."""
        info = _lib.ForecastInfo()
        check(lib().tslm_model_forecast_info(self._h(), byref(info)))
        return ForecastInfo(info.input_channels, info.output_channels, info.window, info.max_horizon)

    def forecast(self, history, horizon: Optional[int] = None, *, quantiles: Optional[Sequence[float]] = None,
                 n_samples: Optional[int] = None, seed: Optional[int] = None, greedy: Optional[bool] = None,
                 context: Optional[str] = None) -> Forecast:
        """Forecasts ``horizon`` steps after ``history`` (tslm_forecast / tslm_forecast_channels).

        history: a 1-D array (one channel; tslm_forecast) or a 2-D array [channels, length]
        (tslm_forecast_channels). horizon: default the model's maximum horizon, else the
        library's default. quantiles: levels in (0, 1) for sampling forecasters (ChatTime);
        n_samples, seed: their sampled paths (the same seed, the same forecast); greedy: one
        deterministic path instead; context: ChatTime's context knowledge text. Unset arguments
        take tslm_forecast_default_params()'s values. History values must be finite, except that
        ChatTime reads NaN as missing. Returns a :class:`Forecast` of numpy float32 arrays.
        The GIL is released meanwhile.
        """
        h = self._h()
        one = np.ndim(history) == 1
        x = _series_array(history, "history")
        channels, length = x.shape
        params = lib().tslm_forecast_default_params()
        if horizon is None:
            info = self.forecast_info
            horizon = info.max_horizon or params.horizon
        if int(horizon) < 1:
            raise InvalidArgumentError(f"horizon {horizon} must be ≥ 1")
        params.horizon = int(horizon)
        levels = None
        if quantiles is not None:
            levels = np.ascontiguousarray(np.asarray(quantiles, dtype=np.float32).reshape(-1))
            params.quantile_levels = _f32p(levels)
            params.n_quantiles = levels.size
        if n_samples is not None:
            params.n_samples = int(n_samples)
        if seed is not None:
            params.seed = int(seed)
        if greedy is not None:
            params.greedy = bool(greedy)
        ctx = None if context is None else _cstr(context, "context")
        params.context = ctx
        nq = 0 if levels is None else levels.size
        if one:
            point = np.empty(params.horizon, dtype=np.float32)
            q = np.empty((nq, params.horizon), dtype=np.float32) if nq else None
            check(lib().tslm_forecast(h, _f32p(x), length, params, _f32p(point),
                                      _f32p(q) if q is not None else None))
        else:
            info = self.forecast_info
            outs = info.output_channels or channels
            point = np.empty((outs, params.horizon), dtype=np.float32)
            q = np.empty((outs, nq, params.horizon), dtype=np.float32) if nq else None
            check(lib().tslm_forecast_channels(h, _f32p(x), length, channels, params, _f32p(point),
                                               _f32p(q) if q is not None else None))
        return Forecast(point=point, quantiles=q, levels=levels, horizon=params.horizon)

    def analyze(self, values, question: str, *, n_samples: Optional[int] = None, seed: Optional[int] = None,
                greedy: Optional[bool] = None) -> str:
        """Answers a multiple-choice question about a series (tslm_model_analyze; ChatTime): the
        question lists the choices as (a), (b), (c); returns the majority choice, e.g. "(b)".
        values: a 1-D series (NaN = missing). NoAnswerError when no sampled answer names a
        choice; WrongKindError for models other than ChatTime. The GIL is released meanwhile."""
        h = self._h()
        x = np.asarray(values, dtype=np.float32)
        if x.ndim != 1 or x.size == 0:
            raise InvalidArgumentError(f"values: expected a non-empty 1-D series, got shape {x.shape}")
        x = np.ascontiguousarray(x)
        q = _cstr(question, "question")
        params = lib().tslm_analyze_default_params()
        if n_samples is not None:
            params.n_samples = int(n_samples)
        if seed is not None:
            params.seed = int(seed)
        if greedy is not None:
            params.greedy = bool(greedy)
        return _fill_string(lambda buf, size, n: lib().tslm_model_analyze(h, _f32p(x), x.size, q, params, buf, size, n))


# ---------------------------------------------------------------------------------------------
# Session
# ---------------------------------------------------------------------------------------------

class Session(_Handle):
    """A prompt made of text and series, then generation (tslm_session_*); holds a KV cache.

    Use it as a context manager or call :meth:`close`. A session is used by one thread at a time
    (a lock serializes calls on it); sessions of one model on different threads run in parallel,
    since the GIL is released during every library call.
    """

    #: ``kv``: how keys and values are stored (TSLM_KV_*): "auto" is f16 where the model's
    #: weight matrices are quantized and f32 where they are floats.
    KV_TYPES = {"auto": 0, "f32": 1, "f16": 2}

    def __init__(self, model: Model, context_length: int = 0, kv: str = "auto"):
        self._handle: Optional[c_void_p] = None
        self.model = model
        self._lock = threading.Lock()
        params = lib().tslm_session_default_params()
        params.context_length = int(context_length)
        if kv not in Session.KV_TYPES:
            raise ValueError(f"kv must be one of {sorted(Session.KV_TYPES)}, not {kv!r}")
        params.kv_type = Session.KV_TYPES[kv]
        handle = c_void_p()
        check(lib().tslm_session_new(model._h(), params, byref(handle)))
        self._handle = handle
        self._fresh = True
        self._callbacks = {}       # keeps the ctypes callback objects alive while set
        self._callback_error = None
        model._sessions.add(self)

    @property
    def closed(self) -> bool:
        return self._handle is None

    def _h(self) -> c_void_p:
        if self._handle is None:
            raise InvalidArgumentError("session is closed")
        return self._handle

    def close(self) -> None:
        """Frees the session (tslm_session_free). Idempotent."""
        with self._lock:
            if self._handle is None:
                return
            handle, self._handle = self._handle, None
            check(lib().tslm_session_free(handle))


    def __repr__(self) -> str:
        return "<tslm.Session closed>" if self.closed else f"<tslm.Session position={self.position}>"

    # -- callbacks ---------------------------------------------------------------------------

    def _raise_callback_error(self) -> None:
        e, self._callback_error = self._callback_error, None
        if e is not None:
            raise e

    def set_progress_callback(self, callback: Optional[Callable[[int, int], None]]) -> None:
        """callback(done, total) after every batch of a prompt run (append_text, and the
        time-series prompt that generate runs), on the thread running the session; None clears
        it (tslm_session_set_progress_callback). An exception it raises is re-raised when the call
        returns (with an abort callback set, the call is also stopped at its next poll)."""
        def on_progress(done, total, _user):
            try:
                callback(int(done), int(total))
            except BaseException as e:
                self._callback_error = self._callback_error or e
        self._set_callback("progress", callback, _lib.PROGRESS_CALLBACK, on_progress,
                           lib().tslm_session_set_progress_callback)

    def set_abort_callback(self, callback: Optional[Callable[[], bool]]) -> None:
        """callback() is polled before every batch of a prompt run and every generated token;
        returning True stops the call with AbortedError (a generation's text so far stays in
        ``last_text``; the session stays usable). To stop from another thread, pass
        ``event.is_set`` of a threading.Event that thread sets. None clears it
        (tslm_session_set_abort_callback)."""
        def on_abort(_user):
            if self._callback_error is not None:
                return True
            try:
                return bool(callback())
            except BaseException as e:
                self._callback_error = e
                return True
        self._set_callback("abort", callback, _lib.ABORT_CALLBACK, on_abort,
                           lib().tslm_session_set_abort_callback)

    def _set_callback(self, kind, callback, ctype, wrapper, setter) -> None:
        cb = ctype(wrapper) if callback is not None else ctype()
        with self._lock:
            check(setter(self._h(), cb, None))
            if callback is None:
                self._callbacks.pop(kind, None)
            else:
                self._callbacks[kind] = cb

    def _run(self, status: int) -> None:
        """check() for prompt/generation calls, re-raising a callback's exception first."""
        self._raise_callback_error()
        check(status)

    # -- prompt ------------------------------------------------------------------------------

    @property
    def position(self) -> int:
        """Positions used in the context (a time-series prompt counts only once generated)."""
        return check(lib().tslm_session_position(self._h()))

    def reset(self) -> None:
        """Forgets everything appended or generated."""
        with self._lock:
            check(lib().tslm_session_reset(self._h()))
            self._fresh = True

    def append_text(self, text, add_special: Optional[bool] = None) -> None:
        """Appends text (str, or UTF-8 bytes; NUL bytes allowed: tslm_session_append_text_n) and
        runs it through the model. add_special: prepend BOS when the model's tokenizer adds one;
        None (default) = only for the first text of the session. Special-token text is parsed.
        ContextFullError if it does not fit (the session is then unchanged)."""
        b = _text_bytes(text)
        with self._lock:
            h = self._h()
            special = self._fresh if add_special is None else bool(add_special)
            self._run(lib().tslm_session_append_text_n(h, b, len(b), special))
            self._fresh = False

    def append_series(self, values, description: Optional[str] = None, preset: Optional[str] = None) -> None:
        """Appends series (tslm_session_append_series): a 1-D array is one series, a 2-D array
        [channels, samples] one series per channel. description: a template with {mean}, {std},
        {channel}, {axis}, {lead} (None = the model's trained description); preset: "har",
        "sleep", "ecg", "tsqa", "m4", "custom" (None = the model's). Values must be finite
        (NaN/Inf raise InvalidArgumentError). Text models raise WrongKindError."""
        x = _series_array(values, "values")
        d = None if description is None else _cstr(description, "description")
        p = None if preset is None else _cstr(preset, "preset")
        with self._lock:
            check(lib().tslm_session_append_series(self._h(), _f32p(x), x.shape[1], x.shape[0], d, p))
            self._fresh = False

    def append_recording(self, values, names: Optional[Sequence[str]] = None,
                         question: Optional[str] = None) -> None:
        """Appends a recording [channels, samples] in the prompt the model was trained with
        (tslm_session_append_recording): the model's text before the series (or ``question``),
        each channel described by the model's template, the text after. names: one name per
        channel (e.g. CSV column names like "accelerometer_x"), or None for the trained names.
        Only time-series classifiers accept it (others: WrongKindError)."""
        x = _series_array(values, "values")
        channels = x.shape[0]
        arr = None
        keep = []
        if names is not None:
            names = list(names)
            if len(names) != channels:
                raise InvalidArgumentError(f"names: {len(names)} names for {channels} channels")
            keep = [_cstr(n, "names[]") for n in names]
            arr = (c_char_p * channels)(*keep)
        q = None if question is None else _cstr(question, "question")
        with self._lock:
            check(lib().tslm_session_append_recording(self._h(), _f32p(x), x.shape[1], channels, arr, q))
            self._fresh = False

    # -- generation --------------------------------------------------------------------------

    def generate(self, max_tokens: Optional[int] = None, *, temperature: Optional[float] = None,
                 top_k: Optional[int] = None, top_p: Optional[float] = None, min_p: Optional[float] = None,
                 repeat_penalty: Optional[float] = None, repeat_window: Optional[int] = None,
                 seed: Optional[int] = None, stop: Optional[Sequence[str]] = None,
                 callback: Optional[Callable[[str], Optional[bool]]] = None) -> str:
        """Generates after everything appended (tslm_session_generate) and returns the text.

        Unset arguments take the library's defaults (tslm_generate_default_params: 256 tokens,
        greedy). callback(piece) receives each piece of text as it becomes final; returning
        False stops generation early (the text so far is returned, ``stats.stop_reason`` is
        "cancelled"); an exception raised by the callback stops generation and is re-raised.
        The GIL is released while the model runs and taken back only for the callback.
        """
        params = lib().tslm_generate_default_params()
        if max_tokens is not None:
            params.max_tokens = int(max_tokens)
        s = params.sampler
        for field, value in (("temperature", temperature), ("top_k", top_k), ("top_p", top_p),
                             ("min_p", min_p), ("repeat_penalty", repeat_penalty),
                             ("repeat_window", repeat_window), ("seed", seed)):
            if value is not None:
                setattr(s, field, value)
        params.sampler = s
        stops = [_cstr(x, "stop") for x in (stop or [])]
        if stops:
            arr = (c_char_p * len(stops))(*stops)
            params.stop = ctypes.cast(arr, ctypes.POINTER(c_char_p))
            params.n_stop = len(stops)
        state = {"error": None, "stopped": False}

        def on_piece(piece, _user):
            try:
                r = callback(piece.decode("utf-8", "replace") if piece else "")
                if r is False:
                    state["stopped"] = True
                    return False
                return True
            except BaseException as e:  # re-raised after the call returns
                state["error"] = e
                return False

        cb = _lib.TOKEN_CALLBACK(on_piece) if callback is not None else _lib.TOKEN_CALLBACK()
        with self._lock:
            status = lib().tslm_session_generate(self._h(), params, cb, None)
            self._fresh = False
            if state["error"] is not None:
                raise state["error"]
            self._raise_callback_error()
            if not (status == TSLM_ERR_CANCELLED and state["stopped"]):
                check(status)
            return self._last_text()

    def _last_text(self) -> str:
        h = self._h()
        return _fill_string(lambda buf, size, n: lib().tslm_session_last_text(h, buf, size, n), initial=4096)

    @property
    def last_text(self) -> str:
        """The text of the last generation."""
        with self._lock:
            return self._last_text()

    @property
    def last_answer(self) -> str:
        """The answer of the last generation: the text after its last "Answer: ", without a final
        period, trimmed (the whole text trimmed when there is none)."""
        with self._lock:
            h = self._h()
            return _fill_string(lambda buf, size, n: lib().tslm_session_last_answer(h, buf, size, n))

    @property
    def last_tokens(self) -> np.ndarray:
        """The token ids (int32) of the last generation, without the stop token."""
        with self._lock:
            h = self._h()
            return _fill_array(lambda out, size, n: lib().tslm_session_last_tokens(h, out, size, n),
                               np.int32, c_int32, 256)

    @property
    def context_tokens(self) -> np.ndarray:
        """The ids (int32) of every position in the context, in order: the prompt's tokens,
        -1 where a series ran as an input embedding (a SoftPrompt soft token), then generated
        tokens (tslm_session_context_tokens). A time-series prompt counts once generate ran it."""
        with self._lock:
            h = self._h()
            return _fill_array(lambda out, size, n: lib().tslm_session_context_tokens(h, out, size, n),
                               np.int32, c_int32, max(check(lib().tslm_session_position(h)), 1))

    def logits(self) -> np.ndarray:
        """The logits (float32, vocab_size) after the last position the session ran: the
        distribution the next token is sampled from (tslm_session_logits). InvalidArgumentError
        when no position ran since the last sampled token, or a time-series prompt is pending."""
        with self._lock:
            h = self._h()
            return _fill_array(lambda out, size, n: lib().tslm_session_logits(h, out, size, n),
                               np.float32, c_float, self.model.vocab_size)

    @property
    def stats(self) -> GenerationStats:
        """Statistics of the last generation."""
        st = _lib.GenerationStats()
        with self._lock:
            check(lib().tslm_session_last_stats(self._h(), byref(st)))
        return GenerationStats(st.prompt_tokens, st.generated_tokens, st.prompt_seconds,
                               st.generate_seconds, _STOP_NAMES.get(st.stop_reason, str(st.stop_reason)))
