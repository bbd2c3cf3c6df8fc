#!/usr/bin/env python3
"""Minimal safetensors read/write for the VAE tools: uses the `safetensors` package when it is installed
and otherwise a small implementation of the format (8-byte little-endian header length, a JSON header
{name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then the raw little-endian data)."""
import json
import struct

import numpy as np
import torch

_DTYPES = {
    "F64": (torch.float64, np.float64), "F32": (torch.float32, np.float32), "F16": (torch.float16, np.float16),
    "I64": (torch.int64, np.int64), "I32": (torch.int32, np.int32), "U8": (torch.uint8, np.uint8),
}
_NAMES = {v[0]: k for k, v in _DTYPES.items()}


def _bf16_to_f32(raw):
    u16 = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
    return torch.from_numpy(u16.view(np.float32).copy())


def save_file(tensors, path, metadata=None):
    """tensors: dict name -> torch.Tensor (any device; bf16 is written as BF16)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    try:
        from safetensors.torch import save_file as st_save
        st_save(tensors, path, metadata=metadata)
        return
    except ImportError:
        pass
    header, chunks, offset = {}, [], 0
    # Largest element size first keeps every tensor aligned to its element size.
    for name in sorted(tensors, key=lambda n: -tensors[n].element_size()):
        t = tensors[name]
        if t.dtype == torch.bfloat16:
            raw = (t.view(torch.int16).numpy().astype(np.int16)).tobytes()
            dtype = "BF16"
        else:
            dtype = _NAMES[t.dtype]
            raw = t.numpy().astype(_DTYPES[dtype][1]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for c in chunks:
            f.write(c)


def load_file(path):
    """Returns (dict name -> torch.Tensor on the CPU, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = data[base + b:base + e]
        if info["dtype"] == "BF16":
            t = _bf16_to_f32(raw).to(torch.bfloat16)
        else:
            t = torch.from_numpy(np.frombuffer(raw, dtype=_DTYPES[info["dtype"]][1]).copy())
        out[name] = t.reshape(info["shape"])
    return out, metadata
