"""The ctypes declarations match include/tslm.h and the library in use."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

import tslm
from tslm import _lib
from conftest import REPO


def test_abi_version_matches_the_package():
    assert tslm.abi_version() == tslm.ABI_VERSION
    # the header the package was written against says the same
    header = (REPO / "include" / "tslm.h").read_text()
    assert f"#define TSLM_ABI_VERSION {tslm.ABI_VERSION}\n" in header
    assert tslm.version().count(".") == 2


def test_cdll_not_pydll_so_calls_release_the_gil():
    lib = _lib.lib()
    assert isinstance(lib, ctypes.CDLL) and not isinstance(lib, ctypes.PyDLL)
    assert lib._func_flags_ & ctypes._FUNCFLAG_PYTHONAPI == 0


def test_default_params_read_through_the_structs():
    """Each *_default_params() returns a struct by value; a wrong size or padding in a ctypes
    declaration shows as garbage in the fields after it (the header documents the defaults)."""
    lib = _lib.lib()
    m = lib.tslm_model_default_params()
    assert (m.n_threads, m.use_mmap, m.verify_checksums, m.context_length) == (0, True, False, 0)
    s = lib.tslm_session_default_params()
    assert (s.context_length, s.kv_type) == (0, 0)
    sp = lib.tslm_sampler_default_params()
    assert (sp.temperature, sp.top_k, sp.top_p, sp.min_p, sp.repeat_penalty, sp.repeat_window) == (0, 0, 1, 0, 1, 64)
    g = lib.tslm_generate_default_params()
    assert g.max_tokens == 256 and g.n_stop == 0 and not g.stop
    gs = g.sampler
    assert (gs.temperature, gs.top_k, gs.top_p, gs.min_p, gs.repeat_penalty, gs.repeat_window, gs.seed) == \
        (sp.temperature, sp.top_k, sp.top_p, sp.min_p, sp.repeat_penalty, sp.repeat_window, sp.seed)
    f = lib.tslm_forecast_default_params()
    assert (f.horizon, bool(f.quantile_levels), f.n_quantiles, f.n_samples, f.seed, f.greedy, f.context) == \
        (16, False, 0, 0, 0, False, None)
    a = lib.tslm_analyze_default_params()
    assert (a.n_samples, a.seed, a.greedy) == (0, 0, False)


def _header() -> str:
    return (REPO / "include" / "tslm.h").read_text()


def test_every_header_function_and_struct_is_declared():
    """The package declares every TSLM_API function and struct of include/tslm.h (a header that
    grows a call or a struct fails here until the package follows)."""
    header = _header()
    functions = set(re.findall(r"TSLM_API\b[^;(]*?\b(tslm_\w+)\s*\(", header))
    assert functions == set(_lib._PROTOTYPES)
    structs = set(re.findall(r"typedef struct (tslm_\w+) \{", header))
    assert structs == set(_lib.STRUCTS)


def test_every_status_code_has_its_exception():
    codes = dict((name, int(code)) for name, code in re.findall(r"#define (TSLM_ERR_\w+)\s+(-\d+)", _header()))
    from tslm.errors import _CLASSES
    assert {c: cls.status_name for c, cls in _CLASSES.items()} == {code: name for name, code in codes.items()}


def test_status_codes_and_names_match_the_library():
    for cls in (tslm.TslmIOError, tslm.FormatError, tslm.InvalidArgumentError, tslm.UnsupportedError,
                tslm.WrongKindError, tslm.ContextFullError, tslm.BufferTooSmallError, tslm.CancelledError,
                tslm.InternalError, tslm.NoAnswerError):
        assert tslm.status_name(cls.status) == cls.status_name
        assert issubclass(cls, tslm.TslmError)
    assert tslm.status_name(0) == "TSLM_OK"


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_struct_layouts_equal_the_c_compilers(tmp_path):
    """sizeof and offsetof of every struct, from a C compiler reading include/tslm.h."""
    lines = ["#include <stdio.h>", "#include <stddef.h>", '#include "tslm.h"', "int main(void) {"]
    expected = []
    for cname, cls in _lib.STRUCTS.items():
        lines.append(f'printf("%zu\\n", sizeof({cname}));')
        expected.append(ctypes.sizeof(cls))
        for field, _ in cls._fields_:
            lines.append(f'printf("%zu\\n", offsetof({cname}, {field}));')
            expected.append(getattr(cls, field).offset)
    lines += ["return 0; }"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run(["cc", "-std=c11", "-I", str(REPO / "include"), str(src), "-o", str(exe)], check=True)
    got = [int(x) for x in subprocess.run([str(exe)], capture_output=True, check=True, text=True).stdout.split()]
    assert got == expected


def test_a_long_call_lets_other_threads_run(text_model):
    """While one thread is inside a library call, the main thread keeps running (GIL released)."""
    text = ("The quick brown fox jumps over the lazy dog. 0123456789 ünïcödé " * 20000)
    t0 = time.perf_counter()
    text_model.tokenize(text)
    one_call = time.perf_counter() - t0
    if one_call < 1.0:  # make the call long enough to see
        text = text * int(1.0 / max(one_call, 1e-3) + 1)
    done = threading.Event()
    started = threading.Event()
    result = {}

    def work():
        started.set()
        t = time.perf_counter()
        text_model.tokenize(text)
        result["seconds"] = time.perf_counter() - t
        done.set()

    th = threading.Thread(target=work)
    th.start()
    started.wait()
    last, max_gap = time.perf_counter(), 0.0
    while not done.is_set():
        now = time.perf_counter()
        max_gap, last = max(max_gap, now - last), now
    th.join()
    assert result["seconds"] >= 0.3
    # Holding the GIL would stall this loop for the whole call.
    assert max_gap < 0.5 * result["seconds"], (max_gap, result["seconds"])


def test_library_lookup_error_is_clear(tmp_path):
    code = "import tslm\ntry:\n    tslm.version()\nexcept tslm.LibraryNotFoundError as e:\n    print('ERR', e)\n"
    env = dict(os.environ, TSLM_LIBRARY=str(tmp_path / "nope.so"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path).stdout
    assert out.startswith("ERR cannot load libtslm.so from") and "TSLM_LIBRARY" in out


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_a_library_of_another_abi_version_is_refused(tmp_path):
    src = tmp_path / "other.c"
    src.write_text("#include <stdint.h>\nuint32_t tslm_abi_version(void) { return 999; }\n")
    so = tmp_path / "libother.so"
    subprocess.run(["cc", "-shared", "-fPIC", str(src), "-o", str(so)], check=True)
    code = "import tslm\ntry:\n    tslm.version()\nexcept tslm.LibraryNotFoundError as e:\n    print('ERR', e)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, TSLM_LIBRARY=str(so)), cwd=tmp_path).stdout
    assert out.startswith("ERR") and f"ABI version 999; this package was written for ABI version {tslm.ABI_VERSION}" in out


def test_installed_library_is_the_repositorys_build():
    """When the package bundles libtslm.so (pip install after make lib), it is the current build."""
    path = tslm.library_path()
    built = REPO / ".build" / "release" / "libtslmc.so"
    if path.endswith("tslm/libtslm.so") and built.exists():
        import filecmp
        assert filecmp.cmp(path, built, shallow=False), f"{path} is not {built}: reinstall the package"
    else:
        assert path  # TSLM_LIBRARY, the repository's build or the system's
