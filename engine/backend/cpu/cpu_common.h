// Small helpers shared by the CPU reference ops: argument checks and Eigen views of f32 tensors.
#pragma once

#include <Eigen/Core>

#include "engine/core/error.h"
#include "engine/core/tensor.h"

namespace blr::cpu {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;
using ConstMatMap = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;

// The CPU backend computes in f32 on host memory; anything else is a caller bug.
inline void require_host_f32(const Tensor& t, const char* op, const char* what) {
  BLR_CHECK(t.defined(), "cpu ", op, ": ", what, " is undefined");
  BLR_CHECK(t.device() == Device::CPU, "cpu ", op, ": ", what, " is on ", device_name(t.device()));
  BLR_CHECK(t.dtype() == DType::F32, "cpu ", op, ": ", what, " is ", dtype_name(t.dtype()), ", the CPU backend needs f32");
}

// [rows, cols] view of a tensor whose rows are dense (last dim contiguous); leading dims flattened.
inline ConstMatMap as_matrix(const Tensor& t) {
  const Tensor m = t.flatten_rows();
  return ConstMatMap(m.data_as<const float>(), m.dim(0), m.dim(1), Eigen::OuterStride<>(m.stride(0)));
}
inline MatMap as_matrix_mut(Tensor& t) {
  Tensor m = t.flatten_rows();
  return MatMap(m.data_as<float>(), m.dim(0), m.dim(1), Eigen::OuterStride<>(m.stride(0)));
}

}  // namespace blr::cpu
