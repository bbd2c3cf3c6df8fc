#!/usr/bin/env python3
"""Golden data for the C++ DiT and sampler tests (tests/data/dit_tiny/), from tools/reference_dit.py.

A tiny DiT (width 64, depth 2, 4 heads, patch 2, 8x8x4 latent, 10 classes, learned sigma) with random
weights, saved twice — original names (dit_tiny.safetensors, with pos_embed) and diffusers names
(dit_tiny_diffusers.safetensors, without pos_embed, embedders duplicated per block) — plus:
  forward.safetensors   x [B,H,W,C] (NHWC), t [B] f32, y [B] i32 (one null label), out [B,H,W,2C]
  ddpm.safetensors      guided (cfg 4) 10-step DDPM: x_T, noise [K,B,H,W,C], trajectory [K,B,H,W,C], final
  ddim.safetensors      guided (cfg 4) 10-step DDIM from the same x_T
  ddpm_plain.safetensors unguided (cfg 1) 5-step DDPM
  decode.safetensors    the DDIM final latent -> image through tools/reference_vae.py with the tiny VAE of
                        tests/data/vae_tiny (skipped when either is missing)
Everything is NHWC like the engine. Noise is injected (the C++ test hands it to the sampler), so the
golden does not depend on any random generator matching. Run: python3 tools/make_dit_golden.py
"""
import argparse
import importlib
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_dit as R  # noqa: E402

TINY = dict(hidden=64, depth=2, heads=4, patch=2, input_size=8, in_channels=4, mlp=256, num_classes=10,
            learn_sigma=True)


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


def nchw(t):
    return t.permute(0, 3, 1, 2).contiguous()


def make_model(seed=0):
    torch.manual_seed(seed)
    m = R.DiT(**TINY).float().eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name == "pos_embed":
                continue
            if p.ndim >= 2:
                fan_in = p[0].numel()
                p.normal_(0.0, 1.0 / fan_in ** 0.5)
            else:
                p.normal_(0.0, 0.1)
        m.y_embedder.embedding_table.weight.normal_(0.0, 1.0)
        # Keep predicted noise O(0.3) so guided trajectories stay in a sane range (a random model is not
        # a denoiser; large eps makes x0 = (x - sqrt(1-a)·eps)/sqrt(a) explode).
        m.final_layer.linear.weight.mul_(0.3)
    return m


def trajectory(model, x_T, y, K, kind, cfg, seed):
    g = torch.Generator().manual_seed(seed)
    B, C, H, W = x_T.shape
    noise = torch.randn(K, B, C, H, W, generator=g)
    traj = []
    final = R.sample(model, x_T, y, K, kind=kind, cfg=cfg, noise=noise, trajectory=traj)
    return {"x_T": nhwc(x_T), "noise": noise.permute(0, 1, 3, 4, 2).contiguous(), "labels": y.int(),
            "trajectory": torch.stack([nhwc(t) for t in traj]), "final": nhwc(final),
            "cfg": torch.tensor([cfg], dtype=torch.float32), "steps": torch.tensor([K], dtype=torch.int32)}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests" / "data" / "dit_tiny"))
    ap.add_argument("--vae-model", help="tiny VAE decoder (default: tests/data/vae_tiny/model.safetensors)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)

    model = make_model()
    meta = model.metadata()
    sd = R.engine_state_dict(model)
    R.save_safetensors(out / "dit_tiny.safetensors", sd, meta)
    dsd = R.to_diffusers_state_dict(sd, TINY["depth"])
    R.save_safetensors(out / "dit_tiny_diffusers.safetensors", dsd, meta)

    g = torch.Generator().manual_seed(1)
    S, C = TINY["input_size"], TINY["in_channels"]
    x = torch.randn(3, C, S, S, generator=g)
    t = torch.tensor([0.0, 377.0, 999.0])
    y = torch.tensor([3, 9, TINY["num_classes"]])  # the last one is the null label
    o = model(x, t, y)
    R.save_safetensors(out / "forward.safetensors", {"x": nhwc(x), "t": t, "y": y.int(), "out": nhwc(o)})

    x_T = torch.randn(2, C, S, S, generator=g)
    labels = torch.tensor([3, 7])
    R.save_safetensors(out / "ddpm.safetensors", trajectory(model, x_T, labels, 10, "ddpm", 4.0, seed=2))
    R.save_safetensors(out / "ddim.safetensors", trajectory(model, x_T, labels, 10, "ddim", 4.0, seed=3))
    R.save_safetensors(out / "ddpm_plain.safetensors", trajectory(model, x_T, labels, 5, "ddpm", 1.0, seed=4))

    # A decoded image: the DDIM latent through tools/reference_vae.py's decoder with the tiny VAE of
    # tests/data/vae_tiny (both written for the VAE decoder), when they are present.
    vae_model = Path(args.vae_model) if args.vae_model else out.parent / "vae_tiny" / "model.safetensors"
    try:
        vae_ref = importlib.import_module("reference_vae")
    except ImportError:
        vae_ref = None
    if vae_ref is not None and vae_model.exists():
        tensors, vmeta = R.load_safetensors(vae_model)
        dec = vae_ref.ReferenceVaeDecoder(tensors, vmeta)
        final = R.load_safetensors(out / "ddim.safetensors")[0]["final"]
        img = dec.decode(nchw(final).double()).float()
        R.save_safetensors(out / "decode.safetensors", {"latent": final, "image": nhwc(img)})
        print("decode golden written from", vae_model)
    else:
        print("tools/reference_vae.py or", vae_model, "not found: decode golden skipped")
    print("wrote", sorted(p.name for p in out.iterdir()))


if __name__ == "__main__":
    main()
