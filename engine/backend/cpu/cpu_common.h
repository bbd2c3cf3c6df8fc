// Small helpers shared by the CPU reference ops: argument checks, row views of tensors with dense rows,
// per-sample [B, C] vectors, a walker over arbitrarily strided views, and Eigen views of f32 tensors.
#pragma once

#include <Eigen/Core>

#include <array>
#include <cstdint>
#include <vector>

#include "engine/core/error.h"
#include "engine/core/tensor.h"

// Parallel loops over independent rows/samples; a plain loop where OpenMP is absent.
#if defined(_OPENMP)
#define BLR_OMP_PARALLEL_FOR _Pragma("omp parallel for schedule(static)")
#define BLR_OMP_PARALLEL_FOR_DYNAMIC _Pragma("omp parallel for schedule(dynamic, 1)")
#else
#define BLR_OMP_PARALLEL_FOR
#define BLR_OMP_PARALLEL_FOR_DYNAMIC
#endif

namespace blr::cpu {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;
using ConstMatMap = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;

// The CPU backend computes on host memory with the dtype an op documents; anything else is a caller bug.
inline void require_host(const Tensor& t, DType dtype, const char* op, const char* what) {
  BLR_CHECK(t.defined(), "cpu ", op, ": ", what, " is undefined");
  BLR_CHECK(t.device() == Device::CPU, "cpu ", op, ": ", what, " is on ", device_name(t.device()));
  BLR_CHECK(t.dtype() == dtype, "cpu ", op, ": ", what, " is ", dtype_name(t.dtype()), ", expected ",
            dtype_name(dtype));
}
inline void require_host_f32(const Tensor& t, const char* op, const char* what) {
  BLR_CHECK(t.defined(), "cpu ", op, ": ", what, " is undefined");
  BLR_CHECK(t.device() == Device::CPU, "cpu ", op, ": ", what, " is on ", device_name(t.device()));
  BLR_CHECK(t.dtype() == DType::F32, "cpu ", op, ": ", what, " is ", dtype_name(t.dtype()), ", the CPU backend needs f32");
}
inline void require_contiguous(const Tensor& t, const char* op, const char* what) {
  BLR_CHECK(t.is_contiguous(), "cpu ", op, ": ", what, " ", t.describe(), " must be contiguous");
}
inline void require_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* what_a,
                               const char* what_b) {
  BLR_CHECK(a.shape() == b.shape(), "cpu ", op, ": ", what_b, " ", b.describe(), " does not match ", what_a, " ",
            a.describe());
}

// [rows, cols] view of a tensor whose rows are dense (last dim contiguous, leading dims flattened).
template <typename T>
struct Rows {
  T* data = nullptr;
  int64_t rows = 0, cols = 0, stride = 0;
  T* row(int64_t r) const { return data + r * stride; }
};
template <typename T = float>
Rows<T> rows_of(const Tensor& t, const char* op, const char* what) {
  BLR_CHECK(t.ndim() >= 1 && t.rows_are_dense(), "cpu ", op, ": ", what, " ", t.describe(),
            " needs a contiguous last dimension and evenly spaced rows");
  const Tensor m = t.flatten_rows();
  return Rows<T>{m.data_as<T>(), m.dim(0), m.dim(1), m.stride(0)};
}

// A per-sample vector [B, C] (adaLN shift/scale/gate): rows may be strided (chunks of one wide adaLN
// output), each row contiguous. Empty when `v` is null.
struct PerSample {
  const float* data = nullptr;
  int64_t stride = 0;
  explicit operator bool() const { return data != nullptr; }
  const float* row(int64_t b) const { return data + b * stride; }
};
inline PerSample per_sample(const Tensor* v, int64_t batch, int64_t cols, const char* op, const char* what) {
  if (!v) return {};
  require_host_f32(*v, op, what);
  BLR_CHECK(v->ndim() == 2 && v->dim(0) == batch && v->dim(1) == cols && (v->stride(1) == 1 || cols == 1), "cpu ",
            op, ": ", what, " ", v->describe(), " must be a [", batch, ", ", cols, "] view with contiguous rows");
  return {v->data_as<const float>(), v->stride(0)};
}

// A per-channel vector [C] (norm weight/bias, conv bias); null when `v` is null.
inline const float* channel_vector(const Tensor* v, int64_t cols, const char* op, const char* what) {
  if (!v) return nullptr;
  require_host_f32(*v, op, what);
  BLR_CHECK(v->numel() == cols && v->is_contiguous(), "cpu ", op, ": ", what, " ", v->describe(),
            " must be a contiguous vector of ", cols, " values");
  return v->data_as<const float>();
}

// Walks the index space `shape` in row-major order as runs along the last dimension. For each run it
// calls f(start, len, step): start[k] is the element offset of the run's first element in tensor k,
// step[k] that tensor's stride along the last dimension. strides[k] has one entry per dim of `shape`.
template <size_t K, typename F>
void for_each_run(const Shape& shape, const std::array<const int64_t*, K>& strides, F&& f) {
  const int nd = static_cast<int>(shape.size());
  const int64_t total = shape_numel(shape);
  if (total == 0) return;
  const int64_t len = nd ? shape[nd - 1] : 1;
  std::array<int64_t, K> step{};
  for (size_t k = 0; k < K; ++k) step[k] = nd ? strides[k][nd - 1] : 0;
  std::vector<int64_t> idx(nd > 1 ? nd - 1 : 0, 0);
  for (int64_t run = 0; run < total / len; ++run) {
    std::array<int64_t, K> start{};
    for (int d = 0; d + 1 < nd; ++d)
      for (size_t k = 0; k < K; ++k) start[k] += idx[d] * strides[k][d];
    f(start, len, step);
    for (int d = nd - 2; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

// [rows, cols] Eigen view of a tensor whose rows are dense; leading dims flattened.
inline ConstMatMap as_matrix(const Tensor& t) {
  const Tensor m = t.flatten_rows();
  return ConstMatMap(m.data_as<const float>(), m.dim(0), m.dim(1), Eigen::OuterStride<>(m.stride(0)));
}
inline MatMap as_matrix_mut(Tensor& t) {
  Tensor m = t.flatten_rows();
  return MatMap(m.data_as<float>(), m.dim(0), m.dim(1), Eigen::OuterStride<>(m.stride(0)));
}

}  // namespace blr::cpu
