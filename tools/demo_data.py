#!/usr/bin/env python3
"""Synthetic "demo shapes" dataset: ten visually distinct classes of small RGB pictures.

The built-in demo models (docs/MODELS.md) are trained on these pictures: a pixel-space DiT that draws them
and ViT classifiers that name them. Each picture is one class drawn in a random foreground colour over a
random background (a colour with a soft brightness gradient), with random position, size, rotation, pattern
period and sensor-like noise:

    0 circle   1 square   2 triangle   3 ring   4 cross   5 star            (one shape, anti-aliased)
    6 stripes  7 checkerboard  8 dots  9 target                            (a pattern over the whole picture)

Everything is computed in normalised coordinates (the picture spans [0, 1]²), so the same parameters give the
same picture at any resolution; anti-aliasing is one pixel wide. Rendering is vectorised over the batch in
PyTorch, so training scripts generate fresh data on the GPU every step (no dataset on disk). The C++ renderer
(engine/demo/demo_shapes.h) draws the same classes from the same distributions with its own random numbers.

Deterministic by seed: the same seed, count and device type give the same pictures. The held-out test set
is made on the CPU (`--out DIR --seed 1234`), so it is the same on every machine.

    python3 tools/demo_data.py --out /tmp/demo_test --count 1000 --seed 1234   # PNGs + labels.txt + index.csv
    python3 tools/demo_data.py --grid /tmp/demo_grid.png --seed 0               # 10x10 preview, one row per class

Runs on PyTorch 1.13 and 2.x; PNG output uses OpenCV when installed, else a small zlib writer.
"""
import argparse
import math
import os
import struct
import sys
import zlib

import torch

CLASS_NAMES = ["circle", "square", "triangle", "ring", "cross", "star",
               "stripes", "checkerboard", "dots", "target"]
NUM_CLASSES = len(CLASS_NAMES)

# The distributions, in normalised units (the picture is 1 wide). Shared with engine/demo/demo_shapes.cpp:
# change both together.
CENTER_JITTER = 0.16        # shape centre = 0.5 + U(-1, 1) * CENTER_JITTER (each axis)
RADIUS = (0.20, 0.34)       # shape "radius" R ~ U(RADIUS)
PERIOD = (0.17, 0.27)       # pattern period P ~ U(PERIOD)
GRADIENT = 0.30             # background brightness gradient amplitude ~ U(0, GRADIENT)
NOISE = 0.04                # per-pixel Gaussian noise sigma ~ U(0, NOISE)
MIN_CONTRAST = 0.45         # |fg - bg| (RGB, L2) below this: fg := (bg + 0.5) mod 1


def sample_params(n, generator=None, device="cpu", classes=None):
    """Random parameters of n pictures (a dict of tensors on `device`). The random numbers drawn do not
    depend on the classes, so fixing `classes` changes nothing else."""
    def u(*shape):
        return torch.rand(*shape, generator=generator, device=device)
    p = {
        "cls": torch.randint(0, NUM_CLASSES, (n,), generator=generator, device=device),
        "bg": u(n, 3),
        "fg": u(n, 3),
        "center": 0.5 + (u(n, 2) * 2 - 1) * CENTER_JITTER,
        "radius": RADIUS[0] + u(n) * (RADIUS[1] - RADIUS[0]),
        "angle": u(n) * (2 * math.pi),
        "period": PERIOD[0] + u(n) * (PERIOD[1] - PERIOD[0]),
        "grad_angle": u(n) * (2 * math.pi),
        "grad_amp": u(n) * GRADIENT,
        "noise": u(n) * NOISE,
    }
    if classes is not None:
        p["cls"] = torch.as_tensor(classes, device=device).long().expand(n).clone()
    close = (p["fg"] - p["bg"]).norm(dim=1) < MIN_CONTRAST
    p["fg"] = torch.where(close[:, None], torch.remainder(p["bg"] + 0.5, 1.0), p["fg"])
    return p


def _stripe(coord, period):
    """Signed distance (normalised units, negative inside) to bands of half the period: band centres at
    multiples of the period."""
    f = torch.remainder(coord / period, 1.0)
    return ((f - 0.5).abs() - 0.25) * period


def coverage(p, size, generator=None):
    """Foreground coverage alpha [n, size, size] in [0, 1] for each class (anti-aliased over one pixel)."""
    n = p["cls"].shape[0]
    device = p["cls"].device
    xs = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    gy, gx = torch.meshgrid(xs, xs, indexing="ij")  # [S, S]: row (y), column (x)
    dx = gx[None] - p["center"][:, 0, None, None]
    dy = gy[None] - p["center"][:, 1, None, None]
    c = torch.cos(p["angle"])[:, None, None]
    s = torch.sin(p["angle"])[:, None, None]
    a = c * dx + s * dy   # rotated coordinates
    b = -s * dx + c * dy
    R = p["radius"][:, None, None]
    P = p["period"][:, None, None]
    rad = torch.sqrt(a * a + b * b)

    d = torch.zeros(n, size, size, device=device)  # signed distance of each picture's class
    cls = p["cls"][:, None, None]

    def put(k, dist):
        d.copy_(torch.where(cls == k, dist, d))

    put(0, rad - R)                                                   # circle
    put(1, torch.maximum(a.abs(), b.abs()) - 0.8 * R)                 # square (side 1.6 R)
    tri = None
    for k in range(3):                                                # triangle, circumradius R
        phi = math.pi / 2 + 2 * math.pi * k / 3
        e = a * math.cos(phi) + b * math.sin(phi)
        tri = e if tri is None else torch.maximum(tri, e)
    put(2, tri - 0.5 * R)
    put(3, (rad - 0.75 * R).abs() - 0.18 * R)                         # ring
    t = 0.28 * R                                                      # cross (plus sign)
    put(4, torch.minimum(torch.maximum(a.abs() - R, b.abs() - t), torch.maximum(a.abs() - t, b.abs() - R)))
    g = torch.remainder(torch.atan2(b, a) * (5 / (2 * math.pi)), 1.0)  # star, 5 points
    put(5, rad - R * (0.45 + 0.55 * (1 - 2 * (g - 0.5).abs())))
    put(6, _stripe(a, P))                                             # stripes
    put(8, torch.sqrt((torch.remainder(a / (1.25 * P), 1.0) - 0.5) ** 2 +
                      (torch.remainder(b / (1.25 * P), 1.0) - 0.5) ** 2) * (1.25 * P) - 0.3 * P)  # dots
    put(9, _stripe(rad, P))                                           # target (concentric rings)
    alpha = torch.clamp(0.5 - d * size, 0.0, 1.0)
    # checkerboard: XOR of two perpendicular stripe patterns
    Pc = 1.4 * P  # cells of 0.7 P
    sa = torch.clamp(0.5 - _stripe(a, Pc) * size, 0.0, 1.0)
    sb = torch.clamp(0.5 - _stripe(b, Pc) * size, 0.0, 1.0)
    alpha_tex = sa + sb - 2 * sa * sb
    alpha = torch.where(cls == 7, alpha_tex, alpha)
    return alpha


def render(p, size=32, generator=None):
    """Pictures [n, 3, size, size] float in [0, 1], quantised to 8 bits (as saved files would be)."""
    n = p["cls"].shape[0]
    device = p["cls"].device
    alpha = coverage(p, size)[:, None]
    xs = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size - 0.5
    gy, gx = torch.meshgrid(xs, xs, indexing="ij")
    along = torch.cos(p["grad_angle"])[:, None, None] * gx + torch.sin(p["grad_angle"])[:, None, None] * gy
    bg = p["bg"][:, :, None, None] + (p["grad_amp"][:, None, None] * along)[:, None]  # ±amp/2·√2 at corners
    img = bg * (1 - alpha) + p["fg"][:, :, None, None] * alpha
    noise = torch.randn(n, 3, size, size, generator=generator, device=device)
    img = img + noise * p["noise"][:, None, None, None]
    return torch.round(torch.clamp(img, 0.0, 1.0) * 255.0) / 255.0


def make_batch(n, generator=None, device="cpu", size=32, classes=None):
    """(pictures [n, 3, size, size] in [0, 1], labels [n] int64)."""
    p = sample_params(n, generator, device, classes)
    return render(p, size, generator), p["cls"]


# ------------------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------------------
def write_png(path, rgb):
    """rgb: uint8 tensor/array [H, W, 3]."""
    import numpy as np
    arr = np.ascontiguousarray(rgb.cpu().numpy() if torch.is_tensor(rgb) else rgb, dtype=np.uint8)
    try:
        import cv2
        if not cv2.imwrite(str(path), arr[:, :, ::-1]):
            raise OSError(f"{path}: cannot write")
        return
    except ImportError:
        pass
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def to_uint8_hwc(img):
    """[3, H, W] float in [0, 1] -> [H, W, 3] uint8."""
    return (img.permute(1, 2, 0) * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)


def write_test_set(out, count, seed, size):
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    imgs, labels = make_batch(count, g, "cpu", size)
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.write("\n".join(CLASS_NAMES) + "\n")
    with open(os.path.join(out, "index.csv"), "w") as f:
        f.write("file,class,name\n")
        for i in range(count):
            k = int(labels[i])
            name = f"{i:05d}_{CLASS_NAMES[k]}.png"
            write_png(os.path.join(out, name), to_uint8_hwc(imgs[i]))
            f.write(f"{name},{k},{CLASS_NAMES[k]}\n")
    print(f"wrote {count} pictures ({size}x{size}, seed {seed}) to {out}/ with labels.txt and index.csv")


def write_grid(path, seed, size, per_class=10):
    """One row per class, `per_class` samples each, 2-pixel gaps."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for k in range(NUM_CLASSES):
        imgs, _ = make_batch(per_class, g, "cpu", size, classes=k)
        rows.append(imgs)
    gap = 2
    H = NUM_CLASSES * (size + gap) - gap
    W = per_class * (size + gap) - gap
    canvas = torch.ones(3, H, W)
    for k, imgs in enumerate(rows):
        for i in range(per_class):
            y, x = k * (size + gap), i * (size + gap)
            canvas[:, y:y + size, x:x + size] = imgs[i]
    write_png(path, to_uint8_hwc(canvas))
    print(f"wrote {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="directory for a test set: PNG files, labels.txt, index.csv")
    ap.add_argument("--count", type=int, default=1000, help="pictures in the test set")
    ap.add_argument("--seed", type=int, default=1234, help="random seed (the held-out test set uses 1234)")
    ap.add_argument("--size", type=int, default=32, help="picture side in pixels")
    ap.add_argument("--grid", help="write a preview grid PNG (one row per class) to this file")
    args = ap.parse_args(argv)
    if not args.out and not args.grid:
        ap.error("give --out DIR and/or --grid FILE")
    if args.count < 1 or args.size < 8:
        ap.error("--count must be >= 1 and --size >= 8")
    if args.out:
        write_test_set(args.out, args.count, args.seed, args.size)
    if args.grid:
        write_grid(args.grid, args.seed, args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
