// CPU reference: layer norm (fused residual, gate, affine, adaLN modulation), modulate, gated add and
// group norm, against hand-computed values and a second formula evaluated in the test (variance as
// E[x²] − E[x]² in long double, where the op uses two passes in double).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/core/error.h"
#include "tests/common/test_util.h"
#include "tests/ops/cpu_ref_util.h"

namespace blr {
namespace {

using test::expect_all_near;
using test::random_tensor;

// Normalised values are O(1..5); fp32 rounding of x − mean and of rstd leaves ~1e-6, so 1e-5 is loose
// enough for rounding and tight enough to catch any wrong mean, variance, eps or index.
constexpr double kTol = 1e-5;

// LayerNorm of each row of `x` [rows, C] by the one-pass formula, in long double.
std::vector<long double> layer_norm_ref(const std::vector<float>& x, int64_t C, double eps) {
  std::vector<long double> y(x.size());
  for (size_t r = 0; r < x.size() / C; ++r) {
    long double s = 0, s2 = 0;
    for (int64_t c = 0; c < C; ++c) s += x[r * C + c], s2 += (long double)x[r * C + c] * x[r * C + c];
    const long double mean = s / C, var = s2 / C - mean * mean;
    for (int64_t c = 0; c < C; ++c) y[r * C + c] = (x[r * C + c] - mean) / std::sqrt(var + eps);
  }
  return y;
}

TEST(CpuNorm, LayerNormOfOneTwoThreeFour) {
  CpuOps ops;
  // mean 2.5, variance 1.25: y = (x − 2.5) / sqrt(1.25) = ±0.4472136, ±1.3416408.
  const Tensor x = Tensor::from_vector({1, 4}, {1, 2, 3, 4});
  Tensor y = Tensor::zeros({1, 4});
  NormParams p;
  p.eps = 0.0f;
  ops.layer_norm(x, p, y);
  const double a = 1.5 / std::sqrt(1.25), b = 0.5 / std::sqrt(1.25);
  expect_all_near(y, {-a, -b, b, a}, kTol, "plain layer norm");

  // Affine: y·w + bias with w = [1, 2, 3, 4], bias = [0.5, 0, -1, 2].
  const Tensor w = Tensor::from_vector({4}, {1, 2, 3, 4}), bias = Tensor::from_vector({4}, {0.5f, 0, -1, 2});
  p.weight = &w;
  p.bias = &bias;
  ops.layer_norm(x, p, y);
  expect_all_near(y, {-a + 0.5, -2 * b, 3 * b - 1, 4 * a + 2}, kTol, "affine layer norm");

  // eps enters under the square root: var 1.25 + eps 0.75 = 2.
  NormParams pe;
  pe.eps = 0.75f;
  ops.layer_norm(x, pe, y);
  expect_all_near(y, {-1.5 / std::sqrt(2.0), -0.5 / std::sqrt(2.0), 0.5 / std::sqrt(2.0), 1.5 / std::sqrt(2.0)}, kTol,
                  "layer norm with eps");
}

TEST(CpuNorm, LayerNormMatchesOnePassFormulaOnAwkwardShapes) {
  CpuOps ops;
  for (const Shape& s : {Shape{2, 5, 7}, Shape{1, 1, 13}, Shape{3, 17, 72}, Shape{4, 1}, Shape{2, 9, 768}}) {
    SCOPED_TRACE(shape_str(s));
    const int64_t C = s.back();
    Tensor x = random_tensor(s, 11, 2.0f);
    // A mean far from zero checks the variance does not cancel catastrophically.
    for (int64_t i = 0; i < x.numel(); ++i) x.data_as<float>()[i] += 3.0f;
    const Tensor w = random_tensor({C}, 12), bias = random_tensor({C}, 13);
    Tensor y = Tensor::zeros(s);
    NormParams p;
    p.eps = 1e-6f;
    p.weight = &w;
    p.bias = &bias;
    ops.layer_norm(x, p, y);
    const auto n = layer_norm_ref(x.to_vector(), C, 1e-6);
    std::vector<double> want(n.size());
    for (size_t i = 0; i < n.size(); ++i) want[i] = double(n[i] * w.flat(i % C) + bias.flat(i % C));
    expect_all_near(y, want, kTol * 4, "affine layer norm");  // weights up to ~3 scale the rounding
  }
}

TEST(CpuNorm, FusedResidualGateAndModulationWithStridedRows) {
  CpuOps ops;
  const int64_t B = 2, N = 3, C = 5;
  Tensor x = random_tensor({B, N, C}, 1);
  const Tensor x0 = x.clone();
  const Tensor delta = random_tensor({B, N, C}, 2);
  // One wide adaLN output [B, 6C] chunked into shift, scale, gate views with row stride 6C.
  const Tensor ada = random_tensor({B, 6 * C}, 3, 0.5f);
  const Tensor shift = ada.slice(1, 0, C), scale = ada.slice(1, C, 2 * C), gate = ada.slice(1, 2 * C, 3 * C);
  ASSERT_EQ(shift.stride(0), 6 * C);
  Tensor y = Tensor::zeros({B, N, C});
  NormParams p;
  p.eps = 1e-6f;
  p.shift = &shift;
  p.scale = &scale;
  ops.add_layer_norm(x, &delta, &gate, p, y);

  std::vector<float> updated(B * N * C);
  std::vector<double> want_x(B * N * C);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t i = (b * N + n) * C + c;
        updated[i] = float(x0.flat(i) + gate.at({b, c}) * delta.flat(i));
        want_x[i] = updated[i];
      }
  expect_all_near(x, want_x, 1e-6, "x after x += gate ⊙ delta");
  const auto n = layer_norm_ref(updated, C, 1e-6);
  std::vector<double> want_y(n.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < N; ++t)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t i = (b * N + t) * C + c;
        want_y[i] = double(n[i]) * (1.0 + scale.at({b, c})) + shift.at({b, c});
      }
  expect_all_near(y, want_y, kTol * 2, "modulated layer norm");

  // Without a gate the residual is a plain sum; with one token per sample ([B, C]) too.
  Tensor x2 = random_tensor({B, C}, 4);
  const Tensor x2_0 = x2.clone(), d2 = random_tensor({B, C}, 5);
  Tensor y2 = Tensor::zeros({B, C});
  ops.add_layer_norm(x2, &d2, nullptr, NormParams{}, y2);
  std::vector<double> want2(B * C);
  for (int64_t i = 0; i < B * C; ++i) want2[i] = float(x2_0.flat(i) + d2.flat(i));
  expect_all_near(x2, want2, 1e-6, "x after x += delta");
}

TEST(CpuNorm, InPlaceLayerNormEqualsOutOfPlace) {
  CpuOps ops;
  Tensor x = random_tensor({3, 4, 9}, 7);
  Tensor y = Tensor::zeros({3, 4, 9});
  ops.layer_norm(x, NormParams{}, y);
  ops.layer_norm(x, NormParams{}, x);  // y aliasing x is allowed: each row's stats come first
  EXPECT_EQ(test::compare(x, y).max_abs, 0.0);
}

TEST(CpuNorm, RejectsInconsistentArguments) {
  CpuOps ops;
  Tensor x = random_tensor({2, 3, 4}, 1), y = Tensor::zeros({2, 3, 4});
  const Tensor w = random_tensor({4}, 2), v = random_tensor({2, 4}, 3), bad = random_tensor({3, 4}, 4);
  NormParams both;
  both.weight = &w;
  both.shift = &v;
  EXPECT_THROW(ops.layer_norm(x, both, y), Error);  // affine and modulation together
  EXPECT_THROW(ops.add_layer_norm(x, nullptr, &v, NormParams{}, y), Error);  // gate without delta
  NormParams wrong;
  wrong.scale = &bad;  // [3, 4] for B = 2
  EXPECT_THROW(ops.layer_norm(x, wrong, y), Error);
  Tensor y_short = Tensor::zeros({2, 3, 5});
  EXPECT_THROW(ops.layer_norm(x, NormParams{}, y_short), Error);
  const Tensor half = Tensor::zeros({2, 3, 4}, DType::F16);
  EXPECT_THROW(ops.layer_norm(half, NormParams{}, y), Error);
  try {
    ops.layer_norm(x, wrong, y);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("scale"), std::string::npos) << e.what();
  }
}

TEST(CpuNorm, ModulateByHandAndOnStridedViews) {
  CpuOps ops;
  // y = x·(1 + scale) + shift: [1·2 + 0.5, 2·0.5 − 1] = [2.5, 0].
  const Tensor x = Tensor::from_vector({1, 1, 2}, {1, 2});
  const Tensor shift = Tensor::from_vector({1, 2}, {0.5f, -1}), scale = Tensor::from_vector({1, 2}, {1, -0.5f});
  Tensor y = Tensor::zeros({1, 1, 2});
  ops.modulate(x, shift, scale, y);
  expect_all_near(y, {2.5, 0.0}, 1e-7, "modulate");

  const int64_t B = 3, N = 4, C = 7;
  const Tensor xs = random_tensor({B, N, C}, 1), ada = random_tensor({B, 2 * C}, 2);
  const Tensor sh = ada.slice(1, 0, C), sc = ada.slice(1, C, 2 * C);
  Tensor ys = Tensor::zeros({B, N, C});
  ops.modulate(xs, sh, sc, ys);
  std::vector<double> want(B * N * C);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        want[(b * N + n) * C + c] = xs.at({b, n, c}) * (1 + sc.at({b, c})) + sh.at({b, c});
  expect_all_near(ys, want, 1e-5, "modulate with strided shift/scale");
}

TEST(CpuNorm, GatedAddWithAndWithoutGate) {
  CpuOps ops;
  const int64_t B = 2, N = 5, C = 3;
  Tensor x = random_tensor({B, N, C}, 1);
  const Tensor x0 = x.clone(), d = random_tensor({B, N, C}, 2), ada = random_tensor({B, 3 * C}, 3);
  const Tensor gate = ada.slice(1, 2 * C, 3 * C);
  ops.gated_add(x, &gate, d);
  std::vector<double> want(B * N * C);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t i = (b * N + n) * C + c;
        want[i] = float(x0.flat(i) + gate.at({b, c}) * d.flat(i));
      }
  expect_all_near(x, want, 1e-6, "gated add");
  ops.gated_add(x, nullptr, d);
  for (int64_t i = 0; i < B * N * C; ++i) want[i] = float(float(want[i]) + d.flat(i));
  expect_all_near(x, want, 1e-6, "plain residual add");
}

TEST(CpuNorm, GroupNormByHand) {
  CpuOps ops;
  // Two pixels, four channels, two groups: group 0 sees {1, 2, 3, 4} (mean 2.5, var 1.25), group 1 sees
  // {10, 20, 30, 40} (mean 25, var 125).
  const Tensor x = Tensor::from_vector({1, 1, 2, 4}, {1, 2, 10, 20, 3, 4, 30, 40});
  const Tensor w = Tensor::from_vector({4}, {1, 2, 1, -1}), b = Tensor::from_vector({4}, {0, 1, 0, 0.5f});
  Tensor y = Tensor::zeros({1, 1, 2, 4});
  ops.group_norm(x, 2, w, b, 0.0f, Act::None, y);
  const double s0 = std::sqrt(1.25), s1 = std::sqrt(125.0);
  expect_all_near(y,
                  {-1.5 / s0, 2 * (-0.5 / s0) + 1, -15 / s1, -(-5 / s1) + 0.5,  //
                   0.5 / s0, 2 * (1.5 / s0) + 1, 5 / s1, -(15 / s1) + 0.5},
                  kTol, "group norm");
}

TEST(CpuNorm, GroupNormMatchesPerGroupStatisticsWithSilu) {
  CpuOps ops;
  struct Case {
    Shape s;
    int groups;
    Act act;
  };
  for (const Case& k : {Case{{2, 5, 3, 12}, 4, Act::None}, Case{{1, 4, 4, 32}, 32, Act::Silu},
                        Case{{3, 1, 1, 6}, 2, Act::Silu}, Case{{1, 7, 5, 30}, 3, Act::None}}) {
    SCOPED_TRACE(shape_str(k.s) + " groups " + std::to_string(k.groups));
    const int64_t B = k.s[0], P = k.s[1] * k.s[2], C = k.s[3], cg = C / k.groups;
    Tensor x = random_tensor(k.s, 21, 1.5f);
    for (int64_t i = 0; i < x.numel(); ++i) x.data_as<float>()[i] += float(i % C) * 0.25f;  // per-channel offsets
    const Tensor w = random_tensor({C}, 22), b = random_tensor({C}, 23);
    Tensor y = Tensor::zeros(k.s);
    ops.group_norm(x, k.groups, w, b, 1e-5f, k.act, y);
    std::vector<double> want(x.numel());
    for (int64_t bb = 0; bb < B; ++bb)
      for (int g = 0; g < k.groups; ++g) {
        long double s = 0, s2 = 0;
        for (int64_t p = 0; p < P; ++p)
          for (int64_t c = g * cg; c < (g + 1) * cg; ++c) {
            const long double v = x.flat((bb * P + p) * C + c);
            s += v, s2 += v * v;
          }
        const long double n = P * cg, mean = s / n, var = s2 / n - mean * mean;
        for (int64_t p = 0; p < P; ++p)
          for (int64_t c = g * cg; c < (g + 1) * cg; ++c) {
            const int64_t i = (bb * P + p) * C + c;
            const double v = double((x.flat(i) - mean) / std::sqrt(var + 1e-5L)) * w.flat(c) + b.flat(c);
            want[i] = k.act == Act::Silu ? v / (1 + std::exp(-v)) : v;
          }
      }
    expect_all_near(y, want, kTol * 4, "group norm");  // weights up to ~3 scale the rounding
  }
  Tensor x = random_tensor({1, 2, 2, 6}, 1), y = Tensor::zeros({1, 2, 2, 6});
  const Tensor w = random_tensor({6}, 2), b = random_tensor({6}, 3);
  EXPECT_THROW(ops.group_norm(x, 4, w, b, 1e-5f, Act::None, y), Error);  // 6 channels, 4 groups
}

}  // namespace
}  // namespace blr
