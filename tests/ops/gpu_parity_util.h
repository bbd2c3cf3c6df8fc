// Shared pieces of the CUDA-vs-CPU parity tests (after llama.cpp's test-backend-ops): a fixture holding a
// CUDA arena, a CudaOps and a CpuOps; inputs rounded to the storage dtype so both backends see the same
// values; and closeness checks whose failure messages name the case, the worst element and the measures.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/arena.h"
#include "engine/core/error.h"
#include "engine/core/tensor.h"
#include "tests/common/test_util.h"

namespace blr::test {

class GpuParity : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Host f32 -> device tensor of `dt` (contiguous).
  Tensor up(const Tensor& host_f32, DType dt);
  // Uninitialised device tensor.
  Tensor dev(const Shape& shape, DType dt);
  // Any host tensor (any dtype) -> device, same dtype.
  Tensor up_raw(const Tensor& host);

  std::unique_ptr<Arena> arena_;
  std::unique_ptr<CudaOps> gpu_;
  CpuOps cpu_;
};

// The f32 values a tensor holds after a round trip through `dt` (what the GPU computes on).
Tensor rounded(const Tensor& host_f32, DType dt);

// The float storage types of the CUDA backend.
std::vector<DType> float_dtypes();

// Tolerance of a GPU result against the fp32 CPU reference for results stored in `dt`.
struct Tolerance {
  double max_abs_rel = 0;  // max |gpu − cpu| / max |cpu|
  double min_cosine = 1;
};
// f32: 1e-5 of the output's scale — both sides compute in fp32 and differ only in summation order and a
// few ulps of rsqrt/exp. f16/bf16: the result is rounded to 11/8 significant bits on the GPU (relative
// 2^-11 / 2^-9 per value, a little more where an intermediate such as the residual is stored too), so
// 4e-3 / 1.6e-2 of the scale and cosine ≥ 0.99999 / 0.9999.
Tolerance default_tolerance(DType dt);

// EXPECTs that `gpu` (device or host, any float dtype) matches `ref` (host f32) within `tol`; the message
// names `what`, the dtype and shape, the largest error with its index, and all closeness measures.
void expect_close(const Tensor& gpu, const Tensor& ref, const Tolerance& tol, const std::string& what);
// EXPECTs bitwise-equal values (data movement ops).
void expect_equal(const Tensor& gpu, const Tensor& ref, const std::string& what);

// "[2,3]" style multi-index of flat index i in `shape`.
std::string index_str(const Shape& shape, int64_t i);

}  // namespace blr::test
