// Sampler math against values computed independently here (closed forms in double, integer rounding),
// the Philox generator against the Random123 known-answer vectors, the portable math against libm, and
// the CPU sampler op against a double-precision restatement of the DDPM / DDIM update.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/error.h"

#include <cmath>
#include <numeric>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/diffusion/noise.h"
#include "engine/diffusion/schedule.h"
#include "kernels/philox.h"
#include "kernels/portable_math.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

// Round-half-to-even of n/d for non-negative integers, exactly.
int64_t round_ratio_half_even(int64_t n, int64_t d) {
  const int64_t q = n / d, r = n % d;
  if (2 * r > d) return q + 1;
  if (2 * r < d) return q;
  return q % 2 == 0 ? q : q + 1;
}

TEST(Schedule, LinearBetasEndpointsAndSpacing) {
  const std::vector<double> b = linear_betas(1000);
  ASSERT_EQ(b.size(), 1000u);
  EXPECT_DOUBLE_EQ(b.front(), 1e-4);
  EXPECT_DOUBLE_EQ(b.back(), 0.02);
  for (int i = 0; i < 1000; ++i) EXPECT_NEAR(b[i], 1e-4 + i * (0.02 - 1e-4) / 999.0, 1e-15) << "beta " << i;
}

TEST(Schedule, RespacingKeepsRoundedEvenlySpacedSteps) {
  for (int K : {1, 2, 3, 5, 10, 50, 100, 250, 999, 1000}) {
    const std::vector<int> kept = space_timesteps(1000, K);
    ASSERT_EQ(static_cast<int>(kept.size()), K) << "K=" << K;
    for (int i = 0; i < K; ++i) {
      const int64_t expect = K == 1 ? 0 : round_ratio_half_even(int64_t{i} * 999, K - 1);
      // At exact ties (i·999/(K−1) = n + ½) the reference decides by its floating-point accumulation of
      // the stride, which lands a hair below or above the tie: either neighbour is what DiT keeps.
      const bool tie = K > 1 && (2 * int64_t{i} * 999) % (K - 1) == 0 && (2 * int64_t{i} * 999 / (K - 1)) % 2 == 1;
      if (tie) EXPECT_NEAR(kept[i], expect, 1) << "K=" << K << " i=" << i;
      else EXPECT_EQ(kept[i], expect) << "K=" << K << " i=" << i;
    }
  }
  const std::vector<int> k250 = space_timesteps(1000, 250);
  EXPECT_EQ(k250[1], 4);
  EXPECT_EQ(k250.back(), 999);
  EXPECT_THROW(space_timesteps(1000, 0), InputError);
  EXPECT_THROW(space_timesteps(1000, 1001), InputError);
}

TEST(Schedule, RespacedBetasPreserveAlphaBarOfKeptSteps) {
  const int K = 25;
  const DiffusionSchedule s = make_schedule(K);
  // ᾱ of the base schedule at each kept step, by direct product.
  std::vector<double> base_ac(1000);
  double acc = 1.0;
  for (int t = 0; t < 1000; ++t) {
    acc *= 1.0 - (1e-4 + t * (0.02 - 1e-4) / 999.0);
    base_ac[t] = acc;
  }
  ASSERT_EQ(s.steps(), K);
  for (int i = 0; i < K; ++i) {
    EXPECT_NEAR(s.alphas_cumprod[i], base_ac[s.timesteps[i]], 1e-12) << "i=" << i;
    const double prev = i == 0 ? 1.0 : base_ac[s.timesteps[i - 1]];
    EXPECT_NEAR(s.betas[i], 1.0 - base_ac[s.timesteps[i]] / prev, 1e-12);
  }
}

TEST(Schedule, PosteriorCoefficientsMatchClosedForms) {
  const DiffusionSchedule s = make_schedule(50);
  for (int i = 0; i < s.steps(); ++i) {
    const double ac = s.alphas_cumprod[i];
    const double acp = i == 0 ? 1.0 : s.alphas_cumprod[i - 1];
    const double beta = 1.0 - ac / acp;
    // The posterior q(x_{t-1} | x_t, x0) mean reproduces x0 exactly when x_t = √ᾱ x0 (no noise).
    const double x0 = 0.7, xt = std::sqrt(ac) * x0;
    const double mean = s.posterior_mean_coef1[i] * x0 + s.posterior_mean_coef2[i] * xt;
    EXPECT_NEAR(mean, std::sqrt(acp) * x0, 1e-12) << "i=" << i;
    EXPECT_NEAR(s.posterior_variance[i], beta * (1 - acp) / (1 - ac), 1e-15);
    EXPECT_NEAR(s.sqrt_recip_alphas_cumprod[i] * s.sqrt_recip_alphas_cumprod[i], 1.0 / ac, 1e-9 / ac);
    const double expect_log = std::log(i == 0 ? s.posterior_variance[1] : s.posterior_variance[i]);
    EXPECT_NEAR(s.posterior_log_variance_clipped[i], expect_log, 1e-12);
  }
  EXPECT_EQ(s.posterior_variance[0], 0.0);  // why the log is clipped
}

TEST(Schedule, StepTableRowsRunFromNoisiestToCleanest) {
  const int K = 10;
  const DiffusionSchedule s = make_schedule(K);
  const Tensor table = build_step_table(s);
  ASSERT_EQ(table.shape(), Shape({K, kScheduleColumns}));
  for (int step = 0; step < K; ++step) {
    const int i = K - 1 - step;
    EXPECT_EQ(table.at({step, kColTimestep}), s.timesteps[i]);
    EXPECT_FLOAT_EQ(static_cast<float>(table.at({step, kColLogBeta})), static_cast<float>(std::log(s.betas[i])));
    EXPECT_FLOAT_EQ(static_cast<float>(table.at({step, kColAlphaBarPrev})), static_cast<float>(s.alphas_cumprod_prev[i]));
    EXPECT_EQ(table.at({step, kColNoiseMask}), step == K - 1 ? 0.0 : 1.0);
  }
  EXPECT_EQ(table.at({0, kColTimestep}), 999.0);
  EXPECT_EQ(table.at({K - 1, kColTimestep}), 0.0);
}

TEST(Schedule, LearnedVarianceInterpolatesTheLogRange) {
  const float lo = -9.0f, hi = -4.0f;
  EXPECT_FLOAT_EQ(learned_log_variance(-1.0f, hi, lo), lo);
  EXPECT_FLOAT_EQ(learned_log_variance(1.0f, hi, lo), hi);
  EXPECT_FLOAT_EQ(learned_log_variance(0.0f, hi, lo), 0.5f * (lo + hi));
  EXPECT_NEAR(learned_log_variance(0.5f, hi, lo), 0.75 * hi + 0.25 * lo, 1e-6);
}

TEST(Philox, MatchesRandom123KnownAnswers) {
  // Known-answer vectors published with Random123 (kat_vectors, philox4x32 with 10 rounds).
  struct Kat {
    uint32_t ctr[4], key[2], out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       {0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       {0xa4093822u, 0x299f31d0u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Kat& k : kats) {
    philox::Block c;
    for (int i = 0; i < 4; ++i) c.v[i] = k.ctr[i];
    const philox::Block r = philox::philox4x32_10(c, k.key[0], k.key[1]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.v[i], k.out[i]) << "word " << i;
  }
}

TEST(PortableMath, AgreesWithLibmToFloatPrecision) {
  double worst_log = 0, worst_exp = 0, worst_sc = 0;
  for (int k = 1; k <= (1 << 24); k += 997) {
    const float u = static_cast<float>(k) * 5.9604644775390625e-8f;
    worst_log = std::max(worst_log, std::abs(philox::log_positive(u) - std::log(static_cast<double>(u))) /
                                        std::max(1e-30, std::abs(std::log(static_cast<double>(u)))));
    float s, c;
    philox::sincos_2pi(u < 1.0f ? u : 0.0f, &s, &c);
    const double a = 2 * M_PI * (u < 1.0f ? u : 0.0f);
    worst_sc = std::max(worst_sc, std::max(std::abs(s - std::sin(a)), std::abs(c - std::cos(a))));
  }
  for (float x = -87.0f; x <= 88.0f; x += 0.01373f)
    worst_exp = std::max(worst_exp, std::abs(philox::exp_f(x) - std::exp(static_cast<double>(x))) / std::exp(static_cast<double>(x)));
  // A few float ulps (2^-23 ≈ 1.2e-7) from rounding in the polynomial and argument reduction.
  EXPECT_LT(worst_log, 1e-6);
  EXPECT_LT(worst_exp, 1e-6);
  EXPECT_LT(worst_sc, 1e-6);
}

TEST(Noise, IsStandardNormal) {
  const int64_t n = 1 << 20;
  const std::vector<float> z = step_noise(12345, 7, n);
  double sum = 0, sq = 0;
  int64_t tail = 0;
  for (float v : z) {
    ASSERT_TRUE(std::isfinite(v));
    sum += v;
    sq += double(v) * v;
    tail += std::abs(v) > 3.0f;
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  // Five standard errors: mean ± 5/√n, variance ± 5·√(2/n), tail mass 0.0027 ± 5·√(p/n).
  EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(double(n)));
  EXPECT_NEAR(var, 1.0, 5.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(double(tail) / n, 0.0026998, 5.0 * std::sqrt(0.0027 / n));
  // Different steps and seeds give different streams.
  EXPECT_NE(step_noise(12345, 8, 4), step_noise(12345, 7, 4));
  EXPECT_NE(step_noise(12346, 7, 4), step_noise(12345, 7, 4));
}

TEST(Noise, InitialLatentDependsOnlyOnTheImagesSeed) {
  const Tensor both = initial_latent({41, 42}, 4, 4, 4);
  const Tensor alone = initial_latent({42}, 4, 4, 4);
  for (int64_t e = 0; e < 64; ++e) EXPECT_EQ(both.data_as<float>()[64 + e], alone.data_as<float>()[e]);
  EXPECT_NE(both.data_as<float>()[0], alone.data_as<float>()[0]);
}

// ---- the CPU sampler op against a double-precision restatement ----
struct StepFixture {
  int K = 20, B = 2, H = 2, W = 3, C = 4;
  Tensor x, model_out, tables, step, seeds;
  DiffusionSchedule sched;
  void make(bool guided) {
    sched = make_schedule(K);
    tables = build_step_table(sched);
    x = test::random_tensor({B, H, W, C}, 1);
    model_out = test::random_tensor({guided ? 2 * B : B, H, W, 2 * C}, 2, 0.5f);
    // variance channels in [-1, 1]
    for (int64_t i = 0; i < model_out.numel(); ++i) {
      float& v = model_out.data_as<float>()[i];
      if (i % (2 * C) >= C) v = std::tanh(v);
    }
    step = Tensor::zeros({1}, DType::I32);
    seeds = Tensor::zeros({B}, DType::I64);
    seeds.data_as<int64_t>()[0] = 1000;
    seeds.data_as<int64_t>()[1] = 77;
  }
};

TEST(CpuSampler, DdpmGuidedStepMatchesDoublePrecisionMath) {
  StepFixture f;
  f.make(true);
  const int s = 5, i = f.K - 1 - s;
  f.step.data_as<int32_t>()[0] = s;
  const Tensor x_before = f.x.clone();
  CpuOps ops;
  SamplerStepArgs a;
  a.kind = SamplerKind::DDPM;
  a.model_out = &f.model_out;
  a.x = &f.x;
  a.tables = &f.tables;
  a.step = &f.step;
  a.seeds = &f.seeds;
  a.guidance = 4.0f;
  a.guided_channels = 3;
  Tensor model_in = Tensor::zeros({2 * f.B, f.H, f.W, f.C});
  a.model_in = &model_in;
  ops.sampler_step(a);
  EXPECT_EQ(f.step.data_as<int32_t>()[0], s + 1) << "the op must advance the step counter";
  const int64_t P = f.H * f.W, per = P * f.C;
  const double ac = f.sched.alphas_cumprod[i], acp = f.sched.alphas_cumprod_prev[i], beta = f.sched.betas[i];
  const double post_var = beta * (1 - acp) / (1 - ac);
  const double post_var1 = f.sched.betas[1] * (1 - f.sched.alphas_cumprod[0]) / (1 - f.sched.alphas_cumprod[1]);
  (void)post_var1;
  double worst = 0;
  for (int b = 0; b < f.B; ++b) {
    const std::vector<float> noise = step_noise(static_cast<uint64_t>(f.seeds.data_as<int64_t>()[b]), s, per);
    for (int64_t e = 0; e < per; ++e) {
      const int64_t px = e / f.C, c = e % f.C;
      const float* mo = f.model_out.data_as<float>();
      const double cond = mo[(b * P + px) * 2 * f.C + c], unc = mo[((f.B + b) * P + px) * 2 * f.C + c];
      const double eps = c < 3 ? unc + 4.0 * (cond - unc) : cond;
      const double v = mo[(b * P + px) * 2 * f.C + f.C + c];
      const double xt = x_before.data_as<float>()[b * per + e];
      const double x0 = (xt - std::sqrt(1 - ac) * eps) / std::sqrt(ac);
      const double mean = std::sqrt(acp) * beta / (1 - ac) * x0 + std::sqrt(1 - beta) * (1 - acp) / (1 - ac) * xt;
      const double frac = (v + 1) / 2;
      const double logv = frac * std::log(beta) + (1 - frac) * std::log(post_var);
      const double expect = mean + std::exp(0.5 * logv) * noise[e];
      const double got = f.x.data_as<float>()[b * per + e];
      worst = std::max(worst, std::abs(got - expect) / (1 + std::abs(expect)));
      EXPECT_EQ(model_in.data_as<float>()[b * per + e], got) << "model_in first half";
      EXPECT_EQ(model_in.data_as<float>()[(f.B + b) * per + e], got) << "model_in second half";
    }
  }
  // f32 arithmetic on f32-rounded coefficients; x0 amplifies eps by √(1/ᾱ − 1) ≤ 160.
  EXPECT_LT(worst, 2e-5);
}

TEST(CpuSampler, DdimStepIsDeterministicAndMatchesDoublePrecision) {
  StepFixture f;
  f.make(false);
  const int s = 11, i = f.K - 1 - s;
  f.step.data_as<int32_t>()[0] = s;
  const Tensor x_before = f.x.clone();
  CpuOps ops;
  SamplerStepArgs a;
  a.kind = SamplerKind::DDIM;
  a.model_out = &f.model_out;
  a.x = &f.x;
  a.tables = &f.tables;
  a.step = &f.step;
  a.seeds = &f.seeds;
  Tensor x0_out = Tensor::zeros(f.x.shape());
  a.pred_x0 = &x0_out;
  ops.sampler_step(a);
  const double ac = f.sched.alphas_cumprod[i], acp = f.sched.alphas_cumprod_prev[i];
  const int64_t per = f.H * f.W * f.C;
  double worst = 0, worst_x0 = 0;
  for (int b = 0; b < f.B; ++b)
    for (int64_t e = 0; e < per; ++e) {
      const int64_t px = e / f.C, c = e % f.C;
      const double eps = f.model_out.data_as<float>()[(b * f.H * f.W + px) * 2 * f.C + c];
      const double xt = x_before.data_as<float>()[b * per + e];
      const double x0 = (xt - std::sqrt(1 - ac) * eps) / std::sqrt(ac);
      const double expect = std::sqrt(acp) * x0 + std::sqrt(1 - acp) * eps;
      worst = std::max(worst, std::abs(f.x.data_as<float>()[b * per + e] - expect) / (1 + std::abs(expect)));
      worst_x0 = std::max(worst_x0, std::abs(x0_out.data_as<float>()[b * per + e] - x0) / (1 + std::abs(x0)));
    }
  EXPECT_LT(worst, 2e-5);  // as above: f32 arithmetic, eps re-derived from x0 like the reference
  EXPECT_LT(worst_x0, 2e-5);
}

TEST(CpuSampler, NoiseOfAnImageDoesNotDependOnItsBatchPosition) {
  StepFixture f;
  f.make(false);
  f.step.data_as<int32_t>()[0] = 3;
  CpuOps ops;
  SamplerStepArgs a;
  a.model_out = &f.model_out;
  a.x = &f.x;
  a.tables = &f.tables;
  a.step = &f.step;
  a.seeds = &f.seeds;
  const Tensor x1_before = f.x.slice(0, 1, 2).clone();
  ops.sampler_step(a);
  // Image 1 alone, same seed, same model output and latent.
  Tensor x = x1_before.clone();
  Tensor mo = f.model_out.slice(0, 1, 2).clone();
  Tensor step = Tensor::zeros({1}, DType::I32);
  step.data_as<int32_t>()[0] = 3;
  Tensor seeds = Tensor::zeros({1}, DType::I64);
  seeds.data_as<int64_t>()[0] = f.seeds.data_as<int64_t>()[1];
  SamplerStepArgs b = a;
  b.model_out = &mo;
  b.x = &x;
  b.step = &step;
  b.seeds = &seeds;
  ops.sampler_step(b);
  const int64_t per = f.H * f.W * f.C;
  for (int64_t e = 0; e < per; ++e) EXPECT_EQ(x.data_as<float>()[e], f.x.data_as<float>()[per + e]) << "element " << e;
}

TEST(CpuSampler, InjectedNoiseReplacesPhilox) {
  StepFixture f;
  f.make(false);
  Tensor noise = Tensor::zeros({f.K, f.B, f.H, f.W, f.C});  // zero noise: the update is the mean only
  f.step.data_as<int32_t>()[0] = 2;
  Tensor x2 = f.x.clone();
  CpuOps ops;
  SamplerStepArgs a;
  a.model_out = &f.model_out;
  a.x = &f.x;
  a.tables = &f.tables;
  a.step = &f.step;
  a.seeds = &f.seeds;
  a.noise = &noise;
  ops.sampler_step(a);
  // With the last step's table row the mask is 0, so noise never matters: compare against that.
  Tensor step2 = Tensor::zeros({1}, DType::I32);
  step2.data_as<int32_t>()[0] = 2;
  Tensor tab2 = f.tables.clone();
  for (int s = 0; s < f.K; ++s) tab2.data_as<float>()[s * kScheduleColumns + kColNoiseMask] = 0.0f;
  SamplerStepArgs b = a;
  b.noise = nullptr;
  b.x = &x2;
  b.step = &step2;
  b.tables = &tab2;
  ops.sampler_step(b);
  for (int64_t e = 0; e < f.x.numel(); ++e) EXPECT_EQ(f.x.data_as<float>()[e], x2.data_as<float>()[e]);
}

TEST(CpuSampler, RejectsMismatchedShapes) {
  StepFixture f;
  f.make(false);
  CpuOps ops;
  Tensor bad = Tensor::zeros({3, f.H, f.W, 2 * f.C});
  SamplerStepArgs a;
  a.model_out = &bad;
  a.x = &f.x;
  a.tables = &f.tables;
  a.step = &f.step;
  a.seeds = &f.seeds;
  EXPECT_THROW(ops.sampler_step(a), Error);
}

}  // namespace
}  // namespace blr
