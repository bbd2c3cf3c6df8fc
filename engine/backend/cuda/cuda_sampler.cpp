// CudaOps: sampler ops — placeholder until this family is implemented.
#include "engine/backend/cuda/cuda_ops.h"

#include "engine/core/error.h"

namespace blr {

void CudaOps::sampler_timesteps(const Tensor& tables, const Tensor& step, Tensor& t) {
  throw NotImplementedError("cuda backend: sampler_timesteps is not implemented yet");
}

void CudaOps::sampler_step(const SamplerStepArgs& args) {
  throw NotImplementedError("cuda backend: sampler_step is not implemented yet");
}

}  // namespace blr
