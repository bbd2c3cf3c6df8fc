// CudaOps: sampler ops — argument checks here, the update in kernels/sampler.cu.
#include "engine/backend/cuda/cuda_ops.h"

#include "engine/core/cuda_check.h"
#include "engine/core/error.h"
#include "engine/diffusion/sampler_args.h"
#include "engine/diffusion/schedule.h"
#include "kernels/sampler.h"

namespace blr {

static kern::DT kernel_dtype(DType t, const char* what) {
  switch (t) {
    case DType::F32: return kern::DT::F32;
    case DType::F16: return kern::DT::F16;
    case DType::BF16: return kern::DT::BF16;
    default: throw Error(cat("cuda sampler_step: ", what, " has unsupported dtype ", dtype_name(t)));
  }
}

void CudaOps::sampler_timesteps(const Tensor& tables, const Tensor& step, Tensor& t) {
  check_sampler_timesteps_args(tables, step, t, Device::CUDA);
  BLR_CUDA_CHECK(kern::launch_sampler_timesteps(tables.data_as<const float>(), static_cast<int>(tables.dim(0)),
                                                step.data_as<const int32_t>(), t.data_as<float>(),
                                                static_cast<int>(t.numel()), stream_));
}

void CudaOps::sampler_step(const SamplerStepArgs& a) {
  const SamplerShape sh = check_sampler_args(a, Device::CUDA);
  kern::SamplerStepParams p;
  p.mode = a.kind == SamplerKind::DDIM ? kern::SamplerMode::DDIM : kern::SamplerMode::DDPM;
  p.model_out = a.model_out->data();
  p.out_dt = kernel_dtype(a.model_out->dtype(), "model_out");
  p.x = a.x->data_as<float>();
  if (a.model_in) {
    p.model_in = a.model_in->data();
    p.in_dt = kernel_dtype(a.model_in->dtype(), "model_in");
    p.in_batch = static_cast<int>(sh.in_batch);
  }
  p.tables = a.tables->data_as<const float>();
  p.steps = static_cast<int>(sh.steps);
  p.step = a.step->data_as<int32_t>();
  p.seeds = a.seeds->data_as<const int64_t>();
  p.noise = a.noise ? a.noise->data_as<const float>() : nullptr;
  p.pred_x0 = a.pred_x0 ? a.pred_x0->data_as<float>() : nullptr;
  p.batch = static_cast<int>(sh.batch);
  p.pixels = static_cast<int>(sh.height * sh.width);
  p.channels = static_cast<int>(sh.channels);
  p.out_channels = static_cast<int>(sh.out_channels);
  p.guided = sh.guided;
  p.guidance = a.guidance;
  p.guided_channels = a.guided_channels;
  p.learned = a.learned_sigma;
  BLR_CUDA_CHECK(kern::launch_sampler_step(p, stream_));
}

}  // namespace blr
