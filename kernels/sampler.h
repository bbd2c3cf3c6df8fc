// Diffusion sampler kernels: the per-step latent update (classifier-free guidance + DDPM with learned
// variance, or DDIM η = 0) and the timestep lookup, both driven by a device step counter and a device
// table so one captured CUDA graph serves every step. The per-element math lives here as a host/device
// function so the CPU reference (engine/backend/cpu/cpu_sampler.cpp) runs the very same operations and
// gets the same bits; it uses only the correctly rounded operations of kernels/portable_math.h, written
// in the order of the PyTorch reference (guided-diffusion's gaussian_diffusion.py, f32 arithmetic on
// f32-rounded coefficients).
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "kernels/kernel_types.h"
#include "kernels/philox.h"

namespace blr::kern {

// Columns of the step table; engine/diffusion/schedule.h defines them and checks they match.
enum SamplerColumn : int {
  kSchedTimestep = 0,
  kSchedSqrtRecipAlphaBar,
  kSchedSqrtRecipm1AlphaBar,
  kSchedCoef1,
  kSchedCoef2,
  kSchedLogBeta,
  kSchedPosteriorLogVar,
  kSchedFixedLargeLogVar,
  kSchedAlphaBarPrev,
  kSchedNoiseMask,
  kSchedColumns
};

enum class SamplerMode : int { DDPM = 0, DDIM = 1 };

// Guided noise prediction for one element: eps_u + g·(eps_c − eps_u).
BLR_PM_HD float guided_eps(float cond, float uncond, float guidance) {
  using namespace blr::philox;
  return fadd(uncond, fmul(guidance, fadd(cond, -uncond)));
}

// pred_xstart = √(1/ᾱ)·x − √(1/ᾱ − 1)·eps   (no clipping, as DiT samples).
BLR_PM_HD float predict_x0(const float* row, float x, float eps) {
  using namespace blr::philox;
  return fadd(fmul(row[kSchedSqrtRecipAlphaBar], x), -fmul(row[kSchedSqrtRecipm1AlphaBar], eps));
}

// New value of one latent element given its x0 prediction. `row` is the step's table row; `v` the raw
// learned-variance output in [−1, 1] (ignored unless learned); `noise` a standard normal (ignored by DDIM).
BLR_PM_HD float sampler_update(SamplerMode mode, const float* row, float x, float x0, bool learned, float v,
                               float noise) {
  using namespace blr::philox;
  if (mode == SamplerMode::DDIM) {
    // eps re-derived from x0 as the reference does, then x_prev = x0·√ᾱ_prev + √(1 − ᾱ_prev)·eps.
    const float eps2 = fdiv(fadd(fmul(row[kSchedSqrtRecipAlphaBar], x), -x0), row[kSchedSqrtRecipm1AlphaBar]);
    const float abp = row[kSchedAlphaBarPrev];
    return fadd(fmul(x0, fsqrt(abp)), fmul(fsqrt(fadd(1.0f, -abp)), eps2));
  }
  const float mean = fadd(fmul(row[kSchedCoef1], x0), fmul(row[kSchedCoef2], x));
  float log_var = row[kSchedFixedLargeLogVar];
  if (learned) {
    const float frac = fdiv(fadd(v, 1.0f), 2.0f);
    log_var = fadd(fmul(frac, row[kSchedLogBeta]), fmul(fadd(1.0f, -frac), row[kSchedPosteriorLogVar]));
  }
  const float scale = fmul(row[kSchedNoiseMask], exp_f(fmul(0.5f, log_var)));
  return fadd(mean, fmul(scale, noise));
}

// Raw pointers of one sampler step (see engine/backend/ops.h SamplerStepArgs for the meaning).
struct SamplerStepParams {
  SamplerMode mode = SamplerMode::DDPM;
  const void* model_out = nullptr;  // [Bm, P, Cm], dtype out_dt, rows contiguous (P = H·W)
  DT out_dt = DT::F32;
  float* x = nullptr;               // f32 [B, P, C]
  void* model_in = nullptr;         // optional [Bin, P, C], dtype in_dt (Bin = B or 2B)
  DT in_dt = DT::F32;
  int in_batch = 0;
  const float* tables = nullptr;    // [K, kSchedColumns]
  int steps = 0;                    // K (the counter is clamped to K−1 so a stray replay cannot read past)
  int32_t* step = nullptr;          // device counter
  const int64_t* seeds = nullptr;   // [B]
  const float* noise = nullptr;     // optional [K, B, P, C]
  float* pred_x0 = nullptr;         // optional f32 [B, P, C]
  int batch = 0, pixels = 0, channels = 0, out_channels = 0;
  bool guided = false;              // Bm == 2B
  float guidance = 1.0f;
  int guided_channels = 3;
  bool learned = true;
};

// Updates x (and model_in) for one step, then increments the step counter.
cudaError_t launch_sampler_step(const SamplerStepParams& p, cudaStream_t stream);
// t[i] = tables[step, kSchedTimestep] for i < n.
cudaError_t launch_sampler_timesteps(const float* tables, int steps, const int32_t* step, float* t, int n,
                                     cudaStream_t stream);

}  // namespace blr::kern
