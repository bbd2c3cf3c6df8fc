// Host-side helpers shared by the BLR launchers: launching with programmatic dependent launch, opting a
// kernel into large dynamic shared memory, occupancy queries, and the small cost model that picks a tile
// per shape (so 197 or 512 tokens still spread over all SMs, while 16384 tokens get big efficient tiles).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "kernels/blr_gemm.h"

namespace blr::kern::launch {

// Launches kernel<<<grid, block, smem, stream>>>(args...), with programmatic stream serialisation when
// `pdl` (the kernel must then call griddepcontrol.wait before touching anything a previous kernel writes).
template <typename... KArgs, typename... Args>
cudaError_t launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, bool pdl,
                   Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = pdl ? attr : nullptr;
  cfg.numAttrs = pdl ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

// Per (kernel, device): raise the dynamic shared memory limit to the device maximum once (a per-launch
// value could later lower it under another launch's feet), and remember the occupancy (resident CTAs per
// SM) at each dynamic smem size used. All host-only calls, legal during stream capture.
struct KernelInfo {
  int occupancy = 0;
  cudaError_t status = cudaSuccess;
};
inline KernelInfo kernel_info(const void* kernel, int threads, int smem) {
  static std::mutex mu;
  struct OptIn {
    cudaError_t status;
    int max_dynamic;
  };
  static std::map<std::pair<const void*, int>, OptIn> opted_in;
  static std::map<std::pair<std::pair<const void*, int>, int>, KernelInfo> cache;
  const DeviceCaps& caps = device_caps();
  std::lock_guard<std::mutex> lock(mu);
  const auto kd = std::make_pair(kernel, caps.device);
  auto key = std::make_pair(kd, smem);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  KernelInfo info;
  auto opt = opted_in.find(kd);
  if (opt == opted_in.end()) {
    // Static and dynamic shared memory together may not exceed the opt-in maximum.
    cudaFuncAttributes fa{};
    cudaError_t e = cudaFuncGetAttributes(&fa, kernel);
    const int max_dynamic = std::max(0, caps.smem_optin - static_cast<int>(fa.sharedSizeBytes));
    if (e == cudaSuccess) e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, max_dynamic);
    if (e != cudaSuccess) cudaGetLastError();
    opt = opted_in.emplace(kd, OptIn{e, max_dynamic}).first;
  }
  info.status = opt->second.status;
  if (info.status == cudaSuccess && smem > opt->second.max_dynamic) info.status = cudaErrorInvalidValue;
  if (info.status == cudaSuccess)
    info.status = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&info.occupancy, kernel, threads, smem);
  if (info.status != cudaSuccess) cudaGetLastError();  // do not leave a sticky-looking error behind
  cache[key] = info;
  return info;
}

// What the cost model needs to know about one tile configuration on one problem.
struct TileCost {
  long long tiles = 0;       // CTAs of the grid
  int bm = 0, bn = 0;        // CTA tile
  long long k_total = 0;     // K elements the CTA multiplies (all segments)
  long long k_serial = 0;    // K elements of the longest warp group's loop (k_total unless groups split it)
  int ring = 1;              // 64-wide k-tiles of copies one warp group keeps in flight (stages − 1)
  int groups = 1;            // warp groups of the CTA, each with its own ring
  double eff = 0.5;          // relative mma throughput of the tile (ldmatrix reuse per warp)
  double extra_cycles = 0;   // per-CTA work after the mainloop that overlaps its own copies (BLAST's S mix)
  bool persistent = false;   // CTAs loop over tiles and fill the next tile's ring during the mix: one
                             // pipeline fill per CTA instead of one per tile
};

// Estimated cycles for a grid of such CTAs on `sms` SMs holding `occ` CTAs each. The device runs showed
// the stages bound by copies in flight, not by the tensor cores (docs/perf-notes/blr-kernels.md §9), so
// the copies are modelled by Little's law: a CTA's K panel arrives in round trips of (bytes in flight)
// each, a round trip costing a loaded latency of ~2000 clk (~1 µs, cold L2/HBM); and an SM streams at
// most ~32 B/clk however deep the rings, so a wave takes at least one latency plus its bytes at that
// rate. The math runs at ~2048 FLOP/clk/SM × eff and overlaps the copies; the mix (BLAST) and ~500 clk
// of epilogue do not. Only relative values matter: the model trades wave quantisation, bytes in flight,
// bytes per SM and tile efficiency.
inline double estimate_cycles(const TileCost& t, int occ, int sms) {
  if (t.tiles <= 0 || occ <= 0) return 1e30;
  constexpr double kLatency = 2000.0, kSmBytesPerClk = 32.0;
  const long long slots = static_cast<long long>(sms) * occ;
  const long long waves = (t.tiles + slots - 1) / slots;
  const double per_sm = static_cast<double>(std::min<long long>(occ, (t.tiles + sms - 1) / sms));
  const double row_bytes = 128.0 * (t.bm + t.bn);                              // one 64-wide k-tile
  const double ktiles = static_cast<double>((t.k_total + 63) / 64);
  const double bytes = row_bytes * ktiles;                                     // one CTA's copies
  const double ring = std::max(1, t.ring), groups = std::max(1, t.groups);
  // Round trips: the CTA's rings together, and the longest group alone through its own ring.
  const double trips = std::max(std::ceil(ktiles / (ring * groups)),
                                std::ceil(static_cast<double>((t.k_serial + 63) / 64) / ring));
  const double load = std::max(kLatency + per_sm * bytes / kSmBytesPerClk, trips * kLatency);
  const double math = kLatency + per_sm * 2.0 * t.bm * t.bn * static_cast<double>(t.k_total) / (2048.0 * t.eff);
  const double wave = std::max(load, math) + per_sm * t.extra_cycles + 500.0;
  if (t.persistent) return kLatency + static_cast<double>(waves) * (wave - kLatency);
  return static_cast<double>(waves) * wave;
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Plan-string suffix for a launch: " pdl" (weights prefetched before the wait), " pdl-first" (waits first).
inline const char* pdl_tag(bool pdl, bool wait_first) { return !pdl ? "" : wait_first ? " pdl-first" : " pdl"; }

}  // namespace blr::kern::launch
