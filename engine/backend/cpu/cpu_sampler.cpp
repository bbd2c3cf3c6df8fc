// CpuOps: sampler ops — placeholder until this family is implemented.
#include "engine/backend/cpu/cpu_ops.h"

#include "engine/core/error.h"

namespace blr {

void CpuOps::sampler_timesteps(const Tensor& tables, const Tensor& step, Tensor& t) {
  throw NotImplementedError("cpu backend: sampler_timesteps is not implemented yet");
}

void CpuOps::sampler_step(const SamplerStepArgs& args) {
  throw NotImplementedError("cpu backend: sampler_step is not implemented yet");
}

}  // namespace blr
