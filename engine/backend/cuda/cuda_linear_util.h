// Internal helpers shared by cuda_linear.cpp and cuda_blr.cpp: argument checks that name the op and the
// tensor, dtype/activation mapping to the kernels' enums, [rows, cols] views with their row stride, and the
// cuBLASLt plan cache both files share through CudaOps' family state.
#pragma once

#include <memory>
#include <string>

#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/error.h"
#include "engine/core/tensor.h"
#include "kernels/gemm.h"
#include "kernels/kernel_types.h"

namespace blr::cuda_detail {

inline kern::DT kernel_dtype(DType t) {
  switch (t) {
    case DType::F32: return kern::DT::F32;
    case DType::F16: return kern::DT::F16;
    case DType::BF16: return kern::DT::BF16;
    default: break;
  }
  throw Error(cat("cuda linear ops take f32, f16 or bf16 tensors, got ", dtype_name(t)));
}

inline kern::Act kernel_act(Act a) { return static_cast<kern::Act>(static_cast<int>(a)); }

// `t` is a defined CUDA tensor of `dtype` (the op's one storage dtype).
inline void check_cuda(const Tensor& t, DType dtype, const char* op, const char* what) {
  BLR_CHECK(t.defined(), "cuda ", op, ": ", what, " is undefined");
  BLR_CHECK(t.device() == Device::CUDA, "cuda ", op, ": ", what, " ", t.describe(), " is not on the GPU");
  BLR_CHECK(t.dtype() == dtype, "cuda ", op, ": ", what, " is ", dtype_name(t.dtype()), " but x is ",
            dtype_name(dtype), " (one storage dtype per op)");
  (void)kernel_dtype(dtype);
}

// A factor/weight: CUDA, the op's dtype, contiguous, with the expected number of dims.
inline void check_factor(const Tensor& t, DType dtype, int ndim, const char* op, const char* what) {
  check_cuda(t, dtype, op, what);
  BLR_CHECK(t.ndim() == ndim && t.is_contiguous(), "cuda ", op, ": ", what, " must be a contiguous ", ndim,
            "-d tensor, got ", t.describe());
}

// [rows, cols] view of an activation whose rows may be strided (leading dims flattened).
struct Rows {
  void* data = nullptr;
  int64_t rows = 0, cols = 0, ld = 0;
};
inline Rows as_rows(const Tensor& t, const char* op, const char* what) {
  BLR_CHECK(t.ndim() >= 1 && t.rows_are_dense(), "cuda ", op, ": ", what, " ", t.describe(),
            " needs unit-stride rows with the leading dims contiguous among themselves");
  const Tensor m = t.flatten_rows();
  Rows r;
  r.data = m.data();
  r.rows = m.dim(0);
  r.cols = m.dim(1);
  r.ld = r.rows <= 1 ? r.cols : m.stride(0);  // a single row's stride is arbitrary: normalise it
  BLR_CHECK(r.ld >= r.cols, "cuda ", op, ": ", what, " rows overlap (row stride ", r.ld, " < ", r.cols, " columns)");
  return r;
}

// x [.., in] and y [.., out] with the same row count; bias [out] (contiguous, same dtype) or null.
struct LayerIo {
  Rows x, y;
};
inline LayerIo check_layer_io(const char* op, const Tensor& x, const Tensor& y, const Tensor* bias, int64_t in,
                              int64_t out) {
  check_cuda(x, x.dtype(), op, "x");
  check_cuda(y, x.dtype(), op, "y");
  BLR_CHECK(x.dim(-1) == in, "cuda ", op, ": x ", x.describe(), " has ", x.dim(-1), " features, the layer takes ", in);
  BLR_CHECK(y.dim(-1) == out, "cuda ", op, ": y ", y.describe(), " has ", y.dim(-1), " features, the layer gives ", out);
  LayerIo io{as_rows(x, op, "x"), as_rows(y, op, "y")};
  BLR_CHECK(io.x.rows == io.y.rows, "cuda ", op, ": x ", x.describe(), " and y ", y.describe(), " differ in rows");
  BLR_CHECK(x.data() != y.data() || x.numel() == 0, "cuda ", op, ": y must not alias x");
  if (bias) {
    check_cuda(*bias, x.dtype(), op, "bias");
    BLR_CHECK(bias->numel() == out && bias->is_contiguous(), "cuda ", op, ": bias ", bias->describe(), " for ", out,
              " outputs");
  }
  return io;
}

// The cuBLASLt plan cache of this CudaOps (one per worker thread).
struct LinearFamilyState : CudaOps::FamilyState {
  kern::GemmPlanCache lt;
};
inline kern::GemmPlanCache& lt_cache(CudaOps& ops) {
  auto& slot = ops.family_state("linear");
  if (!slot) slot = std::make_unique<LinearFamilyState>();
  return static_cast<LinearFamilyState&>(*slot).lt;
}

// Enqueues a cuBLASLt GEMM; `algo` (optional) receives which algorithm ran.
inline void run_lt(CudaOps& ops, const kern::GemmArgs& g, const char* op, std::string* algo = nullptr) {
  size_t ws_bytes = 0;
  void* ws = ops.cublaslt_workspace(&ws_bytes);
  const std::string err = lt_cache(ops).run(ops.cublaslt(), g, ws, ws_bytes, ops.stream(), algo);
  if (!err.empty()) throw Error(cat("cuda ", op, ": ", err));
}

void set_last_linear_plan(std::string plan);  // cuda_blr.cpp

}  // namespace blr::cuda_detail
