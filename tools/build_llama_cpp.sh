#!/usr/bin/env bash
# Builds llama.cpp's `llama-bench` and `llama-quantize` for the side-by-side benchmark
# (tools/bench_compare.sh, `make bench-compare`), from the source vendored in the pinned PyPI sdist
# llama-cpp-python==0.3.36 (vendor/llama.cpp at commit 0c1e57098bba43ac29e6e3b677cdceebdd22334f).
# Nothing of that source goes into git: the sdist lands in .cache/wheels/, the source in
# .cache/llama.cpp/src and the build in .cache/llama.cpp/build (.cache/ is gitignored).
#
#   tools/build_llama_cpp.sh        prints the bin directory (.cache/llama.cpp/build/bin) on stdout
#
# Release, GGML_NATIVE=ON (tuned for this CPU, like a local llama.cpp build), static libraries,
# no HTTPS/downloads, no server, tests or examples; only the two binaries are built. Idempotent:
# when both binaries exist nothing is fetched or built (delete .cache/llama.cpp to rebuild).
# Needs a C/C++ compiler and cmake (installed with apt-get when missing and running as root).
# JOBS (default 2) sets the build parallelism; the build runs under `nice -n 10`.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.3.36
SDIST=.cache/wheels/llama_cpp_python-$VERSION.tar.gz
SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
LLAMA_COMMIT=0c1e57098bba43ac29e6e3b677cdceebdd22334f
ROOT=.cache/llama.cpp
SRC=$ROOT/src
BUILD=$ROOT/build
BIN=$BUILD/bin
JOBS=${JOBS:-2}

die() { echo "build_llama_cpp: $*" >&2; exit 1; }

if [ -x "$BIN/llama-bench" ] && [ -x "$BIN/llama-quantize" ]; then
  echo "$BIN"; exit 0
fi

# 1. The sdist. `pip download --no-binary :all:` would first build the sdist's build requirements
#    (cmake, from source) just to read its metadata, which takes tens of minutes; so the file is
#    looked up in PyPI's simple index (PEP 691 JSON, what pip reads) and fetched with curl. The
#    sha256 pin is what makes it the same bytes either way.
if ! { [ -f "$SDIST" ] && echo "$SDIST_SHA256  $SDIST" | sha256sum -c --status; }; then
  command -v curl >/dev/null || die "curl is needed to fetch the llama-cpp-python sdist"
  mkdir -p .cache/wheels
  echo "fetching llama-cpp-python==$VERSION sdist from PyPI (77 MB)..." >&2
  url=$(curl -sSfL -H 'Accept: application/vnd.pypi.simple.v1+json' \
          https://pypi.org/simple/llama-cpp-python/ |
        python3 -c 'import json,sys; v=sys.argv[1]
f=[x["url"] for x in json.load(sys.stdin)["files"] if x["filename"]=="llama_cpp_python-%s.tar.gz"%v]
print(f[0] if f else "")' "$VERSION") || die "could not read PyPI's index for llama-cpp-python"
  [ -n "$url" ] || die "llama_cpp_python-$VERSION.tar.gz is not in PyPI's index"
  curl -sSfL -o "$SDIST.part" "$url" || die "download failed: $url"
  echo "$SDIST_SHA256  $SDIST.part" | sha256sum -c --status ||
    die "sha256 mismatch for $url (want $SDIST_SHA256, got $(sha256sum "$SDIST.part" | cut -d' ' -f1))"
  mv "$SDIST.part" "$SDIST"
fi

# 2. The vendored source, only vendor/llama.cpp.
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  rm -rf "$SRC" && mkdir -p "$SRC"
  tar -xzf "$SDIST" -C "$SRC" --strip-components=3 "llama_cpp_python-$VERSION/vendor/llama.cpp/"
  head=$(tar -xzOf "$SDIST" "llama_cpp_python-$VERSION/.git/modules/vendor/llama.cpp/HEAD")
  [ "$head" = "$LLAMA_COMMIT" ] || die "the sdist vendors llama.cpp $head, expected $LLAMA_COMMIT"
  rm -f "$SRC/.git"   # a gitfile pointing into the sdist's .git/modules; not extracted
fi

# 3. Tools.
command -v c++ >/dev/null || die "a C++ compiler is needed (apt-get install g++)"
if ! command -v cmake >/dev/null; then
  [ "$(id -u)" = 0 ] || die "cmake is missing (apt-get install cmake)"
  echo "installing cmake (Debian package)..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >/dev/null
fi

# 4. Configure and build.
echo "building llama.cpp ${LLAMA_COMMIT:0:9} (llama-bench, llama-quantize) in $BUILD, -j$JOBS..." >&2
start=$(date +%s)
nice -n 10 cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_COMMIT="${LLAMA_COMMIT:0:9}" >"$ROOT/configure.log" 2>&1 ||
  { tail -30 "$ROOT/configure.log" >&2; die "cmake configure failed (log: $ROOT/configure.log)"; }
nice -n 10 cmake --build "$BUILD" --config Release -j "$JOBS" --target llama-bench llama-quantize \
  >"$ROOT/build.log" 2>&1 ||
  { tail -30 "$ROOT/build.log" >&2; die "build failed (log: $ROOT/build.log)"; }
[ -x "$BIN/llama-bench" ] && [ -x "$BIN/llama-quantize" ] || die "build finished without $BIN/llama-bench"
echo "built llama.cpp in $(( $(date +%s) - start )) s" >&2
echo "$BIN"
