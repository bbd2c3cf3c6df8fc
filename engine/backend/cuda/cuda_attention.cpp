// CudaOps: attention ops — placeholder until this family is implemented.
#include "engine/backend/cuda/cuda_ops.h"

#include "engine/core/error.h"

namespace blr {

void CudaOps::attention(const Tensor& qkv, int heads, float scale, Tensor& out) {
  throw NotImplementedError("cuda backend: attention is not implemented yet");
}

}  // namespace blr
