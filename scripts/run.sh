#!/usr/bin/env bash
# Sets up, builds and runs BLR Studio with the built-in demo models (assets/models/, docs/MODELS.md).
# With a display ($DISPLAY or $WAYLAND_DISPLAY) it starts the studio app; without one it generates and
# classifies with the demo models on the command line (scripts/demo_headless.sh) and prints where the
# outputs are. Arguments are passed to blr-studio.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
studio=build/release/app/studio/blr-studio
if [[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]]; then
  if [[ -x "$studio" ]]; then
    exec "$studio" "$@"
  fi
  echo "run.sh: a display is available but blr-studio was not built (Dear ImGui/GLFW missing, see scripts/setup.sh);" \
       "running the command-line demo instead" >&2
fi
exec scripts/demo_headless.sh build/release/app/cli/blr demo_output
