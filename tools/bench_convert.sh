#!/usr/bin/env bash
# Peak RSS and time of `tslm convert` on a synthetic 1.2B-parameter Llama-3.2-1B-shaped f32
# model (4.9 GB of safetensors), to f16 and q4_0. Needs ~10 GB of free disk.
set -euo pipefail
cd "$(dirname "$0")/.."
TSLM=${1:-.build/release/tslm}
src=.cache/bench/llama-1b-f32
[ -f "$src/model.safetensors" ] || python3 tools/make_synthetic_llama.py "$src"
for t in f16 q4_0; do
  python3 - "$TSLM" "$src" "$t" <<'PY'
import resource, subprocess, sys, time, os
tslm, src, t = sys.argv[1:]
out = f".cache/bench/llama-1b-{t}.tslm"
t0 = time.time()
subprocess.run([tslm, "convert", src, "-o", out, "--type", t, "-q"], check=True)
dt = time.time() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
src_bytes = os.path.getsize(os.path.join(src, "model.safetensors"))
print(f"convert f32 -> {t}: {dt:.1f} s, peak RSS {rss/2**30:.2f} GiB = {rss/src_bytes:.3f} x the f32 model ({src_bytes/2**30:.2f} GiB), output {os.path.getsize(out)/2**30:.2f} GiB")
os.remove(out)
PY
done
