// Diffusion schedules as the DiT repository builds them (its gaussian_diffusion.py and respace.py, which
// descend from OpenAI's guided-diffusion), and the per-step table the sampler op reads on the device.
//
// - Base: T = 1000 linear betas from 1e-4 to 0.02 (scaled by 1000/T), in float64 like numpy.linspace.
// - Respacing to K steps keeps timesteps round(i·(T−1)/(K−1)), the index accumulated by repeated
//   addition and rounded half to even exactly like Python's round(), and recomputes each kept step's
//   beta as 1 − ᾱ_t / ᾱ_prev over the kept steps.
// - Posterior coefficients, clipped posterior log-variance and the learned-range interpolation follow
//   the same file; everything is computed in float64 and stored rounded to float32, which is exactly what
//   the PyTorch code's _extract_into_tensor(...).float() hands its f32 arithmetic.
//
// Sampling step s (s = 0 first, K−1 last) uses respaced index i = K−1−s; row s of the table holds all
// it needs, so one captured CUDA graph can serve every step by indexing with a device step counter.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend/ops.h"
#include "engine/core/tensor.h"

namespace blr {

// Columns of the per-step table (f32 [K, kScheduleColumns], row s = sampling step s).
enum ScheduleColumn : int {
  kColTimestep = 0,         // original timestep t (0..T−1) given to the model, as a float
  kColSqrtRecipAlphaBar,    // √(1/ᾱ_i)
  kColSqrtRecipm1AlphaBar,  // √(1/ᾱ_i − 1)
  kColPosteriorCoef1,       // β_i·√ᾱ_{i−1} / (1 − ᾱ_i)          (multiplies x0)
  kColPosteriorCoef2,       // (1 − ᾱ_{i−1})·√α_i / (1 − ᾱ_i)     (multiplies x_t)
  kColLogBeta,              // log β_i: upper end of the learned log-variance range
  kColPosteriorLogVar,      // log β̃_i clipped (β̃_0 replaced by β̃_1): lower end of the range
  kColFixedLargeLogVar,     // log of [β̃_1, β_1, β_2, ...][i]: the variance when sigma is not learned
  kColAlphaBarPrev,         // ᾱ_{i−1} (DDIM, η = 0; the op takes √ᾱ_{i−1} and √(1 − ᾱ_{i−1}) in f32
                            // like the PyTorch code does from the f32 value)
  kColNoiseMask,            // 1 when noise is added at this step, 0 at the last step (i = 0)
  kScheduleColumns
};

// numpy.linspace(start·1000/T, end·1000/T, T) in float64.
std::vector<double> linear_betas(int T, double start = 1e-4, double end = 0.02);
// The kept timesteps of space_timesteps(T, "K") in ascending order. Throws InputError unless 1 ≤ K ≤ T.
std::vector<int> space_timesteps(int T, int K);

// A (possibly respaced) Gaussian diffusion, all arrays indexed by the respaced step i in [0, K).
struct DiffusionSchedule {
  int T = 0;                      // base steps
  std::vector<int> timesteps;     // timestep_map: original t of respaced index i
  std::vector<double> betas, alphas_cumprod, alphas_cumprod_prev;
  std::vector<double> sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod;
  std::vector<double> posterior_variance, posterior_log_variance_clipped;
  std::vector<double> posterior_mean_coef1, posterior_mean_coef2;
  int steps() const { return static_cast<int>(betas.size()); }
};

// The DiT schedule: linear betas over T steps, respaced to K.
DiffusionSchedule make_schedule(int K, int T = 1000);
// Builds a schedule from explicit betas (used by make_schedule; exposed for tests).
DiffusionSchedule schedule_from_betas(const std::vector<double>& betas, std::vector<int> timesteps);

// Host f32 [K, kScheduleColumns]; row s describes sampling step s (respaced index K−1−s).
Tensor build_step_table(const DiffusionSchedule& schedule);

// log-variance of the learned-range parameterisation for model output v in [−1, 1] at respaced index i
// (the same f32 arithmetic the sampler ops use): frac·log β + (1 − frac)·log β̃_clipped, frac = (v+1)/2.
float learned_log_variance(float v, float log_beta, float posterior_log_var);

const char* sampler_name(SamplerKind k);     // "ddpm", "ddim"
SamplerKind parse_sampler(const std::string& name);  // throws InputError

}  // namespace blr
