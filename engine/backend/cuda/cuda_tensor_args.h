// Argument checks and tensor -> kernel-argument translation shared by the CUDA op files (norm, misc,
// image). Every check throws blr::Error naming the op, the argument and what is wrong with it, e.g.
// "cuda add_layer_norm: delta bf16[2,256,1000] cuda must have x's shape [2,256,1152]".
#pragma once

#include <string>

#include "engine/core/error.h"
#include "engine/core/tensor.h"
#include "kernels/kernel_types.h"
#include "kernels/norm.h"

namespace blr::cuda_args {

inline void require_cuda(const Tensor& t, const char* op, const char* what) {
  BLR_CHECK(t.defined(), "cuda ", op, ": ", what, " is undefined");
  BLR_CHECK(t.on_cuda(), "cuda ", op, ": ", what, " ", t.describe(), " must be on the GPU");
}

inline bool is_kernel_float(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }

// The kernel storage type of a float tensor on the GPU (f32, f16 or bf16).
inline kern::DT kernel_dtype(DType d) {
  switch (d) {
    case DType::F16: return kern::DT::F16;
    case DType::BF16: return kern::DT::BF16;
    default: return kern::DT::F32;
  }
}
inline kern::DT float_tensor(const Tensor& t, const char* op, const char* what) {
  require_cuda(t, op, what);
  BLR_CHECK(is_kernel_float(t.dtype()), "cuda ", op, ": ", what, " ", t.describe(), " must be f32, f16 or bf16");
  return kernel_dtype(t.dtype());
}

inline void require_dtype(const Tensor& t, DType d, const char* op, const char* what) {
  BLR_CHECK(t.dtype() == d, "cuda ", op, ": ", what, " ", t.describe(), " must be ", dtype_name(d));
}

inline void require_same_shape(const Tensor& t, const Tensor& ref, const char* op, const char* what,
                               const char* ref_name) {
  BLR_CHECK(t.shape() == ref.shape(), "cuda ", op, ": ", what, " ", t.describe(), " must have ", ref_name,
            "'s shape ", shape_str(ref.shape()));
}

inline void require_shape(const Tensor& t, const Shape& s, const char* op, const char* what) {
  BLR_CHECK(t.shape() == s, "cuda ", op, ": ", what, " ", t.describe(), " must have shape ", shape_str(s));
}

inline void require_dense_rows(const Tensor& t, const char* op, const char* what) {
  BLR_CHECK(t.ndim() >= 1 && t.rows_are_dense(), "cuda ", op, ": ", what, " ", t.describe(),
            " needs a contiguous last dimension and evenly spaced rows (strides ", shape_str(t.strides()), ")");
}

inline void require_contiguous(const Tensor& t, const char* op, const char* what) {
  BLR_CHECK(t.is_contiguous(), "cuda ", op, ": ", what, " ", t.describe(), " must be contiguous (strides ",
            shape_str(t.strides()), ")");
}

// [B, N, C] addressing of an activation: B = dim 0, N = the product of the middle dims (which must be
// evenly spaced), C = the last dim (stride 1). Rank 2 is [B, C] with N = 1; rank 1 is one row.
struct Tokens {
  int64_t B = 1, N = 1, C = 0;
  kern::TokensRef ref;
};
inline Tokens tokens(const Tensor& t, const char* op, const char* what) {
  BLR_CHECK(t.ndim() >= 1, "cuda ", op, ": ", what, " ", t.describe(), " needs at least one dimension");
  const int r = t.ndim();
  BLR_CHECK(t.dim(-1) <= 1 || t.stride(-1) == 1, "cuda ", op, ": ", what, " ", t.describe(),
            " needs a contiguous last dimension (strides ", shape_str(t.strides()), ")");
  Tokens k;
  k.C = t.dim(-1);
  k.ref.ptr = t.data();
  if (r >= 2) {
    k.B = t.dim(0);
    k.ref.sb = t.stride(0);
  }
  if (r >= 3) {
    for (int i = 1; i + 1 < r - 1; ++i)
      BLR_CHECK(t.dim(i) <= 1 || t.stride(i) == t.stride(i + 1) * t.dim(i + 1), "cuda ", op, ": ", what, " ",
                t.describe(), ": the dimensions between the first and the last must be evenly spaced (strides ",
                shape_str(t.strides()), ")");
    k.N = 1;
    for (int i = 1; i < r - 1; ++i) k.N *= t.dim(i);
    k.ref.sn = t.stride(r - 2);
  }
  return k;
}

// A per-sample [B, C] vector whose rows may be strided (a chunk of one wide adaLN output).
inline kern::SampleRef sample(const Tensor* t, const Tokens& x, DType dtype, const char* op, const char* what) {
  kern::SampleRef s;
  if (!t) return s;
  require_cuda(*t, op, what);
  require_dtype(*t, dtype, op, what);
  BLR_CHECK(t->ndim() == 2 && t->dim(0) == x.B && t->dim(1) == x.C, "cuda ", op, ": ", what, " ", t->describe(),
            " must be a per-sample [", x.B, ", ", x.C, "] vector");
  BLR_CHECK(x.C <= 1 || t->stride(1) == 1, "cuda ", op, ": ", what, " ", t->describe(),
            " needs a contiguous last dimension (strides ", shape_str(t->strides()), ")");
  s.ptr = t->data();
  s.sb = t->stride(0);
  return s;
}

// A [C] parameter vector (LayerNorm/GroupNorm weight or bias).
inline const void* channel_vector(const Tensor* t, int64_t C, DType dtype, const char* op, const char* what) {
  if (!t) return nullptr;
  require_cuda(*t, op, what);
  require_dtype(*t, dtype, op, what);
  BLR_CHECK(t->numel() == C && t->dim(-1) == C && (C <= 1 || t->stride(-1) == 1), "cuda ", op, ": ", what, " ",
            t->describe(), " must be a contiguous [", C, "] vector");
  return t->data();
}

}  // namespace blr::cuda_args
