#!/usr/bin/env python3
"""Trains the built-in demo models on the synthetic demo-shapes pictures (tools/demo_data.py) and exports
them in the layouts the engine loads (docs/MODELS.md):

  demo_dit.safetensors        class-conditional pixel-space DiT (original facebookresearch key names, 3 input
                              channels, no VAE, fixed variance), EMA weights
  demo_vit.safetensors        ViT classifier (timm key names)
  demo_vit_blast_trained.safetensors
                              the same ViT with BLAST qkv/fc1/fc2 layers trained from the start (the BLAST
                              paper's setting), factors under our key names N.blast_U/S/V (engine/nn/linear.h)

All in bf16, with metadata: the config ("dit.*" / "vit.*"), "class_names" (JSON list), and "demo.training"
(JSON: exact command, seed, steps, batch, learning rate, final losses, minutes, device, PyTorch version, test
accuracy measured here in PyTorch). The data is generated on the training device every step (no dataset on
disk); the held-out test set is tools/demo_data.py's CPU set with seed 1234, which training never sees
(training draws from the device generator seeded with --seed).

  python3 tools/train_demo.py --out OUT                    # everything (GPU: about 5 minutes on an H100)
  python3 tools/train_demo.py --out OUT --only vit --steps-scale 0.01   # quick CPU smoke run

Each model stops at its step count or its time budget (--minutes-*), whichever comes first; the learning-rate
schedule follows whichever is further along, so a cut run still anneals. Works on PyTorch 1.13 (CPU) and 2.x;
uses bf16 autocast and flash attention on CUDA.
"""
import argparse
import copy
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_data  # noqa: E402

TEST_SEED = 1234
TEST_COUNT = 1000


# ------------------------------------------------------------------------------------------------------
# safetensors: the package when present, else a writer of the simple documented format
# ------------------------------------------------------------------------------------------------------
_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
              torch.int32: "I32", torch.uint8: "U8"}


def save_safetensors(path, tensors, metadata):
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {str(k): str(v) for k, v in metadata.items()}
    try:
        from safetensors.torch import save_file
        save_file(tensors, path, metadata=metadata)
        return
    except ImportError:
        pass
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors, key=lambda n: (-tensors[n].element_size(), n)):  # keeps every tensor aligned
        t = tensors[name]
        raw = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


# ------------------------------------------------------------------------------------------------------
# Layers
# ------------------------------------------------------------------------------------------------------
def attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v)
    w = torch.softmax((q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5), dim=-1)
    return w @ v


class BlastLinear(nn.Module):
    """y = W x + bias with W split into b×b blocks, W_kj = U_k · diag(s_kj) · V_j (engine/nn/linear.h):
    U [b, out/b, r], S [b, b, r], V [b, r, in/b]. Parameters are named so that state_dict() gives the
    engine's keys N.blast_U, N.blast_S, N.blast_V, N.bias."""

    def __init__(self, in_features, out_features, blocks, rank):
        super().__init__()
        if in_features % blocks or out_features % blocks:
            raise ValueError(f"BLAST b={blocks} must divide {out_features}x{in_features}")
        self.in_features, self.out_features, self.b, self.r = in_features, out_features, blocks, rank
        # Var(W) = r · Var(U) · Var(V) · E[s²] = 1 / (3 · in), like nn.Linear's default init; s starts at 1.
        std = (3.0 * in_features * rank) ** -0.25
        self.blast_U = nn.Parameter(torch.randn(blocks, out_features // blocks, rank) * std)
        self.blast_S = nn.Parameter(torch.ones(blocks, blocks, rank))
        self.blast_V = nn.Parameter(torch.randn(blocks, rank, in_features // blocks) * std)
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        lead = x.shape[:-1]
        xb = x.reshape(-1, self.b, self.in_features // self.b)                 # [n, j, i]
        y = torch.einsum("nji,jri->njr", xb, self.blast_V.to(x.dtype))          # V_j x_j
        z = torch.einsum("njr,kjr->nkr", y, self.blast_S.to(x.dtype))           # Σ_j s_kj ⊙ y_j
        out = torch.einsum("nkr,kor->nko", z, self.blast_U.to(x.dtype))         # U_k z_k
        return out.reshape(*lead, self.out_features) + self.bias.to(out.dtype)

    def dense_weight(self):
        """The dense [out, in] matrix these factors stand for (tests: forward == x · Wᵀ + bias)."""
        w = torch.einsum("kor,kjr,jri->koji", self.blast_U, self.blast_S, self.blast_V)
        return w.reshape(self.out_features, self.in_features)


def make_linear(i, o, blast=None):
    return nn.Linear(i, o) if blast is None else BlastLinear(i, o, blast[0], blast[1])


# ------------------------------------------------------------------------------------------------------
# ViT (timm VisionTransformer names: patch_embed.proj, cls_token, pos_embed, blocks.N.{norm1, attn.qkv,
# attn.proj, norm2, mlp.fc1, mlp.fc2}, norm, head; LayerNorm eps 1e-6, exact GELU, class-token pooling)
# ------------------------------------------------------------------------------------------------------
class VitAttention(nn.Module):
    def __init__(self, dim, heads, blast):
        super().__init__()
        self.heads = heads
        self.qkv = make_linear(dim, 3 * dim, blast)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        o = attention(qkv[0], qkv[1], qkv[2])
        return self.proj(o.transpose(1, 2).reshape(B, N, C))


class VitMlp(nn.Module):
    def __init__(self, dim, hidden, blast):
        super().__init__()
        self.fc1 = make_linear(dim, hidden, blast)
        self.fc2 = make_linear(hidden, dim, blast)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class VitBlock(nn.Module):
    def __init__(self, dim, heads, mlp, blast):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = VitAttention(dim, heads, blast)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = VitMlp(dim, mlp, blast)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, cin, dim):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, tokens (row-major), dim]


class ViT(nn.Module):
    def __init__(self, image_size, patch, width, depth, heads, mlp, num_classes, blast=None):
        super().__init__()
        self.cfg = dict(image_size=image_size, patch=patch, width=width, depth=depth, heads=heads, mlp=mlp,
                        num_classes=num_classes)
        self.patch_embed = PatchEmbed(patch, 3, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.randn(1, (image_size // patch) ** 2 + 1, width) * 0.02)
        self.blocks = nn.ModuleList([VitBlock(width, heads, mlp, blast) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, num_classes)
        nn.init.trunc_normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1) + self.pos_embed.to(x.dtype)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x)[:, 0])


# ------------------------------------------------------------------------------------------------------
# DiT (original facebookresearch names: x_embedder.proj, t_embedder.mlp.0/2, y_embedder.embedding_table,
# blocks.N.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2, adaLN_modulation.1}, final_layer.{linear,
# adaLN_modulation.1}; LayerNorm without affine eps 1e-6, tanh GELU, sin-cos positions recomputed by the
# engine so they are not exported)
# ------------------------------------------------------------------------------------------------------
def sincos_2d(hidden, grid):
    quarter = hidden // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    hh, ww = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                            indexing="ij")

    def enc(pos):
        a = pos.reshape(-1, 1) * omega[None]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1)
    return torch.cat([enc(ww), enc(hh)], dim=1).float()[None]  # first half: column w, second: row h


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden, freq=256):
        super().__init__()
        self.freq = freq
        self.mlp = nn.Sequential(nn.Linear(freq, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t):
        half = self.freq // 2
        f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        a = t.float()[:, None] * f[None]
        return self.mlp(torch.cat([torch.cos(a), torch.sin(a)], dim=-1))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, hidden):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, hidden)  # last row: the null label

    def forward(self, y):
        return self.embedding_table(y)


class DitBlock(nn.Module):
    def __init__(self, hidden, heads, mlp, blast=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = VitAttention(hidden, heads, blast)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(hidden, mlp)
        self.mlp.fc2 = nn.Linear(mlp, hidden)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x, c):
        s1, sc1, g1, s2, sc2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + g1[:, None] * self.attn(modulate(self.norm1(x), s1, sc1))
        h = modulate(self.norm2(x), s2, sc2)
        return x + g2[:, None] * self.mlp.fc2(F.gelu(self.mlp.fc1(h), approximate="tanh"))


class FinalLayer(nn.Module):
    def __init__(self, hidden, patch, out_ch):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, patch * patch * out_ch)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, input_size, patch, hidden, depth, heads, num_classes, in_ch=3, mlp_ratio=4):
        super().__init__()
        self.cfg = dict(input_size=input_size, patch=patch, hidden=hidden, depth=depth, heads=heads,
                        num_classes=num_classes, in_channels=in_ch, mlp_hidden=mlp_ratio * hidden)
        self.patch, self.in_ch, self.num_classes = patch, in_ch, num_classes
        self.x_embedder = PatchEmbed(patch, in_ch, hidden)
        self.t_embedder = TimestepEmbedder(hidden)
        self.y_embedder = LabelEmbedder(num_classes, hidden)
        self.register_buffer("pos_embed", sincos_2d(hidden, input_size // patch), persistent=False)
        self.blocks = nn.ModuleList([DitBlock(hidden, heads, mlp_ratio * hidden) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden, patch, in_ch)  # fixed variance: noise channels only
        # DiT's initialisation: xavier linears, zero adaLN and output (each block starts as the identity).
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for blk in list(self.blocks) + [self.final_layer]:
            nn.init.zeros_(blk.adaLN_modulation[1].weight)
            nn.init.zeros_(blk.adaLN_modulation[1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def forward(self, x, t, y):
        N, C, H, W = x.shape
        p = self.patch
        h = self.x_embedder(x) + self.pos_embed.to(x.dtype)
        c = self.t_embedder(t) + self.y_embedder(y)
        for blk in self.blocks:
            h = blk(h, c)
        out = self.final_layer(h, c)                                   # [N, T, p·p·C], (p, q, c) c fastest
        g = H // p
        out = out.reshape(N, g, g, p, p, C)
        return torch.einsum("nhwpqc->nchpwq", out).reshape(N, C, H, W)


# ------------------------------------------------------------------------------------------------------
# Diffusion (DiT's schedule: linear betas 1e-4 .. 0.02 over 1000 steps; DDIM η=0 on the respaced steps)
# ------------------------------------------------------------------------------------------------------
def alphas_cumprod(device):
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0).float().to(device)


@torch.no_grad()
def ddim_sample(model, classes, steps, cfg, generator, device, x_T=None):
    """Pixels in [-1, 1], [n, C, S, S]. Respacing keeps timesteps round(i·999/(K−1)) (ties to even, as the
    DiT repo and the engine do). Guidance applies to every channel (all three are noise channels)."""
    abar = alphas_cumprod(device)
    ts = sorted({int(round(i * 999 / (steps - 1))) for i in range(steps)}) if steps > 1 else [999]
    n = len(classes)
    S = model.cfg["input_size"]
    x = torch.randn(n, model.in_ch, S, S, generator=generator, device=device) if x_T is None else x_T.clone()
    y = torch.as_tensor(classes, device=device)
    null = torch.full_like(y, model.num_classes)
    for i in reversed(range(len(ts))):
        t = ts[i]
        a_t = abar[t]
        a_prev = abar[ts[i - 1]] if i > 0 else torch.tensor(1.0, device=device)
        tt = torch.full((n,), t, device=device)
        with autocast(device):
            if cfg != 1.0:
                e = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([y, null])).float()
                eps = e[n:] + cfg * (e[:n] - e[n:])
            else:
                eps = model(x, tt, y).float()
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x


# ------------------------------------------------------------------------------------------------------
# Training helpers
# ------------------------------------------------------------------------------------------------------
def autocast(device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


class Schedule:
    """Warm-up then cosine decay, driven by max(step fraction, time fraction)."""

    def __init__(self, lr, steps, minutes, warmup):
        self.lr, self.steps, self.seconds, self.warmup = lr, steps, minutes * 60.0, warmup
        self.t0 = time.time()

    def progress(self, step):
        return max(step / self.steps, (time.time() - self.t0) / self.seconds)

    def done(self, step):
        return step >= self.steps or time.time() - self.t0 >= self.seconds

    def lr_at(self, step):
        warm = min(1.0, (step + 1) / self.warmup)
        return self.lr * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, self.progress(step))))


def test_set(device):
    g = torch.Generator().manual_seed(TEST_SEED)
    imgs, labels = demo_data.make_batch(TEST_COUNT, g, "cpu", 32)
    return imgs.to(device) * 2 - 1, labels.to(device)


@torch.no_grad()
def accuracy(model, imgs, labels, device):
    model.eval()
    correct = 0
    for i in range(0, imgs.shape[0], 500):
        with autocast(device):
            logits = model(imgs[i:i + 500])
        correct += (logits.float().argmax(1) == labels[i:i + 500]).sum().item()
    model.train()
    return correct / imgs.shape[0]


def train_batch(n, gen, device, multiscale):
    """Fresh pictures in [-1, 1]. With `multiscale`, half the batches are rendered at 2x or 4x and shrunk
    with bicubic interpolation (no antialiasing), as the engine's preprocessing shrinks larger frames."""
    scale = 1
    if multiscale:
        pick = int(torch.randint(0, 4, (1,), generator=gen, device=device).item())
        scale = (1, 1, 2, 4)[pick]
    imgs, labels = demo_data.make_batch(n, gen, device, 32 * scale)
    if scale > 1:
        imgs = F.interpolate(imgs, size=(32, 32), mode="bicubic", align_corners=False).clamp(0, 1)
        imgs = torch.round(imgs * 255) / 255
    return imgs * 2 - 1, labels


def log(msg):
    print(msg, flush=True)


def record(args, name, **extra):
    r = {"command": "python3 " + " ".join(sys.argv), "model": name, "seed": args.seed,
         "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() and args.device != "cpu" else "cpu",
         "torch": torch.__version__, "dataset": "tools/demo_data.py (fresh pictures every step)",
         "test_set": f"tools/demo_data.py --seed {TEST_SEED} --count {TEST_COUNT} (CPU)"}
    r.update(extra)
    return json.dumps(r, sort_keys=True)


def bf16_state(model):
    return {k: v.detach().to(torch.bfloat16) for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------------------------
# The three models
# ------------------------------------------------------------------------------------------------------
# Sizes: all seven demo files (these three + Monarch/BLAST compressions of the dense DiT and ViT) must stay
# under 25 MB in bf16, and one DiT image (25 DDIM steps with guidance, i.e. 50 forwards of 64 tokens) must
# take seconds on a 2-core CPU with the engine's CPU backend.
VIT = dict(image_size=32, patch=4, width=144, depth=6, heads=3, mlp=576, num_classes=demo_data.NUM_CLASSES)
BLAST_VIT = (3, 32)  # b, r on qkv, fc1, fc2 (about 3.5x fewer parameters in those layers)
DIT = dict(input_size=32, patch=4, hidden=192, depth=6, heads=3, num_classes=demo_data.NUM_CLASSES)


def vit_metadata(model):
    c = model.cfg
    return {"vit.image_size": c["image_size"], "vit.patch_size": c["patch"], "vit.in_chans": 3,
            "vit.width": c["width"], "vit.depth": c["depth"], "vit.heads": c["heads"], "vit.mlp_hidden": c["mlp"],
            "vit.num_classes": c["num_classes"], "vit.norm_eps": "1e-06", "vit.crop_pct": "1",
            "vit.mean": "0.5,0.5,0.5", "vit.std": "0.5,0.5,0.5",
            "class_names": json.dumps(demo_data.CLASS_NAMES)}


def train_vit(args, device, blast, out_name):
    torch.manual_seed(args.seed)
    model = ViT(**VIT, blast=BLAST_VIT if blast else None).to(device)
    tag = "BLAST-trained ViT" if blast else "ViT"
    nparams = sum(p.numel() for p in model.parameters())
    steps = max(1, int(round(args.vit_steps * args.steps_scale)))
    log(f"[{tag}] {nparams / 1e6:.2f} M parameters, {steps} steps of batch {args.vit_batch}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.vit_lr, weight_decay=0.05, betas=(0.9, 0.999))
    sched = Schedule(args.vit_lr, steps, args.minutes_vit, warmup=max(1, min(200, steps // 10)))
    gen = torch.Generator(device=device).manual_seed(args.seed + (2 if blast else 1))
    imgs_test, labels_test = test_set(device)
    step, ema_loss, t0 = 0, None, time.time()
    while not sched.done(step):
        for group in opt.param_groups:
            group["lr"] = sched.lr_at(step)
        x, y = train_batch(args.vit_batch, gen, device, multiscale=True)
        with autocast(device):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step == 1 or step % 25 == 0 or step % args.log_every == 0 or sched.done(step):  # .item() syncs
            v = loss.item()
            ema_loss = v if ema_loss is None else 0.8 * ema_loss + 0.2 * v
        if step % args.log_every == 0:
            log(f"[{tag}] step {step} loss {ema_loss:.4f} lr {sched.lr_at(step):.2e} {time.time() - t0:.0f}s")
    minutes = (time.time() - t0) / 60
    acc = accuracy(model, imgs_test, labels_test, device)
    log(f"[{tag}] done: {step} steps in {minutes:.2f} min, final loss {ema_loss:.4f}, test accuracy {acc:.4f}")
    meta = vit_metadata(model)
    extra = {}
    if blast:
        b, r = BLAST_VIT
        for n in range(VIT["depth"]):
            for layer in ("attn.qkv", "mlp.fc1", "mlp.fc2"):
                name = f"blocks.{n}.{layer}"
                meta.update({f"blr.{name}.method": "blast", f"blr.{name}.b": b, f"blr.{name}.r": r,
                             f"blr.{name}.origin": "trained"})
        extra = {"blast": {"layers": "blocks.*.attn.qkv, blocks.*.mlp.fc1, blocks.*.mlp.fc2", "b": b, "r": r}}
    meta["demo.model"] = "vit-blast-trained" if blast else "vit"
    meta["demo.training"] = record(args, meta["demo.model"], steps=step, batch=args.vit_batch, lr=args.vit_lr,
                                   final_loss=round(ema_loss, 5), minutes=round(minutes, 2), parameters=nparams,
                                   test_accuracy_pytorch=round(acc, 4), augment="render at 1x/2x/4x + bicubic shrink",
                                   **extra)
    path = os.path.join(args.out, out_name)
    save_safetensors(path, bf16_state(model), meta)
    log(f"[{tag}] wrote {path}")
    return model, {"steps": step, "final_loss": ema_loss, "test_accuracy": acc, "minutes": minutes, "file": path}


def train_dit(args, device, judge=None):
    torch.manual_seed(args.seed)
    model = DiT(**DIT).to(device)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    nparams = sum(p.numel() for p in model.parameters())
    steps = max(1, int(round(args.dit_steps * args.steps_scale)))
    log(f"[DiT] {nparams / 1e6:.2f} M parameters, {steps} steps of batch {args.dit_batch}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.dit_lr, weight_decay=0.0, betas=(0.9, 0.99))
    sched = Schedule(args.dit_lr, steps, args.minutes_dit, warmup=max(1, min(500, steps // 10)))
    gen = torch.Generator(device=device).manual_seed(args.seed + 3)
    abar = alphas_cumprod(device)
    step, ema_loss, t0 = 0, None, time.time()
    null = demo_data.NUM_CLASSES
    while not sched.done(step):
        for group in opt.param_groups:
            group["lr"] = sched.lr_at(step)
        x0, y = train_batch(args.dit_batch, gen, device, multiscale=False)
        drop = torch.rand(y.shape[0], generator=gen, device=device) < 0.1  # classifier-free guidance
        y = torch.where(drop, torch.full_like(y, null), y)
        t = torch.randint(0, 1000, (x0.shape[0],), generator=gen, device=device)
        eps = torch.randn(x0.shape, generator=gen, device=device)
        a = abar[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        with autocast(device):
            loss = F.mse_loss(model(xt, t, y).float(), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
        if step == 1 or step % 25 == 0 or step % args.log_every == 0 or sched.done(step):  # .item() syncs
            v = loss.item()
            ema_loss = v if ema_loss is None else 0.8 * ema_loss + 0.2 * v
        if step % args.log_every == 0:
            log(f"[DiT] step {step} loss {ema_loss:.4f} lr {sched.lr_at(step):.2e} {time.time() - t0:.0f}s")
    minutes = (time.time() - t0) / 60
    log(f"[DiT] done: {step} steps in {minutes:.2f} min, final loss {ema_loss:.4f}")

    # Samples from the EMA weights (DDIM, guidance) judged by the demo ViT when it was trained in this run.
    g = torch.Generator(device=device).manual_seed(0)
    classes = [k for k in range(demo_data.NUM_CLASSES) for _ in range(args.samples_per_class)]
    xs = ddim_sample(ema, classes, args.sample_steps, args.cfg, g, device)
    fidelity = None
    if judge is not None:
        judge.eval()
        with torch.no_grad(), autocast(device):
            pred = judge(xs.clamp(-1, 1)).float().argmax(1).cpu()
        fidelity = (pred == torch.as_tensor(classes)).float().mean().item()
        log(f"[DiT] {len(classes)} samples ({args.sample_steps} DDIM steps, cfg {args.cfg}): "
            f"the ViT names the requested class for {fidelity:.3f}")
    grid_path = os.path.join(args.out, "dit_samples.png")
    k = args.samples_per_class
    rows = ((xs.clamp(-1, 1) + 1) / 2).cpu().reshape(demo_data.NUM_CLASSES, k, 3, 32, 32)
    canvas = torch.ones(3, demo_data.NUM_CLASSES * 34 - 2, k * 34 - 2)
    for r in range(demo_data.NUM_CLASSES):
        for c in range(k):
            canvas[:, r * 34:r * 34 + 32, c * 34:c * 34 + 32] = rows[r, c]
    demo_data.write_png(grid_path, demo_data.to_uint8_hwc(canvas))

    c = ema.cfg
    meta = {"dit.hidden": c["hidden"], "dit.depth": c["depth"], "dit.heads": c["heads"], "dit.patch": c["patch"],
            "dit.input_size": c["input_size"], "dit.in_channels": c["in_channels"], "dit.mlp_hidden": c["mlp_hidden"],
            "dit.num_classes": c["num_classes"], "dit.learn_sigma": 0,
            "class_names": json.dumps(demo_data.CLASS_NAMES), "demo.model": "dit",
            "demo.pixel_space": "1", "demo.sampler": "ddim", "demo.steps": args.sample_steps, "demo.cfg": args.cfg}
    meta["demo.training"] = record(args, "dit", steps=step, batch=args.dit_batch, lr=args.dit_lr,
                                   final_loss=round(ema_loss, 5), minutes=round(minutes, 2), parameters=nparams,
                                   ema=args.ema, class_dropout=0.1, objective="eps MSE, fixed variance",
                                   schedule="linear betas 1e-4..0.02, 1000 steps",
                                   fidelity_pytorch=None if fidelity is None else round(fidelity, 4), fidelity_samples=len(classes),
                                   fidelity_sampler=f"ddim {args.sample_steps} steps, cfg {args.cfg}")
    path = os.path.join(args.out, "demo_dit.safetensors")
    save_safetensors(path, bf16_state(ema), meta)
    log(f"[DiT] wrote {path} and {grid_path}")
    return {"steps": step, "final_loss": ema_loss, "fidelity": fidelity, "minutes": minutes, "file": path}


def main():
    ap = argparse.ArgumentParser(description="Train and export the demo DiT and ViTs (see the module docstring).")
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--only", default="vit,blast,dit", help="comma list of vit, blast, dit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps-scale", type=float, default=1.0, help="multiply every step count (smoke runs)")
    ap.add_argument("--vit-steps", type=int, default=4000)
    ap.add_argument("--vit-batch", type=int, default=512)
    ap.add_argument("--vit-lr", type=float, default=1e-3)
    ap.add_argument("--minutes-vit", type=float, default=1.25, help="time budget of each ViT")
    ap.add_argument("--dit-steps", type=int, default=8000)
    ap.add_argument("--dit-batch", type=int, default=512)
    ap.add_argument("--dit-lr", type=float, default=6e-4)
    ap.add_argument("--minutes-dit", type=float, default=2.0)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--sample-steps", type=int, default=25, help="DDIM steps of the samples (and the default)")
    ap.add_argument("--cfg", type=float, default=3.0, help="guidance scale of the samples (and the default)")
    ap.add_argument("--samples-per-class", type=int, default=10)
    ap.add_argument("--log-every", type=int, default=500)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if not only or only - {"vit", "blast", "dit"}:
        ap.error("--only takes a comma list of vit, blast, dit")
    os.makedirs(args.out, exist_ok=True)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    log(f"device {device} ({torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'}), torch {torch.__version__}")
    t0 = time.time()
    summary = {"command": "python3 " + " ".join(sys.argv)}
    vit = None
    if "vit" in only:
        vit, summary["vit"] = train_vit(args, device, False, "demo_vit.safetensors")
    if "blast" in only:
        _, summary["vit_blast_trained"] = train_vit(args, device, True, "demo_vit_blast_trained.safetensors")
    if "dit" in only:
        summary["dit"] = train_dit(args, device, judge=vit)
    summary["minutes"] = (time.time() - t0) / 60
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(summary, f, indent=2)
    log(f"all done in {summary['minutes']:.2f} min; summary in {os.path.join(args.out, 'training.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
