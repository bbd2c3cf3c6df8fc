#!/usr/bin/env python3
"""PyTorch baseline for `blr bench --model vit-b16`: timm's vit_base_patch16_224 (random weights, bf16) on
one GPU, eager and torch.compile(mode="reduce-overhead") (CUDA graphs), batch 1 and 32. Each result is the
median of >=100 forward passes timed with CUDA events (per call), plus peak memory
(torch.cuda.max_memory_allocated, weights included). Used by tools/bench_pytorch.py:
  python3 tools/bench_pytorch.py --model vit-b16 --json vit_pytorch.json
or alone: python3 tools/bench_pytorch_vit.py [--quick]."""
import json
import statistics
import sys

BATCHES = (1, 32)


def _time(fn, x, samples, warmup):
    import torch
    for _ in range(warmup):
        fn(x)
    torch.cuda.synchronize()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(samples)]
    for start, end in events:
        start.record()
        fn(x)
        end.record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) for s, e in events]


def run(quick=False):
    try:
        import torch
        import timm
    except ImportError as e:
        sys.exit(f"bench_pytorch_vit.py needs PyTorch and timm ({e}): run it on the GPU machine")
    if not torch.cuda.is_available():
        sys.exit("bench_pytorch_vit.py needs a CUDA device")
    samples = 100  # the comparison is defined on >=100 samples, even with --quick
    warmup = 5 if quick else 20
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = timm.create_model("vit_base_patch16_224", pretrained=False).to(device=device, dtype=torch.bfloat16).eval()
    params = sum(p.numel() for p in model.parameters())
    results = []
    for batch in BATCHES:
        x = torch.randn(batch, 3, 224, 224, device=device, dtype=torch.bfloat16)
        for variant in ("eager", "compiled"):
            torch._dynamo.reset()
            fn = model if variant == "eager" else torch.compile(model, mode="reduce-overhead", dynamic=False)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            with torch.inference_mode():
                # compile + CUDA graph recording happen in the first calls, outside the timed ones
                ms = _time(fn, x, samples, warmup + (3 if variant == "compiled" else 0))
            med = statistics.median(ms)
            results.append({
                "side": "pytorch", "model": "vit-b16", "impl": "timm vit_base_patch16_224", "variant": variant,
                "mode": "dense", "dtype": "bf16", "batch": batch, "parameters": params,
                "median_ms": med, "min_ms": min(ms), "max_ms": max(ms), "mean_ms": statistics.fmean(ms),
                "samples": len(ms), "ms_per_image": med / batch, "images_per_s": 1000.0 * batch / med,
                "peak_memory_bytes": torch.cuda.max_memory_allocated(),
                "device": torch.cuda.get_device_name(), "torch": torch.__version__, "timm": timm.__version__,
            })
            print(f"vit-b16 pytorch {variant:8s} batch {batch:3d}: {med:.3f} ms ({med / batch:.4f} ms/img), "
                  f"peak {results[-1]['peak_memory_bytes'] / 2**20:.1f} MiB", file=sys.stderr)
    return results


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
