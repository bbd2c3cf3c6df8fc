#!/usr/bin/env bash
# Configures and builds one CMake preset (default: release). Used by run.sh, test.sh and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
shift || true
export PATH="${CUDA_HOME:-/usr/local/cuda}/bin:$PATH"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
cmake --preset "$preset" "${launcher[@]}" "$@" >/dev/null
cmake --build --preset "$preset" -j "${BLR_JOBS:-$(nproc)}"
