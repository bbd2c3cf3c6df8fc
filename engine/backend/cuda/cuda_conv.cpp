// CudaOps: conv ops — placeholder until this family is implemented.
#include "engine/backend/cuda/cuda_ops.h"

#include "engine/core/error.h"

namespace blr {

void CudaOps::conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dParams& p, Tensor& y) {
  throw NotImplementedError("cuda backend: conv2d is not implemented yet");
}

}  // namespace blr
