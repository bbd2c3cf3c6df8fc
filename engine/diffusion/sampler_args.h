// Validation of SamplerStepArgs shared by every backend's sampler_step, so each reports the same clear
// error for a mismatched call and works from the same derived sizes.
#pragma once

#include <cstdint>

#include "engine/backend/ops.h"

namespace blr {

struct SamplerShape {
  int64_t batch = 0;         // B
  int64_t height = 0, width = 0;
  int64_t channels = 0;      // C
  int64_t out_channels = 0;  // Cm
  int64_t steps = 0;         // K
  bool guided = false;       // model_out has 2B rows
  int64_t in_batch = 0;      // rows of model_in (0 when absent)
};

// Throws blr::Error naming the argument and the shapes when the call is inconsistent. `device` is the
// backend's device: every tensor must live there.
SamplerShape check_sampler_args(const SamplerStepArgs& a, Device device);
void check_sampler_timesteps_args(const Tensor& tables, const Tensor& step, const Tensor& t, Device device);

}  // namespace blr
