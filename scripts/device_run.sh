#!/usr/bin/env bash
# What the GPU machine runs in one call (see /work/.library device notes: few, full calls). Stages are
# given as arguments, in order; each writes its log under $OUT and the last lines of every log are
# printed at the end. Example:
#   scripts/device_run.sh build gpu-tests "py:tools/make_vit_golden.py --out $OUT/vit_tiny" bench-layer
# Stages:
#   build            configure + build the `device` preset (sm_90, no UI) with all cores
#   gpu-tests        ctest -L gpu (set GPU_TEST_REGEX to filter)
#   cpu-tests        ctest -L cpu (the CPU suites, as a cross-check on Ubuntu/glibc 2.39)
#   sanitize         the gpu test executables under compute-sanitizer memcheck and racecheck
#   "py:SCRIPT ARGS" run a Python tool with the machine's python3 (PyTorch, timm); write outputs under
#                    $ARTIFACTS so they come back in results.tar.gz
#   "sh:COMMAND"     any shell command (e.g. a benchmark), run from the repository root
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/out}"
# Only a few files may come back from the machine, so logs and artifacts go to a work folder that is
# packed into $OUT/results.tar.gz at the end. Tools write their outputs under $WORK/artifacts.
WORK="${WORK:-/tmp/blr-device}"
rm -rf "$WORK"
mkdir -p "$OUT" "$WORK/logs" "$WORK/artifacts"
export ARTIFACTS="$WORK/artifacts"
BUILD=build/device
BLR="$BUILD/app/cli/blr"
export BUILD BLR
export BLR_GIT_COMMIT="${BLR_GIT_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
export PYTHONUNBUFFERED=1
summary=()
n=0
# The device tool kills a command at its time limit and then nothing comes back: every stage therefore
# runs under what is left of DEVICE_BUDGET_S, and the archive is rewritten after each stage.
budget="${DEVICE_BUDGET_S:-560}"
t0=$(date +%s)
pack() { tar -C "$WORK" -czf "$OUT/results.tar.gz" logs artifacts; }
for stage in "$@"; do
  left=$(( budget - ($(date +%s) - t0) ))
  if (( left < 15 )); then
    summary+=("$(printf '%-48s skipped (time budget spent)' "$(echo "$stage" | cut -c1-40)")")
    continue
  fi
  n=$((n + 1))
  name=$(echo "$stage" | tr -c 'A-Za-z0-9_.-' '_' | cut -c1-40)
  log="$WORK/logs/$(printf '%02d' $n)_$name.log"
  start=$(date +%s)
  case "$stage" in
    build)
      timeout $left bash -c 'cmake -S . -B $BUILD -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
          -DBLR_BUILD_STUDIO=OFF && cmake --build '"$BUILD"' -j $(nproc)' >"$log" 2>&1 ;;
    gpu-tests)
      timeout $left ctest --test-dir $BUILD -L gpu --output-on-failure ${GPU_TEST_REGEX:+-R "$GPU_TEST_REGEX"} \
        --timeout "${GPU_TEST_TIMEOUT:-300}" >"$log" 2>&1 ;;
    cpu-tests)
      timeout $left ctest --test-dir $BUILD -L cpu -j "$(nproc)" --output-on-failure >"$log" 2>&1 ;;
    sanitize)
      timeout $left bash -c 'for exe in $BUILD/tests/blr_*_gpu_tests; do
          for tool in memcheck racecheck; do
            echo "== $tool $exe"
            compute-sanitizer --tool $tool --error-exitcode 3 --print-limit 20 "$exe" \
              ${SANITIZE_FILTER:+--gtest_filter="$SANITIZE_FILTER"} 2>&1 | tail -25
          done
        done' >"$log" 2>&1 ;;
    py:*)
      timeout $left bash -c "python3 ${stage#py:}" >"$log" 2>&1 ;;
    sh:*)
      timeout $left bash -c "${stage#sh:}" >"$log" 2>&1 ;;
    *)
      echo "unknown stage '$stage'" >"$log"; false ;;
  esac
  rc=$?
  summary+=("$(printf '%-48s rc=%-3s %4ss' "$name" "$rc" "$(( $(date +%s) - start ))")")
  pack
done
for f in "$WORK"/logs/*.log; do
  echo "===== $(basename "$f") (last lines)"
  tail -n "${TAIL_LINES:-15}" "$f"
done
echo "===== summary"
printf '%s\n' "${summary[@]}" | tee "$WORK/logs/summary.txt"
pack
