// CudaOps: image ops — placeholder until this family is implemented.
#include "engine/backend/cuda/cuda_ops.h"

#include "engine/core/error.h"

namespace blr {

void CudaOps::preprocess_image(const Tensor& frame, const PreprocessParams& p, Tensor& dst) {
  throw NotImplementedError("cuda backend: preprocess_image is not implemented yet");
}

void CudaOps::to_rgba8(const Tensor& img, Tensor& rgba) {
  throw NotImplementedError("cuda backend: to_rgba8 is not implemented yet");
}

}  // namespace blr
