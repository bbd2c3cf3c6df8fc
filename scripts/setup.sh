#!/usr/bin/env bash
# Installs what BLR Studio needs to build and test, idempotently (Debian 12 / Ubuntu packages).
# The CUDA toolkit (nvcc, cuBLAS, cuDNN 9) is not a Debian package here: we only check for it and say
# clearly what is missing. Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libeigen3-dev nlohmann-json3-dev libgtest-dev libgmock-dev
  libopencv-dev libglfw3-dev libimgui-dev libstb-dev libgl-dev libzip-dev
  xvfb xauth libgl1-mesa-dri mesa-utils fonts-dejavu-core clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The CUDA toolkit: nvcc plus cuBLAS and cuDNN headers/libraries.
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
problems=()
[ -x "$CUDA_HOME/bin/nvcc" ] || command -v nvcc >/dev/null || problems+=("nvcc (CUDA toolkit) not found in $CUDA_HOME/bin or PATH")
ls "$CUDA_HOME"/include/cublasLt.h >/dev/null 2>&1 || problems+=("cuBLASLt header not found in $CUDA_HOME/include")
have_cudnn=0
for h in "$CUDA_HOME"/include/cudnn.h /usr/include/cudnn.h /usr/include/*-linux-gnu/cudnn.h; do
  [ -f "$h" ] && have_cudnn=1
done
if [ "$have_cudnn" = 0 ]; then
  problems+=("cuDNN 9 header cudnn.h not found (install cuDNN next to the toolkit or from NVIDIA's packages)")
fi
if ((${#problems[@]})); then
  echo "setup: the CUDA toolkit is incomplete:" >&2
  for p in "${problems[@]}"; do echo "  - $p" >&2; done
  echo "setup: install CUDA 12.6+ (JetPack 6 on Jetson) with cuBLAS and cuDNN 9, or set CUDA_HOME." >&2
  exit 1
fi
echo "setup: all build dependencies present (CUDA at $CUDA_HOME)"
