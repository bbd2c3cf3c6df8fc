#!/usr/bin/env bash
# The demo without a display: generates pictures with the built-in demo DiT (dense and BLAST-compressed) and
# classifies the demo video with the built-in demo ViTs (dense and BLAST-trained), then says where everything
# is. Runs on the GPU when there is one, on the CPU otherwise (blr picks). scripts/run.sh calls this when no
# display is available; tests/app/demo_cli_test.cpp runs it in a reduced form (BLR_DEMO_STEPS, BLR_DEMO_FRAMES).
#
#   scripts/demo_headless.sh [BLR_EXECUTABLE] [OUT_DIR]      (defaults: build/release/app/cli/blr, demo_output)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BLR="${1:-$ROOT/build/release/app/cli/blr}"
OUT="${2:-$ROOT/demo_output}"
[[ -x "$BLR" ]] || { echo "demo_headless.sh: $BLR is not an executable (build first: scripts/build.sh release)" >&2; exit 2; }
mkdir -p "$OUT"
steps=()
[[ -n "${BLR_DEMO_STEPS:-}" ]] && steps=(--steps "$BLR_DEMO_STEPS")
frames=()
[[ -n "${BLR_DEMO_FRAMES:-}" ]] && frames=(--frames "$BLR_DEMO_FRAMES")

echo "== Generating one picture of each demo class (dense DiT) =="
"$BLR" generate "${steps[@]}" --no-progress --out "$OUT/generated_dense.png" --json "$OUT/generate_dense.json"
echo "== The same seeds with the BLAST-compressed DiT =="
"$BLR" generate "${steps[@]}" --no-progress --mode blast --out "$OUT/generated_blast.png" --json "$OUT/generate_blast.json"
echo "== Classifying the demo video (dense ViT) =="
"$BLR" classify "${frames[@]}" --json "$OUT/classify_dense.json" > "$OUT/classify_dense.txt"
tail -n 12 "$OUT/classify_dense.txt"
echo "== Classifying the demo video (ViT with BLAST layers trained from the start) =="
"$BLR" classify "${frames[@]}" --mode blast-trained --json "$OUT/classify_blast_trained.json" > "$OUT/classify_blast_trained.txt"
tail -n 2 "$OUT/classify_blast_trained.txt"
echo
echo "Outputs in $OUT:"
echo "  generated_dense.png, generated_blast.png   one picture per class (row-major grid), dense vs BLAST DiT"
echo "  generate_*.json                            parameters, per-step timings, memory"
echo "  classify_*.txt / classify_*.json           top-5 per video frame, latency, memory"
echo "Real models: docs/MODELS.md. The interactive app: blr-studio (needs a display)."
