#!/usr/bin/env python3
"""Plain-PyTorch DiT (Peebles & Xie) and its diffusion sampler, written from ../shared/REFERENCE.md §3.

Used as the golden reference for the C++ engine (tools/make_dit_golden.py) and as the PyTorch baseline of
`blr bench` (tools/bench_pytorch_dit.py). Module and parameter names follow the original facebookresearch
checkpoint (x_embedder.proj, t_embedder.mlp.0/2, y_embedder.embedding_table, blocks.N.attn.qkv, ...), so
its state_dict loads DiT-XL-2-256x256.pt directly; to_diffusers_state_dict() gives the diffusers names.

Tensors are NCHW here, like the original code; the C++ engine is NHWC (the golden script permutes).
Runs on PyTorch 1.13 (CPU, no scaled_dot_product_attention) and 2.x.
"""
import json
import math
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------------------------------------------------
# safetensors I/O: the package when present, otherwise a small writer/reader of the documented format.
# ---------------------------------------------------------------------------------------------------------
_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
              torch.int32: "I32", torch.uint8: "U8", torch.float64: "F64"}
_ST_TORCH = {v: k for k, v in _ST_DTYPES.items()}


def save_safetensors(path, tensors, metadata=None):
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
    try:
        from safetensors.torch import save_file
        save_file(tensors, str(path), metadata=metadata)
        return
    except ImportError:
        pass
    header, blobs, offset = {}, [], 0
    # Largest element size first keeps every tensor aligned.
    for name in sorted(tensors, key=lambda n: -tensors[n].element_size()):
        t = tensors[name]
        raw = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    """Returns (tensors, metadata)."""
    try:
        from safetensors import safe_open
        out = {}
        with safe_open(str(path), framework="pt") as f:
            for k in f.keys():
                out[k] = f.get_tensor(k)
            meta = f.metadata() or {}
        return out, meta
    except ImportError:
        pass
    data = Path(path).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for k, info in header.items():
        b, e = info["data_offsets"]
        dt = _ST_TORCH[info["dtype"]]
        buf = bytearray(data[base + b:base + e])
        if dt == torch.bfloat16:
            t = torch.frombuffer(buf, dtype=torch.uint8).view(torch.bfloat16) if len(buf) else torch.zeros(0, dtype=dt)
        else:
            t = torch.frombuffer(buf, dtype=dt) if len(buf) else torch.zeros(0, dtype=dt)
        out[k] = t.reshape(info["shape"]).clone()
    return out, meta


# ---------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------
def sincos_pos_embed_2d(hidden, grid):
    """[grid*grid, hidden] f32: first half encodes the column w, second half the row h; each half is
    [sin(pos*w_k), cos(pos*w_k)] with w_k = 1/10000^(k/(hidden/4)), computed in float64."""
    quarter = hidden // 4
    omega = 1.0 / 10000 ** (np.arange(quarter, dtype=np.float64) / quarter)
    hh, ww = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")

    def enc(pos):
        a = np.outer(pos.reshape(-1), omega)
        return np.concatenate([np.sin(a), np.cos(a)], axis=1)

    emb = np.concatenate([enc(ww), enc(hh)], axis=1)
    return torch.from_numpy(emb).float()


def timestep_features(t, dim=256, max_period=10000.0):
    """[cos(t*f_i), sin(t*f_i)], f_i = exp(-ln(max_period)*i/(dim/2)), in f32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v)
    w = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1]), dim=-1)
    return w @ v


class Attn(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        o = attention(qkv[0], qkv[1], qkv[2])
        return self.proj(o.transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, hidden, mlp):
        super().__init__()
        self.fc1 = nn.Linear(hidden, mlp)
        self.fc2 = nn.Linear(mlp, hidden)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
    def __init__(self, hidden, heads, mlp):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = Attn(hidden, heads)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden, mlp)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x, c):
        sm, cm, gm, sp, cp, gp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gm[:, None] * self.attn(modulate(self.norm1(x), sm, cm))
        x = x + gp[:, None] * self.mlp(modulate(self.norm2(x), sp, cp))
        return x


class FinalLayer(nn.Module):
    def __init__(self, hidden, patch, out_channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, patch * patch * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_channels, hidden):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, hidden, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden, freq_dim=256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t):
        return self.mlp(timestep_features(t, self.freq_dim).to(self.mlp[0].weight.dtype))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, hidden):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, hidden)  # + the null label

    def forward(self, y):
        return self.embedding_table(y)


XL2 = dict(hidden=1152, depth=28, heads=16, patch=2, input_size=32, in_channels=4, mlp=4608, num_classes=1000,
           learn_sigma=True)


class DiT(nn.Module):
    def __init__(self, hidden=1152, depth=28, heads=16, patch=2, input_size=32, in_channels=4, mlp=None,
                 num_classes=1000, learn_sigma=True):
        super().__init__()
        self.cfg = dict(hidden=hidden, depth=depth, heads=heads, patch=patch, input_size=input_size,
                        in_channels=in_channels, mlp=mlp or 4 * hidden, num_classes=num_classes,
                        learn_sigma=learn_sigma)
        self.in_channels = in_channels
        self.out_channels = 2 * in_channels if learn_sigma else in_channels
        self.patch = patch
        self.num_classes = num_classes
        self.x_embedder = PatchEmbed(patch, in_channels, hidden)
        self.t_embedder = TimestepEmbedder(hidden)
        self.y_embedder = LabelEmbedder(num_classes, hidden)
        grid = input_size // patch
        self.pos_embed = nn.Parameter(sincos_pos_embed_2d(hidden, grid)[None], requires_grad=False)
        self.blocks = nn.ModuleList([Block(hidden, heads, mlp or 4 * hidden) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden, patch, self.out_channels)

    def metadata(self):
        c = self.cfg
        return {"dit.hidden": c["hidden"], "dit.depth": c["depth"], "dit.heads": c["heads"], "dit.patch": c["patch"],
                "dit.input_size": c["input_size"], "dit.in_channels": c["in_channels"], "dit.mlp_hidden": c["mlp"],
                "dit.num_classes": c["num_classes"], "dit.learn_sigma": int(c["learn_sigma"])}

    def unpatchify(self, x):
        p, c = self.patch, self.out_channels
        h = w = int(x.shape[1] ** 0.5)
        x = x.reshape(x.shape[0], h, w, p, p, c)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(x.shape[0], c, h * p, w * p)

    def forward(self, x, t, y):
        """x [B, C, H, W], t [B] (original integer timesteps, any dtype), y [B] long -> [B, Cout, H, W]."""
        x = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for blk in self.blocks:
            x = blk(x, c)
        return self.unpatchify(self.final_layer(x, c))

    def forward_guided(self, x, t, y, scale, guided_channels=3):
        """Classifier-free guidance the way DiT samples: batch [x; x] with labels [y; null]; eps channels
        [0, guided_channels) = uncond + scale*(cond - uncond); the rest from the conditional half. Returns
        the conditional half [B, Cout, H, W]."""
        B = x.shape[0]
        null = torch.full_like(y, self.num_classes)
        out = self.forward(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))
        cond, uncond = out[:B], out[B:]
        g = guided_channels
        guided = uncond[:, :g] + scale * (cond[:, :g] - uncond[:, :g])
        return torch.cat([guided, cond[:, g:]], dim=1)


def to_diffusers_state_dict(sd, depth):
    """Original names -> diffusers DiTTransformer2DModel names (embedders duplicated per block, q/k/v split,
    no pos_embed tensor)."""
    out = {}
    out["pos_embed.proj.weight"] = sd["x_embedder.proj.weight"]
    out["pos_embed.proj.bias"] = sd["x_embedder.proj.bias"]
    out["proj_out_1.weight"] = sd["final_layer.adaLN_modulation.1.weight"]
    out["proj_out_1.bias"] = sd["final_layer.adaLN_modulation.1.bias"]
    out["proj_out_2.weight"] = sd["final_layer.linear.weight"]
    out["proj_out_2.bias"] = sd["final_layer.linear.bias"]
    for n in range(depth):
        d, o = f"transformer_blocks.{n}.", f"blocks.{n}."
        emb = d + "norm1.emb."
        for suffix in ("weight", "bias"):
            out[emb + f"timestep_embedder.linear_1.{suffix}"] = sd[f"t_embedder.mlp.0.{suffix}"].clone()
            out[emb + f"timestep_embedder.linear_2.{suffix}"] = sd[f"t_embedder.mlp.2.{suffix}"].clone()
            out[d + f"norm1.linear.{suffix}"] = sd[o + f"adaLN_modulation.1.{suffix}"]
            q, k, v = sd[o + f"attn.qkv.{suffix}"].chunk(3, dim=0)
            out[d + f"attn1.to_q.{suffix}"] = q.clone()
            out[d + f"attn1.to_k.{suffix}"] = k.clone()
            out[d + f"attn1.to_v.{suffix}"] = v.clone()
            out[d + f"attn1.to_out.0.{suffix}"] = sd[o + f"attn.proj.{suffix}"]
            out[d + f"ff.net.0.proj.{suffix}"] = sd[o + f"mlp.fc1.{suffix}"]
            out[d + f"ff.net.2.{suffix}"] = sd[o + f"mlp.fc2.{suffix}"]
        out[emb + "class_embedder.embedding_table.weight"] = sd["y_embedder.embedding_table.weight"].clone()
    return out


def engine_state_dict(model):
    """state_dict under the original checkpoint's names (they are the module names)."""
    return {k: v for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------------------------------------
# Diffusion (the DiT repo's gaussian_diffusion.py + respace.py, restated)
# ---------------------------------------------------------------------------------------------------------
def space_timesteps(T, K):
    if K < 1 or K > T:
        raise ValueError(f"cannot respace {T} steps to {K}")
    stride = 1.0 if K <= 1 else (T - 1) / (K - 1)
    cur, kept = 0.0, []
    for _ in range(K):
        kept.append(round(cur))  # Python's round: half to even
        cur += stride
    return sorted(set(kept))


class Schedule:
    """All arrays float64, indexed by the respaced step i in [0, K)."""

    def __init__(self, K, T=1000):
        scale = 1000 / T
        base = np.linspace(scale * 1e-4, scale * 0.02, T, dtype=np.float64)
        base_ac = np.cumprod(1.0 - base)
        self.timesteps = space_timesteps(T, K)
        last, betas = 1.0, []
        for t in self.timesteps:
            betas.append(1 - base_ac[t] / last)
            last = base_ac[t]
        b = np.array(betas, dtype=np.float64)
        self.betas = b
        ac = np.cumprod(1.0 - b)
        acp = np.append(1.0, ac[:-1])
        self.alphas_cumprod, self.alphas_cumprod_prev = ac, acp
        self.sqrt_recip_ac = np.sqrt(1.0 / ac)
        self.sqrt_recipm1_ac = np.sqrt(1.0 / ac - 1)
        self.posterior_variance = b * (1.0 - acp) / (1.0 - ac)
        pv = self.posterior_variance
        self.posterior_log_variance_clipped = np.log(np.append(pv[1], pv[1:])) if len(pv) > 1 else np.log(pv)
        self.coef1 = b * np.sqrt(acp) / (1.0 - ac)
        self.coef2 = (1.0 - acp) * np.sqrt(1.0 - b) / (1.0 - ac)
        self.fixed_large_log_variance = np.log(np.append(pv[1], b[1:])) if len(pv) > 1 else np.log(b)


def _f32(a, i):
    return torch.tensor(float(a[i]), dtype=torch.float32)


def sampler_update(sched, i, x, eps, v, noise, kind, learned=True):
    """One step from respaced index i in f32, in the reference's order of operations."""
    x0 = _f32(sched.sqrt_recip_ac, i) * x - _f32(sched.sqrt_recipm1_ac, i) * eps
    if kind == "ddim":
        eps2 = (_f32(sched.sqrt_recip_ac, i) * x - x0) / _f32(sched.sqrt_recipm1_ac, i)
        abp = _f32(sched.alphas_cumprod_prev, i)
        return x0 * torch.sqrt(abp) + torch.sqrt(1 - abp) * eps2
    mean = _f32(sched.coef1, i) * x0 + _f32(sched.coef2, i) * x
    if learned:
        frac = (v + 1) / 2
        log_var = frac * _f32(np.log(sched.betas), i) + (1 - frac) * _f32(sched.posterior_log_variance_clipped, i)
    else:
        log_var = torch.full_like(x, float(np.float32(sched.fixed_large_log_variance[i])))
    mask = 0.0 if i == 0 else 1.0
    return mean + mask * torch.exp(0.5 * log_var) * noise


@torch.no_grad()
def sample(model, x_T, y, K, kind="ddpm", cfg=4.0, noise=None, guided_channels=3, trajectory=None):
    """x_T [B, C, H, W] f32; noise [K, B, C, H, W] (step s uses noise[s]) or None (torch.randn).
    Guidance when cfg != 1. Returns the final latent; appends each step's latent to `trajectory`."""
    sched = Schedule(K)
    x = x_T.clone()
    C = model.in_channels
    learned = model.out_channels == 2 * C
    for s in range(K):
        i = K - 1 - s
        t = torch.full((x.shape[0],), sched.timesteps[i], dtype=torch.float32, device=x.device)
        if cfg != 1.0:
            out = model.forward_guided(x, t, y, cfg, guided_channels).float()
        else:
            out = model(x, t, y).float()
        eps, v = out[:, :C], (out[:, C:] if learned else None)
        n = noise[s] if noise is not None else torch.randn_like(x)
        x = sampler_update(sched, i, x, eps, v, n, kind, learned)
        if trajectory is not None:
            trajectory.append(x.clone())
    return x
