#!/usr/bin/env python3
"""Golden data for the demo DiT's architecture (tests/data/demo/): a tiny random pixel-space DiT exported
exactly as tools/train_demo.py exports the demo model (original key names, 3 input channels, fixed
variance, patch 4, no pos_embed, dit.* metadata), one forward pass and one guided DDIM trajectory from a
given x_T, computed by train_demo.py's PyTorch model. tests/models/demo_models_test.cpp checks that the
engine's CPU backend reproduces both. Runs on the CPU in seconds (PyTorch 1.13 or 2.x):

    python3 tools/make_demo_golden.py --out tests/data/demo
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_demo as T  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    cfg = dict(input_size=16, patch=4, hidden=32, depth=2, heads=2, num_classes=10)
    model = T.DiT(**cfg).eval()
    # DiT zero-initialises adaLN and the output layer (every block starts as the identity): give them
    # random values so the golden exercises every path.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "adaLN_modulation" in name or "final_layer.linear" in name:
                p.normal_(0, 0.1)
    meta = {"dit.hidden": 32, "dit.depth": 2, "dit.heads": 2, "dit.patch": 4, "dit.input_size": 16,
            "dit.in_channels": 3, "dit.mlp_hidden": 128, "dit.num_classes": 10, "dit.learn_sigma": 0,
            "class_names": '["a","b","c","d","e","f","g","h","i","j"]'}
    state = {k: v.detach().float() for k, v in model.state_dict().items()}
    T.save_safetensors(os.path.join(args.out, "dit_demo_tiny.safetensors"), state, meta)

    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 16, 16, generator=g)
    t = torch.tensor([17.0, 901.0])
    y = torch.tensor([3, 10])  # 10 = the null label
    with torch.no_grad():
        out = model(x, t, y)
    x_T = torch.randn(2, 3, 16, 16, generator=g)
    final = T.ddim_sample(model, [4, 7], 10, 3.0, None, torch.device("cpu"), x_T=x_T)
    nhwc = lambda a: a.permute(0, 2, 3, 1).contiguous()  # the engine's layout
    T.save_safetensors(os.path.join(args.out, "dit_demo_golden.safetensors"),
                       {"x": nhwc(x), "t": t, "y": y.int(), "out": nhwc(out), "x_T": nhwc(x_T),
                        "labels": torch.tensor([4, 7], dtype=torch.int32), "final": nhwc(final)},
                       {"steps": "10", "cfg": "3.0", "sampler": "ddim"})
    print(f"wrote {args.out}/dit_demo_tiny.safetensors and dit_demo_golden.safetensors")


if __name__ == "__main__":
    main()
