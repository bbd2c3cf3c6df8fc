#!/usr/bin/env bash
# The issue-3 layer benchmarks (REFERENCE.md §2 configurations, bf16, bias on, no activation), one layer per
# call so each gets its own device_run.sh stage and log:
#   scripts/blr_layer_suite.sh NAME [extra bench-layer flags]   NAME: one of the names below, or "all"
#   scripts/blr_layer_suite.sh digest                           the "S| " digest lines of every log so far
# Every run adds --breakdown --sweep (unless BLR_SUITE_FLAGS says otherwise) and writes JSON to
# $ARTIFACTS/NAME.json (./out when ARTIFACTS is unset). BLR: the blr binary (default build/device/app/cli/blr).
# BLR_SUITE_TIMEOUT: seconds per layer (default 60).
set -uo pipefail
cd "$(dirname "$0")/.."
BLR="${BLR:-build/device/app/cli/blr}"
ART="${ARTIFACTS:-out}"
FLAGS="${BLR_SUITE_FLAGS:---breakdown --sweep}"
mkdir -p "$ART"

layer_args() {
  case "$1" in
    dit-fc1-512)   echo "--in 1152 --out 4608 --tokens 512 --variants dense,blast,monarch,lowrank --b 9 --r 256 --probe" ;;
    dit-qkv-512)   echo "--in 1152 --out 3456 --tokens 512 --variants dense,blast --b 9 --r 384" ;;
    vit-fc1-197)   echo "--in 768 --out 3072 --tokens 197 --variants dense,blast,monarch --blast-b 3 --monarch-b 4 --r 128" ;;
    vit-qkv-197)   echo "--in 768 --out 2304 --tokens 197 --variants dense,blast,monarch --blast-b 3 --monarch-b 4 --r 128" ;;
    vit-qkv-6304)  echo "--in 768 --out 2304 --tokens 6304 --variants dense,blast,monarch --blast-b 3 --monarch-b 4 --r 128" ;;
    dit-fc1-16384) echo "--in 1152 --out 4608 --tokens 16384 --variants dense,blast,lowrank --b 9 --r 256" ;;
    dit-qkv-16384) echo "--in 1152 --out 3456 --tokens 16384 --variants dense,blast --b 9 --r 384" ;;
    *) return 1 ;;
  esac
}
ALL="dit-fc1-512 dit-qkv-512 vit-fc1-197 vit-qkv-197 vit-qkv-6304 dit-fc1-16384 dit-qkv-16384"

name="${1:?usage: blr_layer_suite.sh NAME|all|digest [flags]}"
shift
case "$name" in
  digest)
    # The "S| " lines of every benchmark log so far, then the GPU tests' verdict lines (failures, time-outs,
    # the pass count). Logs of device_run.sh live beside $ARTIFACTS; a plain "all" run's in $ART. Digest
    # logs (they start with the marker line below) are left out, so a second digest repeats nothing.
    echo "# blr digest"
    for f in "$ART"/../logs/*.log "$ART"/*.log; do
      [[ -f "$f" ]] || continue
      head -n 1 "$f" | grep -q '^# blr digest' && continue
      grep -h -E '^S\| |tests passed|tests failed|\*\*\*Failed|\*\*\*Timeout|Exception|Not Run' "$f"
    done
    exit 0 ;;
  all)
    rc=0
    for n in $ALL; do bash "$0" "$n" "$@" | tee "$ART/$n.log" || rc=1; done
    exit $rc ;;
esac
args=$(layer_args "$name") || { echo "unknown layer '$name' (known: $ALL)" >&2; exit 2; }
# Each layer runs under a time limit (default 60 s; a healthy run takes ~5-20 s), so a hang costs one layer,
# not the whole device session.
limit="${BLR_SUITE_TIMEOUT:-60}"
# shellcheck disable=SC2086
timeout "$limit" "$BLR" bench-layer $args $FLAGS --label "$name" --json "$ART/$name.json" "$@"
rc=$?
if (( rc == 124 )); then
  echo "S| $name: TIMED OUT after ${limit}s (lines above are what it measured)"
fi
exit $rc
