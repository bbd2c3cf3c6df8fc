#!/usr/bin/env python3
"""Measures the built-in demo models with OUR engine (the `blr` CLI, CPU backend) and publishes the numbers.

Run by tools/make_demo_assets.sh after the compressions; it can also run alone:

    python3 tools/demo_measure.py --blr build/release/app/cli/blr [--per-class 5] [--test-count 1000]

What it measures (every number comes from `blr classify` / `blr generate` JSON):
  * ViT top-1 accuracy on the held-out synthetic test set (tools/demo_data.py --seed 1234, made on the CPU so
    it is identical everywhere) for dense, Monarch-compressed, BLAST-compressed and BLAST-trained ViTs, and on
    the C++ renderer's fixed set (`blr demo pictures --count 100 --seed 7`, what tests/demo checks);
  * for the DiT (dense, Monarch, BLAST): images generated for every class (seeds 0..), the fraction the dense
    ViT names as the requested class, and the PSNR of each BLR image against the dense image of the same seed;
  * CPU time of one demo image (25 DDIM steps with guidance, the model's defaults) on this machine;
  * parameters and bytes of every file.
Writes assets/models/demo_measurements.json (read by tests/demo) and rewrites the section of docs/MODELS.md
between the markers <!-- demo-measurements:begin --> and <!-- demo-measurements:end -->.
Needs PyTorch (for the test set) and OpenCV + numpy (PSNR); Debian's /usr/bin/python3 has all three.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "assets", "models")
VIT_FILES = [("dense", "demo_vit.safetensors"), ("monarch (compressed)", "demo_vit_monarch.safetensors"),
             ("blast (compressed)", "demo_vit_blast.safetensors"),
             ("blast (trained)", "demo_vit_blast_trained.safetensors")]
DIT_FILES = [("dense", "demo_dit.safetensors"), ("monarch (compressed)", "demo_dit_monarch.safetensors"),
             ("blast (compressed)", "demo_dit_blast.safetensors")]
CPP_SET = {"count": 100, "seed": 7}  # tests/demo/demo_models_test.cpp renders the same set
BEGIN, END = "<!-- demo-measurements:begin -->", "<!-- demo-measurements:end -->"


def log(msg):
    print(f"[demo_measure] {msg}", flush=True)


def run(cmd):
    log(" ".join(cmd) if len(cmd) < 20 else " ".join(cmd[:12]) + f" ... ({len(cmd)} arguments)")
    t = time.time()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        raise SystemExit(f"command failed with exit code {r.returncode}: {cmd[0]} {cmd[1]}")
    return r, time.time() - t


def header(path):
    """(parameters, tensor bytes, metadata) from a safetensors header."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    meta = h.pop("__metadata__", {}) or {}
    params = sum(math.prod(v["shape"]) for v in h.values())
    nbytes = sum(v["data_offsets"][1] - v["data_offsets"][0] for v in h.values())
    return params, nbytes, meta


def read_index(d):
    out = {}
    with open(os.path.join(d, "index.csv")) as f:
        next(f)
        for line in f:
            name, cls, _ = line.strip().split(",")
            out[name] = int(cls)
    return out


def classify(blr, model, files, tmp, tag):
    """{file basename: predicted class} through `blr classify --cpu --json`."""
    out = os.path.join(tmp, f"classify_{tag}.json")
    run([blr, "classify", "--cpu", "--model", model, "--topk", "1", "--batch", "50", "--json", out, "--image"] + files)
    with open(out) as f:
        frames = json.load(f)["frames"]
    return {os.path.basename(fr["source"]): fr["classes"][0] for fr in frames}


def accuracy(pred, truth):
    return sum(pred[k] == v for k, v in truth.items()) / len(truth)


def psnr(a_path, b_path):
    import cv2
    import numpy as np
    a = cv2.imread(a_path).astype(np.float64)
    b = cv2.imread(b_path).astype(np.float64)
    mse = ((a - b) ** 2).mean()
    return float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def generate(blr, model, classes, seed, out_dir, tag):
    os.makedirs(out_dir, exist_ok=True)
    js = os.path.join(out_dir, f"{tag}.json")
    cmd = [blr, "generate", "--cpu", "--dit", model, "--seed", str(seed), "--layout", "files", "--no-progress",
           "--out", os.path.join(out_dir, f"{tag}.png"), "--json", js]
    for c in classes:
        cmd += ["--class", str(c)]
    _, secs = run(cmd)
    with open(js) as f:
        j = json.load(f)
    return j["outputs"], j, secs


def mib(n):
    return n / (1024 * 1024)


def main():
    ap = argparse.ArgumentParser(description="Measure the demo models with the engine and publish docs/MODELS.md")
    ap.add_argument("--blr", required=True, help="path of the blr executable")
    ap.add_argument("--per-class", type=int, default=5, help="DiT images per class and mode")
    ap.add_argument("--test-count", type=int, default=1000, help="held-out test pictures")
    ap.add_argument("--keep", help="keep the pictures and JSON here instead of a temporary directory")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/MODELS.md")
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import demo_data

    tmp = args.keep or tempfile.mkdtemp(prefix="demo_measure_")
    os.makedirs(tmp, exist_ok=True)
    result = {"date": time.strftime("%Y-%m-%d"), "machine": os.uname().nodename, "cpu_count": os.cpu_count(),
              "backend": "cpu (f32)", "vit": {}, "dit": {}, "files": {}}

    # ---- files ----
    total = 0
    for _, f in VIT_FILES + DIT_FILES:
        p = os.path.join(MODELS, f)
        params, nbytes, meta = header(p)
        total += os.path.getsize(p)
        result["files"][f] = {"parameters": params, "tensor_bytes": nbytes, "file_bytes": os.path.getsize(p)}
    result["total_file_bytes"] = total
    dit_meta = header(os.path.join(MODELS, "demo_dit.safetensors"))[2]
    result["training"] = {f: json.loads(header(os.path.join(MODELS, f))[2].get("demo.training", "{}"))
                          for f in ("demo_dit.safetensors", "demo_vit.safetensors", "demo_vit_blast_trained.safetensors")}

    # ---- ViT accuracy ----
    test_dir = os.path.join(tmp, "test")
    demo_data.write_test_set(test_dir, args.test_count, 1234, 32)
    truth = read_index(test_dir)
    files = [os.path.join(test_dir, k) for k in sorted(truth)]
    cpp_dir = os.path.join(tmp, "cpp_set")
    run([args.blr, "demo", "pictures", "--out", cpp_dir, "--count", str(CPP_SET["count"]), "--seed", str(CPP_SET["seed"])])
    cpp_truth = read_index(cpp_dir)
    cpp_files = [os.path.join(cpp_dir, k) for k in sorted(cpp_truth)]
    for mode, f in VIT_FILES:
        model = os.path.join(MODELS, f)
        tag = f.replace(".safetensors", "")
        acc = accuracy(classify(args.blr, model, files, tmp, tag), truth)
        acc_cpp = accuracy(classify(args.blr, model, cpp_files, tmp, tag + "_cpp"), cpp_truth)
        result["vit"][f] = {"mode": mode, "test_accuracy": acc, "test_count": len(truth),
                            "cpp_set_accuracy": acc_cpp, "cpp_set": CPP_SET}
        log(f"{f}: accuracy {acc:.4f} (held-out), {acc_cpp:.4f} (C++ set)")

    # ---- DiT: class fidelity, PSNR vs dense, CPU time ----
    classes = [k for k in range(demo_data.NUM_CLASSES) for _ in range(args.per_class)]
    outputs = {}
    for mode, f in DIT_FILES:
        tag = f.replace(".safetensors", "")
        paths, j, secs = generate(args.blr, os.path.join(MODELS, f), classes, 0, os.path.join(tmp, tag), tag)
        outputs[f] = paths
        pred = classify(args.blr, os.path.join(MODELS, "demo_vit.safetensors"), paths, tmp, tag + "_judge")
        hits = sum(pred[os.path.basename(p)] == c for p, c in zip(paths, classes))
        result["dit"][f] = {"mode": mode, "fidelity": hits / len(classes), "images": len(classes),
                            "sampler": j["parameters"]["sampler"], "steps": j["parameters"]["steps"],
                            "cfg": j["parameters"]["cfg"], "batch_seconds": secs}
        log(f"{f}: the dense ViT names the requested class for {hits}/{len(classes)}")
    dense = outputs["demo_dit.safetensors"]
    for _, f in DIT_FILES[1:]:
        vals = [psnr(a, b) for a, b in zip(dense, outputs[f])]
        finite = [v for v in vals if math.isfinite(v)]
        result["dit"][f]["psnr_vs_dense_db"] = sum(finite) / len(finite) if finite else float("inf")
        result["dit"][f]["psnr_min_db"] = min(vals)
    # One image, as `blr generate` with no arguments makes it (model defaults), timed by the engine.
    # The CPU is often shared: keep the fastest of three runs, and the fastest step times the steps (what
    # an idle machine would take).
    timing, fastest_step = [], []
    for _ in range(3):
        _, j, secs = generate(args.blr, os.path.join(MODELS, "demo_dit.safetensors"), [3], 0,
                              os.path.join(tmp, "timing"), "one")
        timing.append(j["timings"]["total_ms"] / 1000.0)
        fastest_step.append(min(j["timings"]["step_ms"]) * len(j["timings"]["step_ms"]) / 1000.0)
    result["dit_one_image_cpu_seconds"] = min(timing)
    result["dit_one_image_cpu_seconds_idle_estimate"] = min(fastest_step)
    result["dit_one_image_settings"] = f"{j['parameters']['sampler']} {j['parameters']['steps']} steps, cfg {j['parameters']['cfg']}"

    with open(os.path.join(MODELS, "demo_measurements.json"), "w") as fjs:
        json.dump(result, fjs, indent=2, sort_keys=True)
        fjs.write("\n")
    log(f"wrote {os.path.join(MODELS, 'demo_measurements.json')}")
    if not args.no_docs:
        write_docs(result, dit_meta)
    log(f"pictures and JSON are in {tmp}")
    return 0


def write_docs(r, dit_meta):
    f = r["files"]
    lines = [BEGIN, "",
             f"Measured {r['date']} with the engine's CPU backend (f32) by `tools/make_demo_assets.sh` "
             f"({r['cpu_count']} CPU threads); raw numbers in `assets/models/demo_measurements.json`.", "",
             "| ViT file | layers | parameters | bytes (bf16) | held-out accuracy | C++-set accuracy |",
             "|---|---|---:|---:|---:|---:|"]
    for name, v in r["vit"].items():
        lines.append(f"| `{name}` | {v['mode']} | {f[name]['parameters']:,} | {f[name]['tensor_bytes']:,} | "
                     f"{100 * v['test_accuracy']:.1f} % ({v['test_count']}) | {100 * v['cpp_set_accuracy']:.1f} % "
                     f"({v['cpp_set']['count']}) |")
    lines += ["", "| DiT file | layers | parameters | bytes (bf16) | class fidelity (dense ViT) | PSNR vs dense |",
              "|---|---|---:|---:|---:|---:|"]
    for name, v in r["dit"].items():
        ps = "—" if "psnr_vs_dense_db" not in v else f"{v['psnr_vs_dense_db']:.1f} dB (min {v['psnr_min_db']:.1f})"
        lines.append(f"| `{name}` | {v['mode']} | {f[name]['parameters']:,} | {f[name]['tensor_bytes']:,} | "
                     f"{100 * v['fidelity']:.0f} % of {v['images']} | {ps} |")
    any_dit = next(iter(r["dit"].values()))
    lines += ["",
              f"DiT images: {any_dit['images'] // 10} per class, seeds 0.., {any_dit['sampler']} "
              f"{any_dit['steps']} steps, guidance {any_dit['cfg']}; the same seeds for every file, so the PSNR "
              "compares the same picture made with dense and with compressed layers.",
              f"One demo image on the CPU ({r['dit_one_image_settings']}): **{r['dit_one_image_cpu_seconds']:.1f} s** "
              f"(`blr generate --cpu --class 3`, fastest of three runs, total wall time reported by the engine; "
              f"fastest step × steps: {r['dit_one_image_cpu_seconds_idle_estimate']:.1f} s — the {r['cpu_count']} "
              "cores were shared with other work).",
              f"All demo files together: {mib(r['total_file_bytes']):.1f} MiB.", ""]
    if any(t.get("steps", 0) < 1000 for t in r["training"].values()):
        lines += ["**These files are placeholders from a smoke run of tools/train_demo.py (a few CPU steps, to "
                  "exercise the pipeline): they load and run, but draw and classify no better than chance. Replace "
                  "them with the GPU-trained files (\"How they were made\" above).**", ""]
    for name, t in r["training"].items():
        if t:
            keys = ("steps", "batch", "final_loss", "minutes", "device", "test_accuracy_pytorch", "fidelity_pytorch")
            lines.append(f"- `{name}` training: " + ", ".join(f"{k} {t[k]}" for k in keys if t.get(k) is not None) +
                         f"; command `{t.get('command', '?')}`")
    lines += ["", END]
    doc = os.path.join(ROOT, "docs", "MODELS.md")
    text = open(doc).read() if os.path.exists(doc) else ""
    block = "\n".join(lines)
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text += "\n" + block + "\n"
    with open(doc, "w") as fd:
        fd.write(text)
    log(f"updated {doc}")


if __name__ == "__main__":
    sys.exit(main())
