#!/usr/bin/env bash
# Nsight Compute on the BLR tensor-core kernels, for the device run: where do the stage-1 kernels stall?
# One profiled launch per kernel (the third matching launch, after the benchmark's eager calls, so code and
# plans are warm but data comes from HBM), with the sections that answer "memory- or latency-bound, and on
# what": SpeedOfLight, MemoryWorkloadAnalysis, WarpStateStats (stall reasons), Occupancy, LaunchStats,
# SchedulerStats, InstructionStats and SourceCounters (the hottest source lines: build with -lineinfo). Clocks are left as they are (--clock-control none), as in the benchmark.
#   scripts/blr_ncu.sh            BLAST stage 1 at 512 and 16384 tokens (DiT fc1), our GEMM tile at 512
# BLR: the blr binary (default build/device/app/cli/blr); NCU: the ncu binary (default: ncu on PATH, else
# /usr/local/cuda/bin/ncu). Each profile runs under a 60 s limit and prints the last 150 lines of ncu's report;
# the benchmark's own "S| " digest lines are dropped (timings under the profiler mean nothing).
set -uo pipefail
cd "$(dirname "$0")/.."
BLR="${BLR:-build/device/app/cli/blr}"
NCU="${NCU:-$(command -v ncu || echo /usr/local/cuda/bin/ncu)}"
SECTIONS=(--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy
          --section LaunchStats --section SchedulerStats --section InstructionStats --section SourceCounters)
DIT_FC1=(--in 1152 --out 4608 --variants blast --b 9 --r 256 --samples 100 --warmup 1 --check-rows 8)

profile() {  # NAME KERNEL_REGEX bench-layer flags...
  local name=$1 regex=$2
  shift 2
  echo "=== ncu $name (kernel regex:$regex)"
  timeout 60 "$NCU" --clock-control none "${SECTIONS[@]}" --kernel-name "regex:$regex" --launch-skip 2 \
    --launch-count 1 "$BLR" bench-layer "$@" 2>&1 | grep -v -e '^==PROF==' -e '^S| ' |
    tee "${ARTIFACTS:-/tmp}/ncu_$name.txt" | tail -n 150
}

rc=0
profile blast-stage1-dit-fc1-512 blast_stage1_tc "${DIT_FC1[@]}" --tokens 512 || rc=1
profile blast-stage1-dit-fc1-16384 blast_stage1_tc "${DIT_FC1[@]}" --tokens 16384 || rc=1
profile gemm-tc-stage2-dit-fc1-512 block_gemm_tc "${DIT_FC1[@]}" --tokens 512 --stage2 tc || rc=1
exit $rc
