#include "tests/ops/gpu_parity_util.h"

#include <cmath>
#include <sstream>

#include "engine/core/device.h"

namespace blr::test {

void GpuParity::SetUp() {
  BLR_REQUIRE_CUDA();
  arena_ = std::make_unique<Arena>(Device::CUDA, "parity test");
  gpu_ = std::make_unique<CudaOps>(*arena_);
}

void GpuParity::TearDown() {
  if (gpu_) gpu_->synchronize();
  gpu_.reset();
  arena_.reset();
}

Tensor GpuParity::up(const Tensor& host_f32, DType dt) { return upload(host_f32, dt, *arena_); }

Tensor GpuParity::dev(const Shape& shape, DType dt) {
  return Tensor::empty(shape, dt, *arena_, MemCategory::Other, "parity test output");
}

Tensor GpuParity::up_raw(const Tensor& host) { return host.to_device(*arena_, MemCategory::Other, "parity test input"); }

Tensor rounded(const Tensor& host_f32, DType dt) {
  if (dt == DType::F32) return host_f32.to_host();
  return host_f32.to_dtype(dt).to_dtype(DType::F32);
}

std::vector<DType> float_dtypes() { return {DType::F32, DType::F16, DType::BF16}; }

Tolerance default_tolerance(DType dt) {
  switch (dt) {
    case DType::F16: return {4e-3, 0.99999};
    case DType::BF16: return {1.6e-2, 0.9999};
    default: return {1e-5, 0.999999};
  }
}

std::string index_str(const Shape& shape, int64_t i) {
  std::vector<int64_t> idx(shape.size());
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = shape[d] ? i % shape[d] : 0;
    i = shape[d] ? i / shape[d] : 0;
  }
  return shape_str(idx);
}

void expect_close(const Tensor& gpu, const Tensor& ref, const Tolerance& tol, const std::string& what) {
  ASSERT_EQ(shape_str(gpu.shape()), shape_str(ref.shape())) << what << ": shapes differ";
  if (gpu.on_cuda()) wait_for_device();  // the op ran on CudaOps' own stream
  const std::vector<float> a = gpu.to_vector(), b = ref.to_vector();
  const Closeness c = compare(gpu, ref);
  int64_t worst = -1;
  double worst_err = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::isfinite(a[i]) ? std::fabs(double(a[i]) - double(b[i])) : INFINITY;
    if (e > worst_err) {
      worst_err = e;
      worst = static_cast<int64_t>(i);
    }
  }
  const double scale = c.max_ref > 0 ? c.max_ref : 1.0;
  std::ostringstream msg;
  msg << what << " (" << dtype_name(gpu.dtype()) << shape_str(gpu.shape()) << "): " << c.str();
  if (worst >= 0)
    msg << "; worst at " << index_str(gpu.shape(), worst) << ": gpu " << a[worst] << " vs cpu " << b[worst];
  msg << "; allowed max_abs " << tol.max_abs_rel * scale << ", cosine >= " << tol.min_cosine;
  EXPECT_EQ(c.nonfinite, 0) << msg.str();
  EXPECT_LE(c.max_abs, tol.max_abs_rel * scale) << msg.str();
  EXPECT_GE(c.cosine, tol.min_cosine) << msg.str();
}

void expect_equal(const Tensor& gpu, const Tensor& ref, const std::string& what) {
  ASSERT_EQ(shape_str(gpu.shape()), shape_str(ref.shape())) << what << ": shapes differ";
  if (gpu.on_cuda()) wait_for_device();  // the op ran on CudaOps' own stream
  const Tensor g = gpu.on_cuda() ? gpu.to_host() : gpu;
  int64_t mismatches = 0, first = -1;
  for (int64_t i = 0; i < g.numel(); ++i) {
    const double x = g.flat(i), y = ref.flat(i);
    const bool same = x == y || (std::isnan(x) && std::isnan(y));
    if (!same) {
      if (first < 0) first = i;
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0) << what << " (" << dtype_name(gpu.dtype()) << shape_str(gpu.shape()) << "): "
                           << mismatches << " elements differ; first at "
                           << (first >= 0 ? index_str(gpu.shape(), first) : "-") << ": gpu "
                           << (first >= 0 ? g.flat(first) : 0) << " vs expected " << (first >= 0 ? ref.flat(first) : 0);
}

}  // namespace blr::test
