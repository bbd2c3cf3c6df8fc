#!/usr/bin/env bash
# Makes every derived demo asset from the three trained demo models, then measures them all with the
# engine and publishes the numbers (docs/MODELS.md, assets/models/demo_measurements.json).
#
#   tools/make_demo_assets.sh [--from DIR] [--per-class N] [--test-count N] [--skip-measure]
#
#   --from DIR   first copy the trained files from DIR (the --out of tools/train_demo.py):
#                demo_dit.safetensors, demo_vit.safetensors, demo_vit_blast_trained.safetensors, and
#                dit_samples.png (PyTorch samples, to docs/images/demo_dit_samples_pytorch.png)
#
# Steps: (1) compress the dense DiT and ViT with `blr compress`, data-free, into Monarch and BLAST twins;
# (2) draw the demo video with the C++ renderer (`blr demo video`); (3) tools/demo_measure.py: ViT accuracy
# on the held-out set, DiT class fidelity and PSNR vs dense, CPU time of one image, parameter bytes.
# Uses build/release/app/cli/blr (or $BLR; builds it with scripts/build.sh release when missing) and a
# Python with PyTorch and OpenCV ($PYTHON, else /usr/bin/python3, else python3). Takes about 10-20 minutes
# on a 2-core CPU, most of it generating the 150 DiT images of the measurement.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
M="$ROOT/assets/models"
FROM="" PER_CLASS=5 TEST_COUNT=1000 MEASURE=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --from) FROM="$2"; shift 2 ;;
    --per-class) PER_CLASS="$2"; shift 2 ;;
    --test-count) TEST_COUNT="$2"; shift 2 ;;
    --skip-measure) MEASURE=0; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "make_demo_assets.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

BLR="${BLR:-}"
if [[ -z "$BLR" ]]; then
  for b in "$ROOT/build/release/app/cli/blr" "$ROOT/build/dev/app/cli/blr"; do
    [[ -x "$b" ]] && { BLR="$b"; break; }
  done
fi
if [[ -z "$BLR" ]]; then
  "$ROOT/scripts/build.sh" release
  BLR="$ROOT/build/release/app/cli/blr"
fi
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  for p in /usr/bin/python3 python3; do
    if "$p" -c "import torch, cv2, numpy" 2>/dev/null; then PY="$p"; break; fi
  done
fi
[[ -n "$PY" ]] || { echo "make_demo_assets.sh: need a Python with torch, cv2 and numpy (set PYTHON=...)" >&2; exit 2; }

mkdir -p "$M"
if [[ -n "$FROM" ]]; then
  for f in demo_dit.safetensors demo_vit.safetensors demo_vit_blast_trained.safetensors; do
    cp -v "$FROM/$f" "$M/$f"
  done
  if [[ -f "$FROM/dit_samples.png" ]]; then
    mkdir -p "$ROOT/docs/images" && cp -v "$FROM/dit_samples.png" "$ROOT/docs/images/demo_dit_samples_pytorch.png"
  fi
fi
for f in demo_dit.safetensors demo_vit.safetensors demo_vit_blast_trained.safetensors; do
  [[ -f "$M/$f" ]] || { echo "make_demo_assets.sh: $M/$f is missing (train with tools/train_demo.py, then --from DIR)" >&2; exit 2; }
done

# (1) Data-free compression. ViT (width 144): the papers' layers qkv, fc1, fc2 — Monarch b=4 and BLAST b=3
# (as the BLAST paper's ViT-B), rank 32: about 3.5x fewer parameters in those layers. DiT (width 192): the
# BLAST paper's DiT layers qkv, fc1 and adaLN (attn.proj and fc2 stay dense), ranks scaled from DiT-XL/2
# (384, 256, 256 of 1152) to 64, 48, 48: about 0.55x the parameters.
VIT_LAYERS=(blocks.*.attn.qkv blocks.*.mlp.fc1 blocks.*.mlp.fc2)
compress() {  # IN OUT RULE...
  local in="$1" out="$2"; shift 2
  local args=()
  for r in "$@"; do args+=(--rule "$r"); done
  "$BLR" compress "$in" "$out.tmp" "${args[@]}" --dtype bf16
  mv "$out.tmp" "$out"
}
compress "$M/demo_vit.safetensors" "$M/demo_vit_monarch.safetensors" "${VIT_LAYERS[@]/%/=monarch:b=4,r=32}"
compress "$M/demo_vit.safetensors" "$M/demo_vit_blast.safetensors" "${VIT_LAYERS[@]/%/=blast:b=3,r=32}"
for method in monarch blast; do
  b=3; [[ $method == monarch ]] && b=4
  compress "$M/demo_dit.safetensors" "$M/demo_dit_$method.safetensors" \
    "blocks.*.attn.qkv=$method:b=$b,r=64" "blocks.*.mlp.fc1=$method:b=$b,r=48" \
    "blocks.*.adaLN_modulation.1=$method:b=$b,r=48"
done

# (2) The demo video: ten classes, one second each, 128x128 at 12 fps.
"$BLR" demo video --out "$ROOT/assets/demo_video.avi" --size 128 --fps 12 --seconds-per-class 1 --seed 7

total=$(du -cb "$M"/demo_*.safetensors | tail -1 | cut -f1)
echo "demo weights: $total bytes in total (limit 25 MB = 26214400)"
(( total <= 26214400 )) || { echo "make_demo_assets.sh: the demo weights exceed 25 MB" >&2; exit 1; }

# (3) Measurements with the engine; docs/MODELS.md and assets/models/demo_measurements.json.
if (( MEASURE )); then
  "$PY" "$ROOT/tools/demo_measure.py" --blr "$BLR" --per-class "$PER_CLASS" --test-count "$TEST_COUNT"
fi
echo "done: assets/models/, assets/demo_video.avi, docs/MODELS.md"
