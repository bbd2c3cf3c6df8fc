#!/usr/bin/env python3
"""PyTorch baselines for `blr bench`, run on the GPU machine in the same call as our benchmarks so the
ratios come from one card. Dispatches to bench_pytorch_vit.py (timm ViT-B/16) and bench_pytorch_dit.py
(our reference PyTorch DiT-XL/2 + VAE decoder); each writes a JSON list of results."""
import argparse
import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MODELS = {"vit-b16": "bench_pytorch_vit", "dit-xl2": "bench_pytorch_dit"}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", choices=sorted(MODELS) + ["all"], default="all")
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    args = ap.parse_args()
    results = []
    for name in (sorted(MODELS) if args.model == "all" else [args.model]):
        module = importlib.import_module(MODELS[name])
        results += module.run(quick=args.quick)
    text = json.dumps(results, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
