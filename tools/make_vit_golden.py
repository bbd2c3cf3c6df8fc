#!/usr/bin/env python3
"""Golden data for the ViT engine tests (tests/models/vit_test.cpp, vit_gpu_test.cpp), made with timm.

Builds a tiny random-init timm VisionTransformer (32x32 images, patch 8, width 64, depth 2, 2 heads,
MLP 256, 10 classes), with every parameter re-drawn at a useful scale (timm's init leaves biases at 0 and
LayerNorms at identity, which would leave their loading untested), and writes to --out
(tests/data/vit_tiny by default):

  vit_tiny.safetensors      the model's state dict under timm's key names, config as "vit.*" metadata
  vit_tiny_blr.safetensors  the same model with four linears stored as BLR factors instead of weights:
                              blocks.0.attn.qkv   monarch b=2 r=16
                              blocks.1.attn.proj  monarch b=4 r=16
                              blocks.1.mlp.fc1    blast   b=2 r=16
                              blocks.0.mlp.fc2    lowrank r=8
  golden.safetensors        input [2,3,32,32] (NCHW, already normalised), logits [2,10] of the dense
                            model, logits_blr [2,10] of the model whose four linears are the dense
                            matrices assembled from those factors (in PyTorch, below), and those
                            assembled matrices as assembled.<layer>.weight; metadata "exact_rules" lists
                            the rules whose projection reproduces an assembled matrix exactly (Monarch,
                            low-rank), so the engine's compress-at-load can be checked too.

Factor layouts are those of engine/backend/ops.h:
  monarch  R [b, r, i/b], L [b, o/b, r]:  W[k-block, j-block] = L_k[:, j*r/b:(j+1)*r/b] @ R_j[k*r/b:(k+1)*r/b, :]
  blast    U [b, o/b, r], S [b, b, r], V [b, r, i/b]:  W[k-block, j-block] = U_k @ diag(S[k, j]) @ V_j
  lowrank  A [r, i], B [o, r]:  W = B @ A
Logits are computed on the CPU in fp32. Run on the GPU machine (timm is there):
  python3 tools/make_vit_golden.py
"""
import argparse
import json
import struct
import sys
from pathlib import Path

try:
    import torch
except ImportError:  # pragma: no cover
    sys.exit("make_vit_golden.py needs PyTorch (and timm): run it on the GPU machine")
try:
    from timm.models.vision_transformer import VisionTransformer
except ImportError:
    sys.exit("make_vit_golden.py needs timm, which is not installed here: run it on the GPU machine "
             "(python3 tools/make_vit_golden.py), then commit tests/data/vit_tiny/")

CONFIG = dict(img_size=32, patch_size=8, in_chans=3, num_classes=10, embed_dim=64, depth=2, num_heads=2,
              mlp_ratio=4.0)
BLR_LAYERS = {
    "blocks.0.attn.qkv": ("monarch", 2, 16),
    "blocks.1.attn.proj": ("monarch", 4, 16),
    "blocks.1.mlp.fc1": ("blast", 2, 16),
    "blocks.0.mlp.fc2": ("lowrank", 1, 8),
}


def write_safetensors(path, tensors, metadata):
    """safetensors writer: the package when present, else the (simple) format by hand."""
    tensors = {k: v.detach().to(torch.float32).contiguous().cpu() for k, v in tensors.items()}
    try:
        from safetensors.torch import save_file
        save_file(tensors, str(path), metadata=metadata)
        return
    except ImportError:
        pass
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def vit_metadata():
    c = CONFIG
    return {
        "format": "pt",
        "vit.image_size": str(c["img_size"]), "vit.patch_size": str(c["patch_size"]),
        "vit.in_chans": str(c["in_chans"]), "vit.width": str(c["embed_dim"]), "vit.depth": str(c["depth"]),
        "vit.heads": str(c["num_heads"]), "vit.mlp_hidden": str(int(c["embed_dim"] * c["mlp_ratio"])),
        "vit.num_classes": str(c["num_classes"]), "vit.norm_eps": "1e-06", "vit.crop_pct": "0.9",
        "vit.mean": "0.5,0.5,0.5", "vit.std": "0.5,0.5,0.5",
    }


def randomize(model, gen):
    """Every parameter at a scale that keeps activations O(1) and makes each one matter."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in ("cls_token", "pos_embed"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif p.dim() >= 2:
                fan_in = p[0].numel()
                scale = 2.0 if name.startswith("head") else 1.0
                p.copy_(torch.randn(p.shape, generator=gen) * scale / fan_in ** 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def random_factors(method, b, r, out_f, in_f, gen):
    """Factors whose assembled matrix has entries of std ~ 1/sqrt(in) (like the dense layers)."""
    target = 1.0 / in_f ** 0.5
    if method == "monarch":
        s = (target / (r / b) ** 0.5) ** 0.5
        return {"monarch_R": torch.randn(b, r, in_f // b, generator=gen) * s,
                "monarch_L": torch.randn(b, out_f // b, r, generator=gen) * s}
    if method == "blast":
        s = (target / r ** 0.5) ** 0.5
        return {"blast_U": torch.randn(b, out_f // b, r, generator=gen) * s,
                "blast_S": torch.randn(b, b, r, generator=gen),
                "blast_V": torch.randn(b, r, in_f // b, generator=gen) * s}
    if method == "lowrank":
        s = (target / r ** 0.5) ** 0.5
        return {"lowrank_A": torch.randn(r, in_f, generator=gen) * s,
                "lowrank_B": torch.randn(out_f, r, generator=gen) * s}
    raise ValueError(method)


def assemble(method, b, r, out_f, in_f, f):
    """The dense [out, in] matrix of a factored layer (see the layouts in the docstring)."""
    if method == "lowrank":
        return f["lowrank_B"] @ f["lowrank_A"]
    W = torch.zeros(out_f, in_f, dtype=torch.float64)
    ob, ib = out_f // b, in_f // b
    for k in range(b):
        for j in range(b):
            if method == "monarch":
                q = r // b
                blk = f["monarch_L"][k][:, j * q:(j + 1) * q].double() @ f["monarch_R"][j][k * q:(k + 1) * q, :].double()
            else:
                blk = (f["blast_U"][k].double() * f["blast_S"][k, j].double()) @ f["blast_V"][j].double()
            W[k * ob:(k + 1) * ob, j * ib:(j + 1) * ib] = blk
    return W.float()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests" / "data" / "vit_tiny"))
    ap.add_argument("--seed", type=int, default=20261126)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    model = VisionTransformer(qkv_bias=True, class_token=True, global_pool="token", **CONFIG).eval()
    randomize(model, gen)
    x = torch.randn(2, CONFIG["in_chans"], CONFIG["img_size"], CONFIG["img_size"], generator=gen)
    with torch.no_grad():
        logits = model(x)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    # The BLR twin: the same model with four linears replaced by factored matrices.
    blr_state = dict(state)
    blr_meta = vit_metadata()
    assembled, exact_rules = {}, []
    for layer, (method, b, r) in BLR_LAYERS.items():
        out_f, in_f = state[layer + ".weight"].shape
        f = random_factors(method, b, r, out_f, in_f, gen)
        W = assemble(method, b, r, out_f, in_f, f)
        assembled["assembled." + layer + ".weight"] = W
        del blr_state[layer + ".weight"]
        for key, t in f.items():
            blr_state[layer + "." + key] = t
        blr_meta.update({f"blr.{layer}.method": method, f"blr.{layer}.b": str(b), f"blr.{layer}.r": str(r),
                         f"blr.{layer}.rel_error": "0"})
        spec = f"lowrank:r={r}" if method == "lowrank" else f"{method}:b={b},r={r}"
        if method != "blast":  # projections by truncated SVD reproduce these exactly; BLAST's iterative fit does not
            exact_rules.append(f"{layer}={spec}")
    twin = VisionTransformer(qkv_bias=True, class_token=True, global_pool="token", **CONFIG).eval()
    twin_state = dict(state)
    for layer in BLR_LAYERS:
        twin_state[layer + ".weight"] = assembled["assembled." + layer + ".weight"]
    twin.load_state_dict(twin_state)
    with torch.no_grad():
        logits_blr = twin(x)

    import timm
    golden_meta = {"timm": timm.__version__, "torch": torch.__version__, "seed": str(args.seed),
                   "exact_rules": ";".join(exact_rules)}
    write_safetensors(out / "vit_tiny.safetensors", state, vit_metadata())
    write_safetensors(out / "vit_tiny_blr.safetensors", blr_state, blr_meta)
    write_safetensors(out / "golden.safetensors",
                      {"input": x, "logits": logits, "logits_blr": logits_blr, **assembled}, golden_meta)
    print(f"wrote {out}: logits {logits.shape} (top-1 {logits.argmax(-1).tolist()}), "
          f"logits_blr top-1 {logits_blr.argmax(-1).tolist()}, timm {timm.__version__}, torch {torch.__version__}")
    for p in sorted(out.glob("*.safetensors")):
        print(f"  {p.name}: {p.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
