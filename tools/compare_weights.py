#!/usr/bin/env python3
"""Checks that a .tslm file holds the same weights as a GGUF file, byte for byte (used by
tools/bench_compare.sh so that tslm and llama.cpp are benchmarked on the same model bytes).

    python3 tools/compare_weights.py model.gguf model.tslm

Every GGUF tensor must be in the .tslm file under the same name, with the same type (f32, f16,
bf16, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k), the same shape and the same bytes. Exception: llama's attn_q / attn_k
rows, which GGUF stores in a rotary-permuted order and the importer puts back in Hugging Face
order; for them the rows are compared after undoing that permutation. Standard library only;
uncompressed .tslm tensors only. Prints one line; exits 1 on a difference.
"""
import struct, sys

GGUF_TYPES = {0: ("f32", 1, 4), 1: ("f16", 1, 2), 2: ("q4_0", 32, 18), 3: ("q4_1", 32, 20),
              8: ("q8_0", 32, 34), 12: ("q4_k", 256, 144), 13: ("q5_k", 256, 176), 14: ("q6_k", 256, 210),
              30: ("bf16", 1, 2)}
TSLM_TYPES = {0: "f32", 1: "f16", 2: "bf16", 16: "q8_0", 17: "q4_0", 18: "q4_1", 19: "q4_k", 20: "q5_k", 21: "q6_k"}
# value sizes of scalar metadata types (GGUF and .tslm share the numbering)
SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


class Reader:
    def __init__(self, buf, pos=0):
        self.b, self.p = buf, pos

    def u32(self):
        self.p += 4
        return struct.unpack_from("<I", self.b, self.p - 4)[0]

    def u64(self):
        self.p += 8
        return struct.unpack_from("<Q", self.b, self.p - 8)[0]

    def string(self):
        n = self.u64()
        self.p += n
        return bytes(self.b[self.p - n:self.p]).decode("utf-8", "replace")

    def value(self, t):
        """Reads a metadata value; returns scalars and strings, skips arrays (returns None)."""
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.u32(), self.u64()
            if et == 8:
                for _ in range(n):
                    k = self.u64()
                    self.p += k
            else:
                self.p += SCALAR[et] * n
            return None
        v = struct.unpack_from({1: "<b", 0: "<B", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f",
                                7: "<B", 10: "<Q", 11: "<q", 12: "<d"}[t], self.b, self.p)[0]
        self.p += SCALAR[t]
        return v


def read_gguf(path):
    buf = memoryview(open(path, "rb").read())
    if bytes(buf[:4]) != b"GGUF":
        sys.exit(f"{path}: not a GGUF file")
    r = Reader(buf, 4)
    version, n_tensors, n_kv = r.u32(), r.u64(), r.u64()
    if version not in (2, 3):
        sys.exit(f"{path}: GGUF version {version}")
    meta = {}
    for _ in range(n_kv):
        k = r.string()
        meta[k] = r.value(r.u32())
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        dims = [r.u64() for _ in range(r.u32())][::-1]  # outermost first, as .tslm
        t, off = r.u32(), r.u64()
        infos.append((name, t, dims, off))
    align = meta.get("general.alignment", 32)
    data = (r.p + align - 1) // align * align
    tensors = {}
    for name, t, dims, off in infos:
        if t not in GGUF_TYPES:
            sys.exit(f"{path}: {name} has GGUF type {t}, which .tslm does not store as it is")
            # (the comparison is only meaningful for types stored byte for byte)
        tn, blk, bs = GGUF_TYPES[t]
        n = 1
        for d in dims:
            n *= d
        size = n // blk * bs
        tensors[name] = (tn, dims, buf[data + off:data + off + size])
    return meta, tensors


def read_tslm(path):
    buf = memoryview(open(path, "rb").read())
    if bytes(buf[:4]) != b"TSLM":
        sys.exit(f"{path}: not a .tslm file")
    index_offset = struct.unpack_from("<Q", buf, 24)[0]
    r = Reader(buf, index_offset)
    meta = {}
    for _ in range(r.u64()):
        k = r.string()
        meta[k] = r.value(r.u32())
    tensors = {}
    for _ in range(r.u64()):
        name = r.string()
        dt = r.u32()
        dims = [r.u64() for _ in range(r.u32())]
        off, stored, size, comp = r.u64(), r.u64(), r.u64(), r.u32()
        r.u32(); r.u64()
        if comp:
            sys.exit(f"{path}: {name} is compressed; convert without --compress")
        tensors[name] = (TSLM_TYPES.get(dt, f"dtype{dt}"), dims, buf[off:off + size])
    return meta, tensors


def unpermute_rows(data, rows, heads):
    """GGUF attn_q/attn_k row order → Hugging Face order (llama.cpp's convert permutes
    (head, 2, half) → (head, half, 2); this is the inverse)."""
    row = len(data) // rows
    half = rows // heads // 2
    out = bytearray(len(data))
    for h in range(heads):
        for t in range(2):
            for i in range(half):
                dst = h * 2 * half + t * half + i
                src = h * 2 * half + i * 2 + t
                out[dst * row:(dst + 1) * row] = data[src * row:(src + 1) * row]
    return bytes(out)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    gmeta, g = read_gguf(sys.argv[1])
    _, t = read_tslm(sys.argv[2])
    arch = gmeta.get("general.architecture", "")
    heads = gmeta.get(f"{arch}.attention.head_count")
    kv_heads = gmeta.get(f"{arch}.attention.head_count_kv", heads)
    bad, types, nbytes = [], {}, 0
    for name, (tn, dims, data) in g.items():
        if name not in t:
            bad.append(f"{name}: missing from the .tslm file")
            continue
        ttn, tdims, tdata = t[name]
        if (ttn, tdims) != (tn, dims):
            bad.append(f"{name}: GGUF {tn} {dims}, .tslm {ttn} {tdims}")
            continue
        gdata = bytes(data)
        if arch == "llama" and name.endswith((".attn_q.weight", ".attn_k.weight")) and len(dims) == 2:
            gdata = unpermute_rows(gdata, dims[0], heads if ".attn_q." in name else kv_heads)
        if gdata != bytes(tdata):
            bad.append(f"{name}: {tn} bytes differ")
        types[tn] = types.get(tn, 0) + 1
        nbytes += len(gdata)
    if bad:
        print(f"compare_weights: {len(bad)} of {len(g)} tensors differ:", *bad[:10], sep="\n  ")
        sys.exit(1)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(types.items()))
    print(f"same weights: {len(g)} tensors ({summary}), {nbytes / 1e6:.1f} MB identical")


if __name__ == "__main__":
    main()
