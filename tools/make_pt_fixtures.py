#!/usr/bin/env python3
"""Writes the PyTorch-checkpoint test fixtures into Tests/TSLMConvertTests/Fixtures/pt/.

Run from the repository root (needs torch 2.13 and numpy):

    python3 tools/make_pt_fixtures.py

Deterministic: fixed seeds, and torch.save writes identical bytes for identical contents.
Outputs:
  state_dict.pt        a nested checkpoint exercising dtypes, views, shared storages, leaves
  state_dict.expected.json
                       every tensor's expected name, dtype, shape and contiguous
                       little-endian bytes (hex), as torch sees them
  forbidden_global.pt  a valid torch zip layout whose data.pkl calls os.system (hand-assembled
                       opcodes; nothing is executed here)
  protocol4.pt         pickle protocol 4 (frames, STACK_GLOBAL, MEMOIZE, sets, bytes, big ints)
  legacy.pt            the pre-1.6 (non-zip) format
  torchscript.pt       a TorchScript archive (torch.jit.save), which is not a checkpoint
"""
import collections
import io
import json
import os
import pickle
import pickletools
import struct
import sys
import zipfile

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "TSLMConvertTests", "Fixtures", "pt")

DTYPES = {
    torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.float64: "f64",
    torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8",
    torch.uint8: "u8", torch.bool: "bool",
}


def state_dict():
    torch.manual_seed(1234)
    base = torch.randn(4, 6)  # one storage shared by several views below
    sd = collections.OrderedDict()
    sd["model.layers.0.self_attn.q_proj.weight"] = torch.randn(4, 4)
    sd["half"] = torch.randn(3, 5).half()
    sd["bf16"] = torch.randn(2, 7).bfloat16()
    sd["double"] = torch.randn(3).double()
    sd["long"] = torch.arange(-5, 7).reshape(3, 4)
    sd["int"] = torch.tensor([-2147483648, 0, 2147483647], dtype=torch.int32)
    sd["short"] = torch.tensor([[-32768, 1], [2, 32767]], dtype=torch.int16)
    sd["char"] = torch.tensor([-128, -1, 0, 127], dtype=torch.int8)
    sd["byte"] = torch.tensor([0, 1, 254, 255], dtype=torch.uint8)
    sd["mask"] = torch.tensor([True, False, True, True])
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 3))
    sd["tied.a"] = base                  # storage shared with the views below
    sd["tied.b"] = base.view(6, 4)
    sd["transposed"] = base.t()          # non-contiguous
    sd["slice"] = base[1:3]              # storage offset 6
    sd["strided"] = base[1:, ::2]        # offset and non-unit inner stride
    sd["expanded"] = torch.arange(3, dtype=torch.float32).expand(2, 3)  # stride 0
    sd["nested"] = {
        "inner": {"w": torch.randn(2, 2), "b": torch.zeros(2, dtype=torch.float16)},
        "list": [torch.ones(1, dtype=torch.int64), {"x": torch.full((2,), 7, dtype=torch.int32)}],
        "tuple": (torch.tensor([1.5, -2.5]),),
        "od": collections.OrderedDict(k=torch.eye(2)),
        "intkeys": {0: torch.tensor([10], dtype=torch.int16), 7: torch.tensor([11], dtype=torch.int16)},
    }
    sd["epoch"] = 3
    sd["lr"] = 0.125
    sd["note"] = "not a tensor"
    sd["nothing"] = None
    sd["flags"] = [True, 2, 3.0]
    return sd


def walk(v, name, out):
    if isinstance(v, torch.Tensor):
        out.append((name, v))
    elif isinstance(v, dict):
        for k, x in v.items():
            walk(x, f"{name}.{k}" if name else str(k), out)
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            walk(x, f"{name}.{i}" if name else str(i), out)


def expected(sd):
    found = []
    walk(sd, "", found)
    rows = []
    for name, t in found:
        c = t.detach().contiguous()
        if c.dtype == torch.bfloat16:
            c = c.view(torch.int16)
        rows.append({"name": name, "dtype": DTYPES[t.dtype], "shape": list(t.shape),
                     "hex": c.numpy().tobytes().hex()})
    return rows


def forbidden_pickle():
    """{'weight': os.system('echo pwned')} as protocol-2 opcodes."""
    cmd = b"echo pwned"
    return (b"\x80\x02}q\x00X\x06\x00\x00\x00weightq\x01"
            + b"cos\nsystem\nq\x02"
            + b"X" + struct.pack("<I", len(cmd)) + cmd + b"\x85q\x03Rq\x04s.")


def stable_legacy_keys(data):
    """The legacy format names storages by memory address; rename them (same length, so the
    pickles stay valid) to make the file deterministic."""
    f = io.BytesIO(data)
    for _ in range(4):  # magic, protocol, sys_info, the object
        for _ in pickletools.genops(f):
            pass
    start = f.tell()
    for _ in pickletools.genops(f):
        pass
    keys = pickle.loads(data[start:f.tell()])
    for i, k in enumerate(keys):
        data = data.replace(k.encode(), str(i).zfill(len(k)).encode())
    return data


def write_zip(path, prefix, entries):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(f"{prefix}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, data)


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = state_dict()
    torch.save(sd, os.path.join(OUT, "state_dict.pt"))
    with open(os.path.join(OUT, "state_dict.expected.json"), "w") as f:
        json.dump(expected(sd), f, indent=1)
        f.write("\n")

    w = torch.tensor([1.0, 2.0])
    torch.save({"w": w, "shared": [w, w], "big": 2**70, "neg": -300, "i64min": -2**63, "raw": b"abc",
                "set": {1, 2}, "frozen": frozenset({"x"}), "unicode": "gr\u00fc\u00dfe \u2713"},
               os.path.join(OUT, "protocol4.pt"), pickle_protocol=4)

    write_zip(os.path.join(OUT, "forbidden_global.pt"), "forbidden_global",
              [("data.pkl", forbidden_pickle()), ("byteorder", b"little"), ("version", b"3\n")])

    torch.manual_seed(5)
    buf = io.BytesIO()
    torch.save({"w": torch.randn(2, 2)}, buf, _use_new_zipfile_serialization=False)
    with open(os.path.join(OUT, "legacy.pt"), "wb") as f:
        f.write(stable_legacy_keys(buf.getvalue()))

    torch.manual_seed(6)
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buf)
    # Re-zip with fixed dates and without the random serialization id.
    src = zipfile.ZipFile(buf)
    write_zip(os.path.join(OUT, "torchscript.pt"), "torchscript",
              [(n.split("/", 1)[1], src.read(n)) for n in src.namelist() if not n.endswith("serialization_id")])


if __name__ == "__main__":
    # TorchScript's generated code lists class constants in set order: fix the hash seed.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "PYTHONHASHSEED": "0"})
    main()
