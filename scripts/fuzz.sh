#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang++ under AddressSanitizer + UBSan and runs each for
# a bounded time, seeded from the test files: the data.pkl of every PyTorch fixture for fuzz_pickle, every
# .safetensors under tests/data for fuzz_safetensors, the .pt fixtures themselves for fuzz_torch_checkpoint
# (built when libzip is found). Exits non-zero on any crash, leak, timeout or
# out-of-memory; the input that caused it is left in build/fuzz/artifacts/ and its path printed (copy it to
# tests/fuzz/regressions/<target>/ once fixed: those inputs are always part of the seeds).
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 60; or BLR_FUZZ_SECONDS)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-${BLR_FUZZ_SECONDS:-60}}"
build=build/fuzz
export PATH="${CUDA_HOME:-/usr/local/cuda}/bin:$PATH"

clangxx="${BLR_FUZZ_CXX:-clang++}"
command -v "$clangxx" >/dev/null || { echo "fuzz: $clangxx not found (install clang and libclang-rt-dev)" >&2; exit 1; }
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
# A build of its own: only the fuzz targets and the few host sources they use are compiled.
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$clangxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DBLR_BUILD_FUZZERS=ON -DBLR_BUILD_STUDIO=OFF "${launcher[@]}" >/dev/null
targets=(fuzz_pickle fuzz_safetensors)
if grep -q '^build tests/fuzz/fuzz_torch_checkpoint:' "$build/build.ninja"; then targets+=(fuzz_torch_checkpoint); fi
cmake --build "$build" -j "${BLR_JOBS:-$(nproc)}" --target "${targets[@]}"

# Seed corpora (copies: libFuzzer adds the new inputs it finds to the corpus folder).
corpus="$build/corpus"
rm -rf "$corpus" "$build/artifacts"
mkdir -p "$corpus/pickle" "$corpus/safetensors" "$corpus/torch_checkpoint" "$build/artifacts"
if ! command -v python3 >/dev/null; then  # no zip extraction: whole files still make useful seeds
  find tests/data/torch -name '*.pt' -size -64k -exec cp --backup=numbered {} "$corpus/pickle/" \;
else python3 - "$corpus/pickle" tests/data/torch <<'EOF'
import glob, hashlib, os, sys, zipfile
out, root = sys.argv[1], sys.argv[2]
for path in sorted(glob.glob(os.path.join(root, "*", "*.pt"))):
    try:
        with zipfile.ZipFile(path) as z:
            blobs = [z.read(n) for n in z.namelist() if n.endswith("data.pkl")]
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, ValueError):
        blobs = [open(path, "rb").read()]  # legacy and bare pickles, truncated zips: still useful bytes
    for b in blobs:
        with open(os.path.join(out, hashlib.sha1(b).hexdigest()), "wb") as f:
            f.write(b)
EOF
fi
find tests/data -name '*.safetensors' -size -1024k -exec cp {} "$corpus/safetensors/" \;
find tests/data/torch -name '*.pt' -size -64k -exec cp --backup=numbered {} "$corpus/torch_checkpoint/" \;
# Inputs that once crashed a fuzzer stay in the seeds, so a regression fails at once.
for t in pickle safetensors torch_checkpoint; do
  if [ -d "tests/fuzz/regressions/$t" ]; then cp tests/fuzz/regressions/$t/* "$corpus/$t/"; fi
done
echo "fuzz: seeds: $(ls "$corpus/pickle" | wc -l) pickles, $(ls "$corpus/safetensors" | wc -l) safetensors files," \
     "$(ls "$corpus/torch_checkpoint" | wc -l) PyTorch files"

status=0
run() {
  local name=$1
  shift
  local start=$(date +%s)
  echo "fuzz: $name for ${seconds}s"
  if ! "$build/tests/fuzz/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
       -print_final_stats=1 -artifact_prefix="$build/artifacts/$name-" "$@" "$corpus/${name#fuzz_}" \
       >"$build/$name.log" 2>&1; then
    echo "fuzz: $name FAILED after $(( $(date +%s) - start ))s; log $build/$name.log; inputs:" >&2
    ls -l "$build/artifacts" >&2
    tail -n 60 "$build/$name.log" >&2
    status=1
  else
    echo "fuzz: $name clean: $(grep -E 'stat::number_of_executed_units' "$build/$name.log" | awk '{print $2}') runs in $(( $(date +%s) - start ))s"
  fi
}
run fuzz_pickle -dict=tests/fuzz/pickle.dict
run fuzz_safetensors
if [[ " ${targets[*]} " == *" fuzz_torch_checkpoint "* ]]; then run fuzz_torch_checkpoint -dict=tests/fuzz/pickle.dict; fi
exit $status
