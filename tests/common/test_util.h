// Helpers shared by all test suites: device skipping, random tensors, closeness measures, temp files.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/device.h"
#include "engine/core/tensor.h"

namespace blr::test {

// GPU tests start with this: skips with the message "skipped: no CUDA device" where there is none.
#define BLR_REQUIRE_CUDA()                                               \
  do {                                                                   \
    if (!::blr::cuda_available()) GTEST_SKIP() << "skipped: no CUDA device"; \
  } while (0)

// Deterministic normal(0, stddev) host f32 tensor.
Tensor random_tensor(const Shape& shape, uint64_t seed, float stddev = 1.0f);
// Deterministic uniform [lo, hi) host f32 tensor.
Tensor uniform_tensor(const Shape& shape, uint64_t seed, float lo, float hi);

// Waits for all work queued on the GPU (every stream). Device results must be read after this or after
// the producing Ops' synchronize(): Tensor::to_host copies on the default stream, which does not wait
// for CudaOps' non-blocking stream. No-op without a device.
void wait_for_device();

struct Closeness {
  double max_abs = 0;     // max |a − b|
  double max_ref = 0;     // max |b|
  double rel_fro = 0;     // ‖a − b‖ / ‖b‖
  double cosine = 1;      // a·b / (‖a‖‖b‖)
  int64_t nonfinite = 0;  // NaN/inf count in a
  std::string str() const;
};
// Compares any two same-shaped tensors (host or device, any float dtype) as f32; waits for the device
// first when either is on it.
Closeness compare(const Tensor& a, const Tensor& b);

// A fresh directory under the build tree, removed by the caller's TearDown or left for inspection.
std::string temp_dir(const std::string& name);
std::string data_path(const std::string& file);  // tests/data/<file>
bool file_exists(const std::string& path);
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);

}  // namespace blr::test

namespace blr::test {
// Host f32 tensor -> contiguous tensor of `dtype` on the arena's device (accounted as "other").
Tensor upload(const Tensor& host_f32, DType dtype, Arena& arena);
}  // namespace blr::test
