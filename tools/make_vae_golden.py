#!/usr/bin/env python3
"""Builds the tiny VAE decoder golden data in tests/data/vae_tiny/:
  model.safetensors  random decoder weights under diffusers AutoencoderKL key names (new attention style),
                     plus a few encoder.* / quant_conv.* tensors the loader must ignore, and metadata
                     vae.groups (the tiny widths need fewer GroupNorm groups than SD's 32).
  io.safetensors     'latent' [2,3,5,4] NHWC in model space and 'image' [2,24,40,3] NHWC decoded by
                     tools/reference_vae.py in float64.
Config: latent 4, conv_in 4->32, mid 32 (resnet, single-head attention, resnet), up blocks 32,32,16,16
with 2 resnets each, the first three upsampling, GroupNorm(8), conv_out 16->3. Deterministic (seeded).
Runs with torch 1.13 (local) and 2.x (GPU machine); no diffusers needed."""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_vae import ReferenceVaeDecoder  # noqa: E402
from vae_safetensors_io import save_file  # noqa: E402

LATENT = 4
MID = 32
BLOCKS = [32, 32, 16, 16]
RESNETS = 2
GROUPS = 8
OUT = 3


def build(seed=0):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, std=1.0):
        return torch.randn(*shape, generator=g) * std

    sd = {}

    def conv(name, co, ci, k):
        sd[name + ".weight"] = randn(co, ci, k, k, std=(ci * k * k) ** -0.5)
        sd[name + ".bias"] = randn(co, std=0.05)

    def norm(name, c):
        sd[name + ".weight"] = 1.0 + randn(c, std=0.1)
        sd[name + ".bias"] = randn(c, std=0.1)

    def linear(name, o, i):
        sd[name + ".weight"] = randn(o, i, std=i ** -0.5)
        sd[name + ".bias"] = randn(o, std=0.05)

    def resnet(name, ci, co):
        norm(name + ".norm1", ci)
        conv(name + ".conv1", co, ci, 3)
        norm(name + ".norm2", co)
        conv(name + ".conv2", co, co, 3)
        if ci != co:
            conv(name + ".conv_shortcut", co, ci, 1)

    conv("post_quant_conv", LATENT, LATENT, 1)
    conv("decoder.conv_in", MID, LATENT, 3)
    resnet("decoder.mid_block.resnets.0", MID, MID)
    a = "decoder.mid_block.attentions.0"
    norm(a + ".group_norm", MID)
    for n in ("to_q", "to_k", "to_v", "to_out.0"):
        linear(f"{a}.{n}", MID, MID)
    resnet("decoder.mid_block.resnets.1", MID, MID)
    cin = MID
    for b, co in enumerate(BLOCKS):
        for r in range(RESNETS):
            resnet(f"decoder.up_blocks.{b}.resnets.{r}", cin if r == 0 else co, co)
        if b < len(BLOCKS) - 1:
            conv(f"decoder.up_blocks.{b}.upsamplers.0.conv", co, co, 3)
        cin = co
    norm("decoder.conv_norm_out", cin)
    conv("decoder.conv_out", OUT, cin, 3)
    # Present in real AutoencoderKL files, unused by the decoder.
    conv("quant_conv", 2 * LATENT, 2 * LATENT, 1)
    conv("encoder.conv_in", 8, 3, 3)
    return sd


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = Path(__file__).resolve().parent.parent
    ap.add_argument("--out-dir", default=str(root / "tests" / "data" / "vae_tiny"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sd = build(args.seed)
    meta = {"vae.groups": str(GROUPS), "format": "pt"}
    ref = ReferenceVaeDecoder(sd, meta)
    latent = torch.randn(2, LATENT, 3, 5, generator=torch.Generator().manual_seed(args.seed + 1))
    image = ref.decode(latent).float()
    save_file(sd, str(out / "model.safetensors"), metadata=meta)
    save_file({"latent": latent.permute(0, 2, 3, 1).contiguous(), "image": image.permute(0, 2, 3, 1).contiguous()},
              str(out / "io.safetensors"))
    n = sum(v.numel() for k, v in sd.items() if not k.startswith(("encoder.", "quant_conv.")))
    print(f"decoder parameters {n}; latent {list(latent.shape)} (NCHW) -> image {list(image.shape)}; "
          f"image range [{image.min():.3f}, {image.max():.3f}], std {image.std():.3f}")
    print(f"wrote {out}/model.safetensors, {out}/io.safetensors")


if __name__ == "__main__":
    main()
