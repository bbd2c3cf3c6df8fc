// CPU reference attention against explicit per-element loops in double (scores, exp, normalise,
// weighted sum), on a hand case and on awkward shapes: N = 1, odd N, D = 72 (DiT), D = 64 (ViT),
// one head of 512 (the VAE's mid-block attention), and a qkv whose rows are padded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/core/error.h"
#include "tests/common/test_util.h"
#include "tests/ops/cpu_ref_util.h"

namespace blr {
namespace {

using test::expect_all_near;

// out[b, i, h·D + d] = Σ_j softmax_j(scale · q_i·k_j) v_j[d], q/k/v read from qkv[b, n, (s·H + h)·D + d].
std::vector<double> attention_loops(const Tensor& qkv, int64_t H, int64_t D, double scale) {
  const int64_t B = qkv.dim(0), N = qkv.dim(1);
  const std::vector<float> v = qkv.to_vector();  // row-major copy of the (possibly strided) view
  auto at = [&](int64_t b, int64_t n, int64_t s, int64_t h, int64_t d) -> double {
    return v[(b * N + n) * 3 * H * D + (s * H + h) * D + d];
  };
  std::vector<double> out(B * N * H * D, 0.0);
  std::vector<double> e(N);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < N; ++i) {
        double mx = -1e300;
        for (int64_t j = 0; j < N; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += at(b, i, 0, h, d) * at(b, j, 1, h, d);
          e[j] = scale * dot;
          mx = std::max(mx, e[j]);
        }
        double z = 0;
        for (int64_t j = 0; j < N; ++j) z += (e[j] = std::exp(e[j] - mx));
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < N; ++j) acc += e[j] / z * at(b, j, 2, h, d);
          out[((b * N + i) * H + h) * D + d] = acc;
        }
      }
  return out;
}

TEST(CpuAttention, TwoTokensByHand) {
  CpuOps ops;
  // H = 1, D = 1, scale 1. Keys 0 and ln 3, values 10 and 20. Query 1: weights 1/4, 3/4 -> 17.5.
  // Query 0: equal weights -> 15.
  const float ln3 = std::log(3.0f);
  const Tensor qkv = Tensor::from_vector({1, 2, 3}, {1, 0, 10, 0, ln3, 20});
  Tensor out = Tensor::zeros({1, 2, 1});
  ops.attention(qkv, 1, 1.0f, out);
  expect_all_near(out, {17.5, 15.0}, 1e-5, "two-token attention");
}

TEST(CpuAttention, MatchesExplicitLoopsOnAwkwardShapes) {
  CpuOps ops;
  struct Case {
    int64_t B, N, H, D;
  };
  for (const Case& k : {Case{2, 5, 3, 4}, Case{1, 1, 2, 8}, Case{2, 17, 2, 72}, Case{1, 197, 12, 64},
                        Case{1, 33, 1, 512}, Case{3, 7, 5, 3}}) {
    SCOPED_TRACE("B=" + std::to_string(k.B) + " N=" + std::to_string(k.N) + " H=" + std::to_string(k.H) +
                 " D=" + std::to_string(k.D));
    const Tensor qkv = test::random_tensor({k.B, k.N, 3 * k.H * k.D}, 100 + k.D);
    const float scale = 1.0f / std::sqrt(float(k.D));
    Tensor out = Tensor::zeros({k.B, k.N, k.H * k.D});
    ops.attention(qkv, int(k.H), scale, out);
    const auto want = attention_loops(qkv, k.H, k.D, scale);
    // fp32 dot products over D ≤ 512 terms and sums over N ≤ 197 keys: relative rounding ~1e-6;
    // 2e-5 of the output's scale leaves margin and still catches any wrong head, offset or scale.
    expect_all_near(out, want, 2e-5 * std::max(1.0, test::max_abs(want)), "attention");
    if (k.N == 1) {  // one key: the output is that token's value exactly
      for (int64_t h = 0; h < k.H; ++h)
        for (int64_t d = 0; d < k.D; ++d)
          ASSERT_EQ(out.at({0, 0, h * k.D + d}), qkv.at({0, 0, (2 * k.H + h) * k.D + d}));
    }
  }
}

TEST(CpuAttention, QkvWithPaddedRowsAndLargeScores) {
  CpuOps ops;
  const int64_t B = 2, N = 6, H = 2, D = 8;
  // qkv as a view into rows of 3·H·D + 5 floats; scores scaled up to ~±60 test the max subtraction.
  const Tensor wide = test::random_tensor({B, N, 3 * H * D + 5}, 9, 3.0f);
  const Tensor qkv = wide.slice(2, 0, 3 * H * D);
  Tensor out = Tensor::zeros({B, N, H * D});
  ops.attention(qkv, int(H), 2.0f, out);
  const auto want = attention_loops(qkv, H, D, 2.0);
  expect_all_near(out, want, 2e-5 * std::max(1.0, test::max_abs(want)), "attention on padded rows");
  for (int64_t i = 0; i < out.numel(); ++i) ASSERT_TRUE(std::isfinite(out.flat(i)));

  Tensor bad = Tensor::zeros({B, N, H * D + 1});
  EXPECT_THROW(ops.attention(qkv, int(H), 1.0f, bad), Error);
  Tensor three = Tensor::zeros({B, N, H * D});
  EXPECT_THROW(ops.attention(qkv, 3, 1.0f, three), Error);  // 16 features do not split into 3 heads
}

}  // namespace
}  // namespace blr
