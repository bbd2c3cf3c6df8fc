#!/usr/bin/env bash
# Sets up, builds and runs every test. GPU tests skip themselves ("skipped: no CUDA device") without one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
ctest --preset release -j "${BLR_JOBS:-$(nproc)}" "$@"
