// What GPU (if any) we run on. Without a driver (CI, the development machine) cudaGetDeviceCount fails
// with cudaErrorInsufficientDriver and leaves its output unwritten: every query here turns that into
// "no device" plus a reason, and the CPU backend takes over.
#pragma once

#include <cstddef>
#include <string>

namespace blr {

struct DeviceInfo {
  bool available = false;
  std::string reason;  // why not available ("no CUDA driver: ...")
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  size_t total_memory = 0;
  size_t l2_bytes = 0;
  size_t smem_per_block_optin = 0;
  bool integrated = false;  // Jetson: host and device share DRAM
  double memory_bandwidth_gbs = 0;  // theoretical, from bus width and clock
  double bf16_tflops = 0;           // dense bf16 tensor-core peak, a table estimate by architecture
};

int cuda_device_count();     // 0 when there is no usable device or driver
bool cuda_available();
DeviceInfo query_device(int index = 0);
// Free and total device memory in bytes; {0, 0} without a device.
std::pair<size_t, size_t> device_memory_info();

}  // namespace blr
