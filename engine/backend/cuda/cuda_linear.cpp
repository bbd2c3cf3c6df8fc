// CudaOps: linear ops — placeholder until this family is implemented.
#include "engine/backend/cuda/cuda_ops.h"

#include "engine/core/error.h"

namespace blr {

void CudaOps::linear(const Tensor& x, const Tensor& w, const Tensor* bias, Act act, Tensor& y) {
  throw NotImplementedError("cuda backend: linear is not implemented yet");
}

void CudaOps::matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_b, float alpha) {
  throw NotImplementedError("cuda backend: matmul is not implemented yet");
}

}  // namespace blr
