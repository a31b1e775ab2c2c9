"""Build step of `pip install ./python`: copies the repository's libtslm.so into the package.

When ../.build/release/libtslmc.so exists (`make lib`), or TSLM_LIBRARY names a library at
install time, it is copied to tslm/libtslm.so so the installed package finds it next to itself
(the wheel is then tagged for this platform). Without one the package installs pure and finds
the library at run time (TSLM_LIBRARY, the repository's build, or the system's libtslm.so).
TSLM_BUNDLE_LIBRARY=0 skips the copy. Nothing is compiled here: the library is built by
`make lib` (Swift).
"""

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent


def library_to_bundle():
    if os.environ.get("TSLM_BUNDLE_LIBRARY", "1") == "0":
        return None
    for candidate in (os.environ.get("TSLM_LIBRARY"), HERE.parent / ".build" / "release" / "libtslmc.so"):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


LIBRARY = library_to_bundle()


class BuildPy(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "tslm" / "libtslm.so"
        if LIBRARY is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(LIBRARY, target)
            print(f"tslm: bundled {LIBRARY} as {target}")
        elif target.exists():
            target.unlink()


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return LIBRARY is not None


setup(cmdclass={"build_py": BuildPy}, distclass=BinaryDistribution)
