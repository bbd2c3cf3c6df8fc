// Host-side helpers shared by the BLR launchers: launching with programmatic dependent launch, opting a
// kernel into large dynamic shared memory, occupancy queries, and the small cost model that picks a tile
// per shape (so 197 or 512 tokens still spread over all SMs, while 16384 tokens get big efficient tiles).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
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

// Estimated cycles for `tiles` CTA tiles of bm×bn×k_total MACs on `sms` SMs holding `occ` CTAs each.
// Throughput term: mma.sync issue rate (~2048 dense FLOP/clk/SM on sm_80/sm_90 class parts) scaled by the
// tile's efficiency (bigger warp tiles reuse each ldmatrix more). Latency term: a lone CTA's K loop is
// bounded by memory latency (~600 clk to L2/HBM) over the copies it keeps in flight (stages - 1 k-tiles),
// plus pipeline fill and epilogue (~1500 clk). Only relative values matter: the model trades wave
// quantisation and latency against tile efficiency.
// k_serial: the longest K loop one warp group of the CTA runs (default k_total).
inline double estimate_cycles(long long tiles, int bm, int bn, long long k_total, int occ, double eff, int sms,
                              int stages, double extra_per_tile = 0, long long k_serial = -1) {
  if (k_serial < 0) k_serial = k_total;
  if (tiles <= 0 || occ <= 0) return 1e30;
  const long long slots = static_cast<long long>(sms) * occ;
  const long long waves = (tiles + slots - 1) / slots;
  const long long per_sm = std::min<long long>(occ, (tiles + sms - 1) / sms);
  const double flops = 2.0 * bm * bn * static_cast<double>(k_total);
  const double busy = per_sm * (flops / (2048.0 * eff) + extra_per_tile);
  const double per_ktile = std::max(40.0, 600.0 / std::max(1, stages - 1));
  const double latency = static_cast<double>((k_serial + 31) / 32) * per_ktile + 1500.0 + extra_per_tile;
  return static_cast<double>(waves) * std::max(busy, latency);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Plan-string suffix for a launch: " pdl" (weights prefetched before the wait), " pdl-first" (waits first).
inline const char* pdl_tag(bool pdl, bool wait_first) { return !pdl ? "" : wait_first ? " pdl-first" : " pdl"; }

}  // namespace blr::kern::launch
