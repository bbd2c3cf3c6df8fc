#include "engine/diffusion/schedule.h"

#include <cmath>
#include <set>

#include "engine/core/error.h"

namespace blr {

std::vector<double> linear_betas(int T, double start, double end) {
  BLR_CHECK(T >= 1, "linear_betas: T must be positive, got ", T);
  const double scale = 1000.0 / T;
  const double lo = scale * start, hi = scale * end;
  std::vector<double> betas(T);
  if (T == 1) {
    betas[0] = lo;
    return betas;
  }
  // numpy.linspace: arange(num)·step + start, with the last value set to stop exactly.
  const double step = (hi - lo) / (T - 1);
  for (int i = 0; i < T; ++i) {
    const double scaled = static_cast<double>(i) * step;
    betas[i] = scaled + lo;
  }
  betas[T - 1] = hi;
  return betas;
}

std::vector<int> space_timesteps(int T, int K) {
  if (K < 1 || K > T) throw InputError(cat("sampling steps must be between 1 and ", T, ", got ", K));
  // respace.py: frac_stride = (size−1)/(count−1); cur_idx accumulates it; round() is half-to-even.
  const double frac_stride = K <= 1 ? 1.0 : static_cast<double>(T - 1) / (K - 1);
  double cur = 0.0;
  std::set<int> kept;
  for (int i = 0; i < K; ++i) {
    kept.insert(static_cast<int>(std::nearbyint(cur)));  // default rounding mode: to nearest, ties even
    cur += frac_stride;
  }
  return std::vector<int>(kept.begin(), kept.end());
}

DiffusionSchedule schedule_from_betas(const std::vector<double>& betas, std::vector<int> timesteps) {
  const int K = static_cast<int>(betas.size());
  BLR_CHECK(K >= 1 && static_cast<int>(timesteps.size()) == K, "schedule: ", K, " betas but ",
            timesteps.size(), " timesteps");
  DiffusionSchedule s;
  s.timesteps = std::move(timesteps);
  s.betas = betas;
  s.alphas_cumprod.resize(K);
  s.alphas_cumprod_prev.resize(K);
  double acc = 1.0;
  for (int i = 0; i < K; ++i) {
    s.alphas_cumprod_prev[i] = acc;
    acc *= 1.0 - betas[i];
    s.alphas_cumprod[i] = acc;
  }
  s.sqrt_recip_alphas_cumprod.resize(K);
  s.sqrt_recipm1_alphas_cumprod.resize(K);
  s.posterior_variance.resize(K);
  s.posterior_log_variance_clipped.resize(K);
  s.posterior_mean_coef1.resize(K);
  s.posterior_mean_coef2.resize(K);
  for (int i = 0; i < K; ++i) {
    const double ac = s.alphas_cumprod[i], acp = s.alphas_cumprod_prev[i], b = betas[i];
    s.sqrt_recip_alphas_cumprod[i] = std::sqrt(1.0 / ac);
    s.sqrt_recipm1_alphas_cumprod[i] = std::sqrt(1.0 / ac - 1.0);
    s.posterior_variance[i] = b * (1.0 - acp) / (1.0 - ac);
    s.posterior_mean_coef1[i] = b * std::sqrt(acp) / (1.0 - ac);
    s.posterior_mean_coef2[i] = (1.0 - acp) * std::sqrt(1.0 - b) / (1.0 - ac);
  }
  // The posterior variance is 0 at i = 0; the log is clipped by repeating the value at i = 1.
  for (int i = 0; i < K; ++i) {
    const double v = (i == 0 && K > 1) ? s.posterior_variance[1] : s.posterior_variance[i];
    s.posterior_log_variance_clipped[i] = std::log(v);
  }
  return s;
}

DiffusionSchedule make_schedule(int K, int T) {
  const std::vector<double> base_betas = linear_betas(T);
  const std::vector<int> kept = space_timesteps(T, K);
  // respace.py: walk the base ᾱ and keep 1 − ᾱ_t/ᾱ_last at every kept step.
  std::vector<double> betas;
  betas.reserve(kept.size());
  double acc = 1.0, last = 1.0;
  size_t next = 0;
  for (int t = 0; t < T && next < kept.size(); ++t) {
    acc *= 1.0 - base_betas[t];
    if (t == kept[next]) {
      betas.push_back(1.0 - acc / last);
      last = acc;
      ++next;
    }
  }
  DiffusionSchedule s = schedule_from_betas(betas, kept);
  s.T = T;
  return s;
}

Tensor build_step_table(const DiffusionSchedule& s) {
  const int K = s.steps();
  Tensor table = Tensor::zeros({K, kScheduleColumns}, DType::F32);
  float* p = table.data_as<float>();
  for (int step = 0; step < K; ++step) {
    const int i = K - 1 - step;
    float* row = p + static_cast<size_t>(step) * kScheduleColumns;
    const double fixed_large = (i == 0 && K > 1) ? s.posterior_variance[1] : s.betas[i];
    row[kColTimestep] = static_cast<float>(s.timesteps[i]);
    row[kColSqrtRecipAlphaBar] = static_cast<float>(s.sqrt_recip_alphas_cumprod[i]);
    row[kColSqrtRecipm1AlphaBar] = static_cast<float>(s.sqrt_recipm1_alphas_cumprod[i]);
    row[kColPosteriorCoef1] = static_cast<float>(s.posterior_mean_coef1[i]);
    row[kColPosteriorCoef2] = static_cast<float>(s.posterior_mean_coef2[i]);
    row[kColLogBeta] = static_cast<float>(std::log(s.betas[i]));
    row[kColPosteriorLogVar] = static_cast<float>(s.posterior_log_variance_clipped[i]);
    row[kColFixedLargeLogVar] = static_cast<float>(std::log(fixed_large));
    row[kColAlphaBarPrev] = static_cast<float>(s.alphas_cumprod_prev[i]);
    row[kColNoiseMask] = i == 0 ? 0.0f : 1.0f;
  }
  return table;
}

float learned_log_variance(float v, float log_beta, float posterior_log_var) {
  const float frac = (v + 1.0f) / 2.0f;
  return frac * log_beta + (1.0f - frac) * posterior_log_var;
}

const char* sampler_name(SamplerKind k) { return k == SamplerKind::DDIM ? "ddim" : "ddpm"; }

SamplerKind parse_sampler(const std::string& name) {
  if (name == "ddpm") return SamplerKind::DDPM;
  if (name == "ddim") return SamplerKind::DDIM;
  throw InputError(cat("unknown sampler '", name, "' (expected ddpm or ddim)"));
}

}  // namespace blr
