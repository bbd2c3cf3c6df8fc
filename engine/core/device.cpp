#include "engine/core/device.h"

#include <cuda_runtime_api.h>

#include "engine/core/error.h"

namespace blr {

int cuda_device_count() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

bool cuda_available() {
  static const bool available = cuda_device_count() > 0;
  return available;
}

// Dense bf16 tensor-core peak per SM per clock (FLOP), by architecture; used only to print % of roofline.
static double bf16_flops_per_sm_clock(int major, int minor) {
  if (major == 9) return 4096;                  // Hopper (wgmma); mma.sync reaches about 2/3 of this
  if (major == 8 && minor == 0) return 2048;    // A100
  if (major == 8) return 1024;                  // sm_86/87/89 (GA10x, Orin, Ada)
  if (major >= 10) return 8192;
  return 512;
}

DeviceInfo query_device(int index) {
  DeviceInfo info;
  info.index = index;
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    info.reason = cat("no CUDA device: ", cudaGetErrorString(err));
    return info;
  }
  if (index >= n) {
    info.reason = cat("no CUDA device with index ", index, " (", n, " present)");
    return info;
  }
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, index) != cudaSuccess) {
    cudaGetLastError();
    info.reason = "cudaGetDeviceProperties failed";
    return info;
  }
  info.available = true;
  info.name = p.name;
  info.cc_major = p.major;
  info.cc_minor = p.minor;
  info.sm_count = p.multiProcessorCount;
  info.total_memory = p.totalGlobalMem;
  info.l2_bytes = p.l2CacheSize;
  info.smem_per_block_optin = p.sharedMemPerBlockOptin;
  info.integrated = p.integrated != 0;
  int mem_clock_khz = 0, bus_width = 0, sm_clock_khz = 0;
  cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, index);
  cudaDeviceGetAttribute(&bus_width, cudaDevAttrGlobalMemoryBusWidth, index);
  cudaDeviceGetAttribute(&sm_clock_khz, cudaDevAttrClockRate, index);
  info.memory_bandwidth_gbs = 2.0 * mem_clock_khz * 1e3 * (bus_width / 8.0) / 1e9;
  info.bf16_tflops = bf16_flops_per_sm_clock(p.major, p.minor) * p.multiProcessorCount * sm_clock_khz * 1e3 / 1e12;
  return info;
}

std::pair<size_t, size_t> device_memory_info() {
  if (!cuda_available()) return {0, 0};
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    cudaGetLastError();
    return {0, 0};
  }
  return {free_b, total_b};
}

}  // namespace blr
