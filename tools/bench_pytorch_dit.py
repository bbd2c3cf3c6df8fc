#!/usr/bin/env python3
"""PyTorch DiT-XL/2 baseline for `blr bench --model dit-xl2` (used by tools/bench_pytorch.py).

Our plain-PyTorch DiT (tools/reference_dit.py) with random weights, bf16, 256 px (32x32x4 latent):
eager and torch.compile(mode="reduce-overhead", fullgraph=True) (CUDA graphs), at batch 2 (one image with
classifier-free guidance) and batch 16 (8 images). Each result is the median of >= 100 forwards timed with
CUDA events, plus the peak allocated memory (weights included). Run it in the same device call as the
C++ benchmark so the ratios come from one card.
"""
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _time(fn, args, samples, warmup):
    import torch
    for _ in range(warmup):
        fn(*args)
    torch.cuda.synchronize()
    times = []
    for _ in range(samples):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(*args)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def run(quick=False):
    import torch
    import reference_dit as R

    if not torch.cuda.is_available():
        return [{"model": "dit-xl2", "impl": "pytorch", "error": "no CUDA device"}]
    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = R.DiT(**R.XL2).to(dev, torch.bfloat16).eval()
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    samples = 20 if quick else 100
    results = []
    compiled = None
    for variant in ("eager", "compiled"):
        if variant == "compiled":
            try:
                compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
            except Exception as e:  # noqa: BLE001 - report, do not crash the whole baseline run
                results.append({"model": "dit-xl2", "impl": "pytorch", "variant": variant, "error": repr(e)})
                continue
        fn = model if variant == "eager" else compiled
        for batch in (2, 16):
            if quick and batch == 16 and variant == "eager":
                continue
            x = torch.randn(batch, 4, 32, 32, device=dev, dtype=torch.bfloat16)
            t = torch.randint(0, 1000, (batch,), device=dev).float()
            y = torch.randint(0, 1001, (batch,), device=dev)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            with torch.inference_mode():
                times = _time(fn, (x, t, y), samples, warmup=5 if variant == "eager" else 15)
            results.append({
                "model": "dit-xl2", "impl": "pytorch", "variant": variant, "dtype": "bf16", "batch": batch,
                "images": batch // 2, "guidance": True, "median_ms": statistics.median(times),
                "min_ms": min(times), "max_ms": max(times), "samples": len(times),
                "peak_memory_bytes": torch.cuda.max_memory_allocated(), "parameters": params,
                "torch": torch.__version__, "device": torch.cuda.get_device_name(),
            })
    return results


if __name__ == "__main__":
    import json
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
