#!/usr/bin/env bash
# Bit flips (issue 14): flips N random single bits (seeded), one at a time, in a q8_0 model
# with a tokenizer (tools/reliability_model.py: a 2-layer Llama whose q8_0 file has padding
# between tensors), and checks for each damaged copy that
#   - `tslm verify` exits 1 (detected; not 0, not a signal),
#   - `tslm info` and `tslm run` (a load without checksum verification, then 2 generated tokens)
#     end with an exit status, never a signal or a hang (60 s).
# Positions are uniform over the whole file; the regions hit (header, tensor data, padding,
# index) are counted. Then one more flip in each padding gap and 16 in the 64-byte header, so
# that both are covered even when the uniform draw misses them.
#
#   tools/bitflip_test.sh TSLM_BINARY [FLIPS=1000] [SEED=14]
set -euo pipefail
cd "$(dirname "$0")/.."
TSLM=$(realpath "${1:?usage: tools/bitflip_test.sh TSLM_BINARY [FLIPS] [SEED]}")
FLIPS=${2:-1000}
SEED=${3:-14}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tslm-bitflip.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
python3 tools/reliability_model.py "$WORK/src" --layers 2
"$TSLM" convert "$WORK/src" -o "$WORK/model.tslm" --type q8_0 -q
"$TSLM" verify "$WORK/model.tslm" >/dev/null
"$TSLM" info --json "$WORK/model.tslm" > "$WORK/info.json"
python3 - "$TSLM" "$WORK" "$FLIPS" "$SEED" <<'PY'
import json, random, struct, subprocess, sys, time
tslm, work, flips, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
model = open(f"{work}/model.tslm", "rb").read()
info = json.load(open(f"{work}/info.json"))
index_offset = struct.unpack_from("<Q", model, 24)[0]
ranges = sorted((t["offset"], t["offset"] + t["stored_bytes"]) for t in info["tensors"])
types = sorted({t["dtype"] for t in info["tensors"]})
assert "q8_0" in types, types

def region(pos):
    if pos < 64: return "header"
    if pos >= index_offset: return "index"
    for a, b in ranges:
        if a <= pos < b: return "tensor"
    return "padding"

gaps, at = [], 64
for a, b in ranges:
    if at < a: gaps.append((at, a))
    at = max(at, b)
if at < index_offset: gaps.append((at, index_offset))
padding_bytes = sum(b - a for a, b in gaps)
print(f"model: {len(model)} bytes, {len(ranges)} tensors ({', '.join(types)}), index at {index_offset} "
      f"({len(model) - index_offset} bytes), {len(gaps)} padding gaps ({padding_bytes} bytes)")

rng = random.Random(seed)
positions = [(rng.randrange(len(model)), rng.randrange(8)) for _ in range(flips)]
positions += [(rng.randrange(a, b), rng.randrange(8)) for a, b in gaps[:50]]
positions += [(rng.randrange(64), rng.randrange(8)) for _ in range(16)]
damaged = f"{work}/damaged.tslm"

def run(args):
    try:
        p = subprocess.run([tslm] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        return p.returncode, p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return "hang", ""

stats = {}
undetected, crashes = [], []
uniform_undetected = 0
t0 = time.time()
for i, (pos, bit) in enumerate(positions):
    data = bytearray(model)
    data[pos] ^= 1 << bit
    open(damaged, "wb").write(data)
    r = region(pos)
    s = stats.setdefault(r, [0, 0])
    s[0] += 1
    rc, err = run(["verify", damaged])
    if rc == 1:
        s[1] += 1
    elif rc == 0:
        undetected.append((pos, bit, r))
        uniform_undetected += i < flips
    else:
        crashes.append(("verify", pos, bit, r, rc, err[-300:]))
    for args in (["info", damaged], ["run", "-m", damaged, "-p", "Hi", "-n", "2", "-t", "1"]):
        rc, err = run(args)
        if rc not in (0, 1):
            crashes.append((args[0], pos, bit, r, rc, err[-300:]))
print(f"{len(positions)} flips ({flips} uniform + {len(positions) - flips - 16} in padding gaps + 16 in the header) in {time.time() - t0:.0f} s")
for r in ("header", "tensor", "padding", "index"):
    n, d = stats.get(r, [0, 0])
    print(f"  {r:8s}: {d}/{n} detected by tslm verify")
print(f"uniform flips detected: {flips - uniform_undetected}/{flips}; "
      f"all flips detected: {len(positions) - len(undetected)}/{len(positions)}; "
      f"crashes/hangs (verify, info, run): {len(crashes)}")
for u in undetected[:10]: print("  UNDETECTED: byte %d bit %d (%s)" % u)
for c in crashes[:10]: print("  CRASH: %s at byte %d bit %d (%s): %s\n%s" % c)
sys.exit(1 if undetected or crashes else 0)
PY
