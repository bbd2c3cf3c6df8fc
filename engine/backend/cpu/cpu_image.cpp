// CpuOps: image ops — placeholder until this family is implemented.
#include "engine/backend/cpu/cpu_ops.h"

#include "engine/core/error.h"

namespace blr {

void CpuOps::preprocess_image(const Tensor& frame, const PreprocessParams& p, Tensor& dst) {
  throw NotImplementedError("cpu backend: preprocess_image is not implemented yet");
}

void CpuOps::to_rgba8(const Tensor& img, Tensor& rgba) {
  throw NotImplementedError("cpu backend: to_rgba8 is not implemented yet");
}

}  // namespace blr
