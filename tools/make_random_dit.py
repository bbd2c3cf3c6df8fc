#!/usr/bin/env python3
"""A DiT-XL/2 checkpoint of the real shapes and key names with random weights (PyTorch's default init), for
timing what does not depend on the values -- e.g. `blr compress --timing` over all 84 BLAST layers -- on the
GPU machine, which cannot download the official checkpoint.
    python3 tools/make_random_dit.py --out /tmp/dit_xl2_random.safetensors [--dtype f32|bf16]"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_dit import DiT, XL2, save_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32", help="the official checkpoint is f32")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    model = DiT(**XL2)
    dt = torch.float32 if a.dtype == "f32" else torch.bfloat16
    sd = {k: v.to(dt) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_safetensors(a.out, sd, model.metadata())
    n = sum(v.numel() for v in sd.values())
    print(f"wrote {a.out}: {len(sd)} tensors, {n / 1e6:.1f} M parameters ({a.dtype})")


if __name__ == "__main__":
    main()
