// CpuOps: sampler ops. The per-element update is kern::sampler_update from kernels/sampler.h — the same
// host/device function the CUDA kernel runs, built only from correctly rounded operations — and the noise
// is the same Philox stream, so the CPU reference reproduces the GPU sampler bit for bit given the same
// model output.
#include "engine/backend/cpu/cpu_ops.h"

#include "engine/core/error.h"
#include "engine/diffusion/sampler_args.h"
#include "engine/diffusion/schedule.h"
#include "kernels/sampler.h"

namespace blr {

static_assert(static_cast<int>(kern::kSchedColumns) == kScheduleColumns &&
                  static_cast<int>(kern::kSchedTimestep) == kColTimestep &&
                  static_cast<int>(kern::kSchedSqrtRecipAlphaBar) == kColSqrtRecipAlphaBar &&
                  static_cast<int>(kern::kSchedSqrtRecipm1AlphaBar) == kColSqrtRecipm1AlphaBar &&
                  static_cast<int>(kern::kSchedCoef1) == kColPosteriorCoef1 &&
                  static_cast<int>(kern::kSchedCoef2) == kColPosteriorCoef2 &&
                  static_cast<int>(kern::kSchedLogBeta) == kColLogBeta &&
                  static_cast<int>(kern::kSchedPosteriorLogVar) == kColPosteriorLogVar &&
                  static_cast<int>(kern::kSchedFixedLargeLogVar) == kColFixedLargeLogVar &&
                  static_cast<int>(kern::kSchedAlphaBarPrev) == kColAlphaBarPrev &&
                  static_cast<int>(kern::kSchedNoiseMask) == kColNoiseMask,
              "kernels/sampler.h columns must match engine/diffusion/schedule.h");

static int clamp_step(int32_t s, int64_t steps) {
  return s < 0 ? 0 : (s >= steps ? static_cast<int>(steps - 1) : s);
}

void CpuOps::sampler_timesteps(const Tensor& tables, const Tensor& step, Tensor& t) {
  check_sampler_timesteps_args(tables, step, t, Device::CPU);
  const int s = clamp_step(*step.data_as<int32_t>(), tables.dim(0));
  const float v = tables.data_as<float>()[static_cast<int64_t>(s) * kScheduleColumns + kColTimestep];
  for (int64_t i = 0; i < t.numel(); ++i) t.data_as<float>()[i] = v;
}

void CpuOps::sampler_step(const SamplerStepArgs& a) {
  const SamplerShape sh = check_sampler_args(a, Device::CPU);
  BLR_CHECK(a.model_out->dtype() == DType::F32, "cpu sampler_step: model_out must be f32, got ",
            a.model_out->describe());
  if (a.model_in)
    BLR_CHECK(a.model_in->dtype() == DType::F32, "cpu sampler_step: model_in must be f32");
  const int s = clamp_step(*a.step->data_as<int32_t>(), sh.steps);
  const float* row = a.tables->data_as<float>() + static_cast<int64_t>(s) * kScheduleColumns;
  const kern::SamplerMode mode = a.kind == SamplerKind::DDIM ? kern::SamplerMode::DDIM : kern::SamplerMode::DDPM;
  const int64_t B = sh.batch, P = sh.height * sh.width, C = sh.channels, Cm = sh.out_channels;
  const int64_t per_image = P * C;
  const float* mo = a.model_out->data_as<const float>();
  float* x = a.x->data_as<float>();
  float* in = a.model_in ? a.model_in->data_as<float>() : nullptr;
  const int64_t* seeds = a.seeds->data_as<const int64_t>();
  const bool need_noise = mode == kern::SamplerMode::DDPM;
  for (int64_t b = 0; b < B; ++b) {
    float z[4] = {0, 0, 0, 0};
    for (int64_t e = 0; e < per_image; ++e) {
      if (need_noise && !a.noise && e % 4 == 0)
        philox::normal4(static_cast<uint64_t>(seeds[b]), static_cast<uint32_t>(s), philox::kStreamStepNoise,
                        static_cast<uint32_t>(e / 4), z);
      const int64_t px = e / C, c = e % C;
      const int64_t cond = (b * P + px) * Cm + c;
      float eps = mo[cond];
      if (sh.guided && c < a.guided_channels) eps = kern::guided_eps(eps, mo[((B + b) * P + px) * Cm + c], a.guidance);
      const float v = a.learned_sigma ? mo[cond + C] : 0.0f;
      float noise = z[e % 4];
      if (need_noise && a.noise) noise = a.noise->data_as<const float>()[(s * B + b) * per_image + e];
      const int64_t xi = b * per_image + e;
      const float x0 = kern::predict_x0(row, x[xi], eps);
      if (a.pred_x0) a.pred_x0->data_as<float>()[xi] = x0;
      x[xi] = kern::sampler_update(mode, row, x[xi], x0, a.learned_sigma, v, noise);
      if (in) {
        in[xi] = x[xi];
        if (sh.in_batch == 2 * B) in[xi + B * per_image] = x[xi];
      }
    }
  }
  *a.step->data_as<int32_t>() += 1;
}

}  // namespace blr
