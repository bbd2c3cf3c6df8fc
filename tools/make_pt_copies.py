#!/usr/bin/env python3
"""Writes PyTorch (torch.save, zip format) copies of the tiny test models' safetensors files, so the tests
can check that every model loader gives identical outputs from .pt and .safetensors. The safetensors
metadata (model config) goes in as top-level string values next to the "model" state dict, which is
where the engine's PyTorch reader looks for it. Runs with any PyTorch (Debian's 1.13 here, 2.x on the GPU
machine); needs nothing but torch, numpy and json."""
import argparse
import json
import struct
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["tests/data/vit_tiny/vit_tiny.safetensors", "tests/data/dit_tiny/dit_tiny.safetensors",
           "tests/data/vae_tiny/model.safetensors"]
NUMPY = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
         "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path):
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = data[base + begin:base + end]
        if info["dtype"] == "BF16":
            t = torch.from_numpy(np.frombuffer(raw, dtype=np.int16).copy()).view(torch.bfloat16)
        else:
            t = torch.from_numpy(np.frombuffer(raw, dtype=NUMPY[info["dtype"]]).copy())
        tensors[name] = t.reshape(info["shape"])
    return tensors, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("files", nargs="*", default=DEFAULT, help="safetensors files (default: the tiny test models)")
    args = ap.parse_args()
    for f in args.files:
        src = ROOT / f if not Path(f).is_absolute() else Path(f)
        tensors, meta = read_safetensors(src)
        obj = {"model": tensors}
        obj.update({k: v for k, v in meta.items() if k != "format"})
        out = src.with_suffix(".pt")
        torch.save(obj, out)
        print(f"wrote {out.relative_to(ROOT)} ({len(tensors)} tensors, {len(meta)} metadata entries, "
              f"torch {torch.__version__})")


if __name__ == "__main__":
    main()
