#!/usr/bin/env bash
# blr-studio on the GPU machine, which has NVIDIA's driver (and its GL libraries) but no display, no X11, no
# GLFW, no Dear ImGui: everything else comes from .studio-debs/ (Debian 12 packages, fetched here by
# scripts/fetch_studio_debs.sh). Run from the repository root; what comes back is under $OUT.
#
#   scripts/device_studio.sh
#
# 1. unpack   the glvnd loaders into / (only when the machine lacks them: the device notes' recipe), every
#             other package into a private prefix ($STUDIO_SROOT, /tmp/sroot); libraries the system lacks
#             are linked into $STUDIO_SROOT/overlay, the only folder added to LD_LIBRARY_PATH, so nothing the
#             system has is ever replaced; .pc files and absolute links are pointed into the prefix; a stub
#             libLLVM for Mesa's DRI driver (scripts/studio_llvm_stub.sh); /usr/bin/xkbcomp, which Xvfb
#             runs by that fixed path, as a wrapper when missing.
# 2. build    only blr-studio (and libblr, kernels) for sm_90 in build/studio-device, against the prefix.
# 3. Xvfb     from the prefix on a free display, GLX through Mesa's DRI driver on softpipe (the server's
#             GLX is only needed so that GLX clients — NVIDIA's too — can create windows and contexts).
# 4. glxinfo  with __GLX_VENDOR_LIBRARY_NAME=nvidia and with Mesa, as diagnostics.
# 5. studio   headless, GL on NVIDIA's driver: tests/app/scripts/device_gpu.txt (demo DiT on the GPU, long
#             generations with the overlay, one image through interop, dense vs BLAST compare). If that
#             run leaves no state file, the same run again with Mesa (softpipe) so something comes back.
# 6. classify tests/app/scripts/device_classify.txt (the demo video; without OpenCV a message is expected).
# 7. summary  $OUT/summary.txt (also printed), $OUT/studio_device.tar.gz (logs, state JSON, screenshots),
#             and $OUT/generate.png, $OUT/compare.png for a quick look.
#
# Every step runs under what is left of DEVICE_BUDGET_S (default 540 s); the archive is rewritten after
# each step. Knobs: STUDIO_STEPS (1000), STUDIO_IMAGES (16), STUDIO_WAIT (seconds per generation, 120),
# STUDIO_JOBS, STUDIO_FORCE_PREFIX_LIBS=1 (use every prefix library even where the system has one: for
# trying the prefix out on a machine that has the packages installed).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT="$PWD"
OUT="${OUT:-$ROOT/out}"
DEBS="${STUDIO_DEBS:-$ROOT/.studio-debs}"
SROOT="${STUDIO_SROOT:-/tmp/sroot}"
WORK="${STUDIO_WORK:-/tmp/blr-studio-device}"
BUILD="${STUDIO_BUILD:-build/studio-device}"
LIBDIR=usr/lib/x86_64-linux-gnu
budget="${DEVICE_BUDGET_S:-540}"
t0=$(date +%s)
rm -rf "$WORK"
mkdir -p "$OUT" "$WORK/logs"
SUMMARY="$WORK/summary.txt"
: >"$SUMMARY"
XVFB_PID=""

say() { echo "$*" | tee -a "$SUMMARY"; }
left() { echo $((budget - ($(date +%s) - t0))); }
# limit WANT: WANT seconds, or what is left of the budget (at least 5)
limit() {
  local l
  l=$(left)
  if ((l >= $1)); then echo "$1"; elif ((l >= 5)); then echo "$l"; else echo 5; fi
}
pack() {
  cp "$SUMMARY" "$OUT/summary.txt" 2>/dev/null
  tar -C "$WORK" -czf "$OUT/studio_device.tar.gz" . 2>/dev/null
}
finish() {
  [[ -n "$XVFB_PID" ]] && kill "$XVFB_PID" 2>/dev/null
  pack
}
trap finish EXIT
# in_system SONAME: the system (ld.so cache or a folder already on LD_LIBRARY_PATH) provides it
in_system() {
  ldconfig -p | grep -q "^[[:space:]]*$1 " && return 0
  local d
  IFS=: read -ra dirs <<<"${LD_LIBRARY_PATH:-}"
  for d in "${dirs[@]}"; do [[ -n "$d" && -e "$d/$1" ]] && return 0; done
  return 1
}
system_path() { ldconfig -p | awk -v n="$1" '$1 == n && /x86-64/ {print $NF; exit}'; }

say "== blr-studio on $(uname -n) at $(date -u +%FT%TZ), commit $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
{
  echo "== uname"; uname -a
  echo "== nvidia-smi"; timeout 20 nvidia-smi 2>&1 | head -20
  echo "== GL / EGL / NVIDIA libraries in the ld.so cache"; ldconfig -p | grep -E "libGL|libEGL|libOpenGL|GLX|nvidia" | head -40
  echo "== GL files of the driver"; find /usr/local/nvidia /usr/share/glvnd /etc/glvnd -iname '*gl*' 2>&1 | head -40
  echo "== tools"; for t in cmake ninja g++ nvcc pkg-config python3 ccache; do printf '%-12s %s\n' "$t" "$(command -v $t || echo MISSING)"; done
} >"$WORK/logs/00_machine.log" 2>&1

# ---------------------------------------------------------------------------------------------- 1. unpack
step_start=$(date +%s)
if ! ls "$DEBS"/*.deb >/dev/null 2>&1; then
  say "ERROR: no .deb files in $DEBS (run scripts/fetch_studio_debs.sh here first; carry .studio-debs)"
  exit 1
fi
mapfile -t root_pkgs < <(sed -e 's/#.*//' scripts/studio_device_packages.txt | awk '$1 == "root" {print $2}')
loaders_missing=0
for so in libGLdispatch.so.0 libGLX.so.0 libOpenGL.so.0 libGL.so.1 libEGL.so.1; do
  in_system "$so" || loaders_missing=1
done
{
  if ((loaders_missing)); then
    echo "glvnd loaders missing: unpacking ${root_pkgs[*]} into /"
    for p in "${root_pkgs[@]}"; do dpkg -x "$(ls "$DEBS/${p}_"*.deb | head -n1)" /; done
    ldconfig
  else
    echo "glvnd loaders present on the system: / left alone"
  fi
  rm -rf "$SROOT" && mkdir -p "$SROOT"
  for deb in "$DEBS"/*.deb; do
    p=$(basename "$deb" | cut -d_ -f1)
    printf '%s\n' "${root_pkgs[@]}" | grep -qx "$p" && continue
    dpkg -x "$deb" "$SROOT" || echo "dpkg -x $deb failed"
  done
  # Absolute links point into the prefix when their target is there.
  while IFS= read -r link; do
    target=$(readlink "$link")
    [[ -e "$SROOT$target" ]] && ln -sfn "$SROOT$target" "$link"
  done < <(find "$SROOT" -type l -lname '/*')
  # Development links whose library was not unpacked here (libOpenGL.so -> libOpenGL.so.0: the loaders
  # live in /) point at the system's copy.
  while IFS= read -r link; do
    target=$(basename "$(readlink "$link")")
    sys=$(system_path "$target")
    [[ -n "$sys" ]] && ln -sfn "$sys" "$link" && echo "relinked $link -> $sys"
  done < <(find "$SROOT" -type l ! -exec test -e {} \; -print)
  for pc in "$SROOT"/$LIBDIR/pkgconfig/*.pc "$SROOT"/usr/share/pkgconfig/*.pc; do
    [[ -f "$pc" ]] && sed -i -e "s#^\([A-Za-z_][A-Za-z0-9_]*=\)/usr#\1$SROOT/usr#" \
                             -e "s#\([[:space:]]-[IL]\)/usr#\1$SROOT/usr#g" "$pc"
  done
  # The overlay: the prefix's shared libraries that the system lacks (all of them when forced).
  mkdir -p "$SROOT/overlay"
  for dir in "$SROOT/$LIBDIR" "$SROOT/lib/x86_64-linux-gnu"; do
    [[ -d "$dir" ]] || continue
    for lib in "$dir"/*.so.*; do
      [[ -e "$lib" ]] || continue
      name=$(basename "$lib")
      if [[ "${STUDIO_FORCE_PREFIX_LIBS:-0}" == 1 ]] || ! in_system "$name"; then ln -sfn "$lib" "$SROOT/overlay/$name"; fi
    done
  done
  dri="$SROOT/$LIBDIR/dri/swrast_dri.so"
  llvm=$(readelf -dW "$dri" 2>/dev/null | sed -n 's/.*Shared library: \[\(libLLVM[^]]*\)\].*/\1/p' | head -n1)
  if [[ -n "$llvm" ]] && { [[ "${STUDIO_FORCE_PREFIX_LIBS:-0}" == 1 ]] || ! in_system "$llvm"; }; then
    scripts/studio_llvm_stub.sh "$dri" "$SROOT/llvm-stub" && ln -sfn "$SROOT/llvm-stub/$llvm" "$SROOT/overlay/$llvm"
  fi
  echo "overlay: $(ls "$SROOT/overlay" | wc -l) libraries: $(ls "$SROOT/overlay" | tr '\n' ' ')"
  mkdir -p "$SROOT/bin"
  if ! command -v pkg-config >/dev/null; then
    printf '#!/bin/sh\nexec "%s/usr/bin/pkgconf" "$@"\n' "$SROOT" >"$SROOT/bin/pkg-config"
    chmod +x "$SROOT/bin/pkg-config"
    echo "pkg-config: the prefix's pkgconf"
  fi
  # Xvfb runs "/usr/bin/xkbcomp" by that fixed path (no option moves it).
  if [[ ! -x /usr/bin/xkbcomp ]]; then
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s/overlay${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s/usr/bin/xkbcomp" "$@"\n' \
      "$SROOT" "$SROOT" >/usr/bin/xkbcomp
    chmod +x /usr/bin/xkbcomp
    echo "wrote /usr/bin/xkbcomp (a wrapper for the prefix's)"
  fi
} >"$WORK/logs/01_unpack.log" 2>&1
export PATH="$PATH:$SROOT/bin:${CUDA_HOME:-/usr/local/cuda}/bin"
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$SROOT/overlay"
export PKG_CONFIG_PATH="$SROOT/$LIBDIR/pkgconfig:$SROOT/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LIBGL_DRIVERS_PATH="$SROOT/$LIBDIR/dri"
export XLOCALEDIR="$SROOT/usr/share/X11/locale"
# NVIDIA's GLX library may live outside the ld.so cache (the driver's own folder).
if ! in_system libGLX_nvidia.so.0; then
  nv=$(find /usr/local/nvidia /usr/lib64 /usr/lib -name 'libGLX_nvidia.so.0' 2>/dev/null | head -n1)
  [[ -n "$nv" ]] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:${nv%/*}"
fi
egl_json=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[[ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" && -f "$egl_json" ]] && export __EGL_VENDOR_LIBRARY_FILENAMES="$egl_json"
say "unpack: $(( $(date +%s) - step_start )) s; glvnd loaders $( ((loaders_missing)) && echo 'unpacked into /' || echo 'already there'); $(grep -c . <(ls "$SROOT/overlay")) prefix libraries in use; libGLX_nvidia: $(in_system libGLX_nvidia.so.0 && echo found || echo NOT FOUND)"
pack

# ----------------------------------------------------------------------------------------------- 2. build
step_start=$(date +%s)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
timeout -k 10 "$(limit 300)" bash -c '
  cmake -S . -B "$0" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DBLR_BUILD_STUDIO=ON \
        -DBLR_BUILD_TESTS=OFF -DCMAKE_PREFIX_PATH="$1/usr" -DBLR_STB_DIR="$1/usr/include/stb" \
        -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$1/overlay" "${@:3}" &&
  cmake --build "$0" -j "$2" --target blr_studio' \
  "$BUILD" "$SROOT" "${STUDIO_JOBS:-$(nproc)}" "${launcher[@]}" >"$WORK/logs/02_build.log" 2>&1
build_rc=$?
STUDIO="$BUILD/app/studio/blr-studio"
grep -E "BLR Studio:|blr-studio is skipped|not found" "$WORK/logs/02_build.log" | head -5 >>"$SUMMARY"
say "build: rc=$build_rc, $(( $(date +%s) - step_start )) s"
cp "$BUILD/compile_commands.json" "$WORK/logs/compile_commands.json" 2>/dev/null
if ((build_rc != 0)) || [[ ! -x "$STUDIO" ]]; then
  say "ERROR: blr-studio was not built; last lines of logs/02_build.log:"
  tail -n 25 "$WORK/logs/02_build.log" | tee -a "$SUMMARY"
  exit 1
fi
ldd "$STUDIO" >"$WORK/logs/02_ldd.log" 2>&1

# ------------------------------------------------------------------------------------------------ 3. Xvfb
display=""
for n in $(seq 90 140); do
  [[ -e /tmp/.X11-unix/X$n || -e /tmp/.X$n-lock ]] && continue
  display=$n
  break
done
GALLIUM_DRIVER=softpipe DRAW_USE_LLVM=0 "$SROOT/usr/bin/Xvfb" ":$display" -nolisten tcp -noreset -fp built-ins \
  -screen 0 1920x1080x24 -xkbdir "$SROOT/usr/share/X11/xkb" +extension GLX >"$WORK/logs/03_xvfb.log" 2>&1 &
XVFB_PID=$!
for _ in $(seq 1 50); do
  [[ -e /tmp/.X11-unix/X$display ]] && break
  kill -0 "$XVFB_PID" 2>/dev/null || break
  sleep 0.2
done
if ! kill -0 "$XVFB_PID" 2>/dev/null || [[ ! -e /tmp/.X11-unix/X$display ]]; then
  say "ERROR: Xvfb did not start on :$display; logs/03_xvfb.log:"
  tail -n 20 "$WORK/logs/03_xvfb.log" | tee -a "$SUMMARY"
  exit 1
fi
export DISPLAY=":$display"
say "Xvfb: running on $DISPLAY (pid $XVFB_PID)"

# --------------------------------------------------------------------------------------------- 4. glxinfo
GLXINFO="$SROOT/usr/bin/glxinfo.x86_64-linux-gnu"
__GLX_VENDOR_LIBRARY_NAME=nvidia timeout -k 10 "$(limit 30)" "$GLXINFO" -B >"$WORK/logs/04_glxinfo_nvidia.log" 2>&1
glx_nvidia_rc=$?
__GLX_VENDOR_LIBRARY_NAME=mesa LIBGL_ALWAYS_SOFTWARE=1 GALLIUM_DRIVER=softpipe DRAW_USE_LLVM=0 \
  timeout -k 10 "$(limit 30)" "$GLXINFO" -B >"$WORK/logs/04_glxinfo_mesa.log" 2>&1
glx_mesa_rc=$?
glx_line() {
  grep -E "OpenGL (vendor|renderer|core profile version) string|Error|error|failed" "$1" | head -4 | sed 's/^/    /'
  [[ "$2" == 134 ]] && echo "    (aborted: glvnd could not load that vendor's libGLX_<vendor>.so.0 — see logs/00_machine.log)"
}
say "glxinfo, NVIDIA's GLX (rc=$glx_nvidia_rc):"; glx_line "$WORK/logs/04_glxinfo_nvidia.log" $glx_nvidia_rc | tee -a "$SUMMARY"
say "glxinfo, Mesa softpipe (rc=$glx_mesa_rc):"; glx_line "$WORK/logs/04_glxinfo_mesa.log" $glx_mesa_rc | tee -a "$SUMMARY"
pack

# ---------------------------------------------------------------------------------------------- 5. studio
export STUDIO_DIT="${STUDIO_DIT:-$ROOT/assets/models/demo_dit.safetensors}" STUDIO_VIT="$ROOT/assets/models/demo_vit.safetensors"
export STUDIO_VIDEO="$ROOT/assets/demo_video.avi"
export STUDIO_STEPS="${STUDIO_STEPS:-1000}" STUDIO_IMAGES="${STUDIO_IMAGES:-16}" STUDIO_WAIT="${STUDIO_WAIT:-120}"
# run_studio NAME SCRIPT SECONDS [ENV=VALUE...]: one headless run into $WORK/NAME
run_studio() {
  local name="$1" script="$2" secs="$3"
  shift 3
  mkdir -p "$WORK/$name"
  local start
  start=$(date +%s)
  env "$@" STUDIO_OUT="$WORK/$name" timeout -k 10 "$(limit "$secs")" "$STUDIO" --headless --script "$script" \
    --screenshot-dir "$WORK/$name" --config-dir "$WORK/$name/config" --size 1600x1000 \
    >"$WORK/logs/05_studio_$name.log" 2>&1
  local rc=$?
  say "studio run '$name': exit $rc after $(( $(date +%s) - start )) s (0 ok; 1 script or window failed; 3 unexpected error message; 124 timed out; 134 aborted)"
  grep -E "blr-studio: |GLFW error" "$WORK/logs/05_studio_$name.log" | grep -v "blr-studio: info:" | head -8 | sed 's/^/    /' | tee -a "$SUMMARY"
  pack
  return $rc
}
NVIDIA_ENV=(__GLX_VENDOR_LIBRARY_NAME=nvidia)
MESA_ENV=(__GLX_VENDOR_LIBRARY_NAME=mesa LIBGL_ALWAYS_SOFTWARE=1 GALLIUM_DRIVER=softpipe DRAW_USE_LLVM=0)
ran=nvidia
run_studio nvidia tests/app/scripts/device_gpu.txt 240 "${NVIDIA_ENV[@]}"
if [[ ! -f "$WORK/nvidia/state_loaded.json" ]]; then
  say "NVIDIA's GLX gave no usable run: the same run with Mesa (softpipe) instead"
  ran=mesa
  run_studio mesa tests/app/scripts/device_gpu.txt 200 "${MESA_ENV[@]}"
fi
GL_ENV=("${NVIDIA_ENV[@]}")
[[ "$ran" == mesa ]] && GL_ENV=("${MESA_ENV[@]}")
run_studio classify tests/app/scripts/device_classify.txt 90 "${GL_ENV[@]}"
# Real-size load (optional): STUDIO_BIG_DIT = a DiT-XL/2-shaped checkpoint, e.g. made on the machine with
# `python3 tools/make_random_dit.py --dtype bf16 --out /tmp/dit_xl2.safetensors`.
if [[ -n "${STUDIO_BIG_DIT:-}" && -f "${STUDIO_BIG_DIT}" ]]; then
  export STUDIO_BIG_DIT
  run_studio big tests/app/scripts/device_gpu_big.txt 200 "${GL_ENV[@]}"
fi

# --------------------------------------------------------------------------------------------- 7. summary
say ""
say "== summary: GL through $([[ "$ran" == nvidia ]] && echo "NVIDIA's driver (__GLX_VENDOR_LIBRARY_NAME=nvidia)" || echo 'Mesa softpipe (FALLBACK: NVIDIA GLX failed)')"
python3 scripts/studio_device_summary.py "$WORK/$ran" "$WORK/classify" 2>&1 | tee -a "$SUMMARY"
if [[ -d "$WORK/big" ]]; then
  say ""
  say "== real-size DiT (STUDIO_BIG_DIT=${STUDIO_BIG_DIT}), same GL"
  python3 scripts/studio_device_summary.py "$WORK/big" 2>&1 | tee -a "$SUMMARY"
fi
for png in generate compare; do cp "$WORK/$ran/$png.png" "$OUT/$png.png" 2>/dev/null; done
say "total $(( $(date +%s) - t0 )) s; everything in studio_device.tar.gz (logs/, $ran/, classify/, big/)"
