#!/usr/bin/env python3
"""Independent PyTorch reference of the Stable Diffusion VAE decoder (REFERENCE.md §4), written from the
architecture description with plain torch ops — no diffusers. It reads the same safetensors keys as the
engine (diffusers AutoencoderKL names, either attention key style, [C,C] or [C,C,1,1] attention weights),
infers the structure from tensor shapes, and decodes NCHW latents in model space.

Usage as a script:  reference_vae.py MODEL.safetensors --latent IO.safetensors [--out OUT.safetensors]
decodes the tensor "latent" ([B,h,w,C] NHWC) of IO and writes "image" ([B,H,W,3] NHWC)."""
import argparse
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vae_safetensors_io import load_file, save_file  # noqa: E402


class ReferenceVaeDecoder:
    def __init__(self, tensors, metadata=None, dtype=torch.float64):
        metadata = metadata or {}
        anchor = "decoder.conv_in.weight"
        prefix = next((k[: -len(anchor)] for k in tensors if k.endswith(anchor)), None)
        if prefix is None:
            raise ValueError("no decoder.conv_in.weight: not an AutoencoderKL checkpoint")
        self.t = {k[len(prefix):]: v.to(dtype) for k, v in tensors.items() if k.startswith(prefix)}
        self.groups = int(metadata.get("vae.groups", 32))
        self.eps = float(metadata.get("vae.eps", 1e-6))
        self.scaling = float(metadata.get("vae.scaling_factor", 0.18215))
        self.heads = int(metadata.get("vae.attention_heads", 1))
        self.blocks = []
        b = 0
        while f"decoder.up_blocks.{b}.resnets.0.conv1.weight" in self.t:
            r = 0
            while f"decoder.up_blocks.{b}.resnets.{r}.conv1.weight" in self.t:
                r += 1
            self.blocks.append((r, f"decoder.up_blocks.{b}.upsamplers.0.conv.weight" in self.t))
            b += 1
        att = "decoder.mid_block.attentions.0."
        self.attention = att + "group_norm.weight" in self.t
        self.legacy = att + "query.weight" in self.t

    def conv(self, x, name, pad):
        return F.conv2d(x, self.t[name + ".weight"], self.t[name + ".bias"], padding=pad)

    def norm(self, x, name):
        return F.group_norm(x, self.groups, self.t[name + ".weight"], self.t[name + ".bias"], self.eps)

    def resnet(self, x, name):
        h = self.conv(F.silu(self.norm(x, name + ".norm1")), name + ".conv1", 1)
        h = self.conv(F.silu(self.norm(h, name + ".norm2")), name + ".conv2", 1)
        skip = self.conv(x, name + ".conv_shortcut", 0) if name + ".conv_shortcut.weight" in self.t else x
        return skip + h

    def linear(self, x, name):
        w = self.t[name + ".weight"]
        return F.linear(x, w.reshape(w.shape[0], w.shape[1]), self.t[name + ".bias"])

    def attend(self, x, name):
        q_name, k_name, v_name, o_name = (
            ("query", "key", "value", "proj_attn") if self.legacy else ("to_q", "to_k", "to_v", "to_out.0"))
        B, C, H, W = x.shape
        h = self.norm(x, name + ".group_norm").reshape(B, C, H * W).transpose(1, 2)  # [B, S, C]
        d = C // self.heads

        def split(t):
            return t.reshape(B, H * W, self.heads, d).transpose(1, 2)  # [B, heads, S, d]

        q, k, v = (split(self.linear(h, f"{name}.{n}")) for n in (q_name, k_name, v_name))
        p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
        o = (p @ v).transpose(1, 2).reshape(B, H * W, C)
        o = self.linear(o, f"{name}.{o_name}")
        return x + o.transpose(1, 2).reshape(B, C, H, W)

    @torch.no_grad()
    def decode(self, z):
        """z: [B, C, h, w] latent in model space -> [B, 3, 8h, 8w] image in about [-1, 1]."""
        x = z.to(next(iter(self.t.values())).dtype) / self.scaling
        if "post_quant_conv.weight" in self.t:
            x = self.conv(x, "post_quant_conv", 0)
        x = self.conv(x, "decoder.conv_in", 1)
        x = self.resnet(x, "decoder.mid_block.resnets.0")
        if self.attention:
            x = self.attend(x, "decoder.mid_block.attentions.0")
        x = self.resnet(x, "decoder.mid_block.resnets.1")
        for b, (resnets, upsample) in enumerate(self.blocks):
            for r in range(resnets):
                x = self.resnet(x, f"decoder.up_blocks.{b}.resnets.{r}")
            if upsample:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
                x = self.conv(x, f"decoder.up_blocks.{b}.upsamplers.0.conv", 1)
        x = F.silu(self.norm(x, "decoder.conv_norm_out"))
        return self.conv(x, "decoder.conv_out", 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--latent", required=True, help="safetensors file with 'latent' [B,h,w,C] (NHWC)")
    ap.add_argument("--out", help="write 'image' [B,H,W,3] (NHWC) here")
    args = ap.parse_args()
    tensors, meta = load_file(args.model)
    io, _ = load_file(args.latent)
    ref = ReferenceVaeDecoder(tensors, meta)
    image = ref.decode(io["latent"].permute(0, 3, 1, 2)).permute(0, 2, 3, 1).float().contiguous()
    print(f"image {list(image.shape)} min {image.min():.4f} max {image.max():.4f} mean {image.mean():.4f}")
    if "image" in io:
        err = (image - io["image"]).abs().max().item()
        print(f"max |image - io.image| = {err:.3e}")
    if args.out:
        save_file({"latent": io["latent"], "image": image}, args.out)


if __name__ == "__main__":
    main()
