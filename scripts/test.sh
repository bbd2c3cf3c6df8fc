#!/usr/bin/env bash
# Sets up, builds and runs every test. GPU tests skip themselves ("skipped: no CUDA device") without one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
# The studio's headless tests need an X display: without one, give all of them one private Xvfb.
# -noreset: by default the server resets when its last client leaves, and a studio starting during that
# reset got "Failed to open display" (seen once in CI).
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null; then
  xvfb-run -a -s "-screen 0 1600x1000x24 -nolisten tcp -noreset" ctest --preset release -j "${BLR_JOBS:-$(nproc)}" "$@"
else
  ctest --preset release -j "${BLR_JOBS:-$(nproc)}" "$@"
fi
