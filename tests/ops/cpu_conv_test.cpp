// CPU reference conv2d (im2col + GEMM) against the direct seven-loop sum in double, on a hand case,
// odd sizes, strides, asymmetric kernels, the 1×1 fast path, and an image big enough to span several
// im2col tiles.
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

// y[b, oy, ox, o] = bias[o] + Σ_{ky, kx, c} x[b, oy·s − p + ky, ox·s − p + kx, c] · w[o, ky, kx, c].
std::vector<double> conv_loops(const Tensor& x, const Tensor& w, const Tensor* bias, int s, int p) {
  const int64_t B = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const int64_t O = w.dim(0), KH = w.dim(1), KW = w.dim(2);
  const int64_t HO = (H + 2 * p - KH) / s + 1, WO = (W + 2 * p - KW) / s + 1;
  const std::vector<float> xv = x.to_vector(), wv = w.to_vector();
  std::vector<double> y(B * HO * WO * O);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t oy = 0; oy < HO; ++oy)
      for (int64_t ox = 0; ox < WO; ++ox)
        for (int64_t o = 0; o < O; ++o) {
          double acc = bias ? bias->flat(o) : 0.0;
          for (int64_t ky = 0; ky < KH; ++ky)
            for (int64_t kx = 0; kx < KW; ++kx)
              for (int64_t c = 0; c < C; ++c) {
                const int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += double(xv[((b * H + iy) * W + ix) * C + c]) * wv[((o * KH + ky) * KW + kx) * C + c];
              }
          y[((b * HO + oy) * WO + ox) * O + o] = acc;
        }
  return y;
}

TEST(CpuConv, OnesKernelCountsTheNeighbours) {
  CpuOps ops;
  // A 3×3 image of ones, a 3×3 kernel of ones, pad 1: each output counts its in-image neighbours
  // (4 at corners, 6 on edges, 9 in the centre), plus bias 0.5.
  const Tensor x = Tensor::from_vector({1, 3, 3, 1}, std::vector<float>(9, 1.0f));
  const Tensor w = Tensor::from_vector({1, 3, 3, 1}, std::vector<float>(9, 1.0f));
  const Tensor bias = Tensor::from_vector({1}, {0.5f});
  Tensor y = Tensor::zeros({1, 3, 3, 1});
  ops.conv2d(x, w, &bias, Conv2dParams{1, 1}, y);
  expect_all_near(y, {4.5, 6.5, 4.5, 6.5, 9.5, 6.5, 4.5, 6.5, 4.5}, 0, "ones conv");
}

TEST(CpuConv, MatchesDirectSumOnAwkwardShapes) {
  CpuOps ops;
  struct Case {
    int64_t B, H, W, Ci, Co, kh, kw;
    int stride, pad;
    bool bias;
  };
  for (const Case& k : {Case{1, 5, 5, 3, 2, 3, 3, 1, 1, true},   // the VAE's 3×3 "same" conv
                        Case{2, 7, 6, 5, 4, 3, 3, 2, 1, true},   // odd sizes, stride 2 (downsampling)
                        Case{2, 3, 4, 6, 5, 1, 1, 1, 0, true},   // 1×1 fast path (VAE shortcut)
                        Case{1, 5, 7, 3, 2, 1, 1, 2, 0, false},  // 1×1 with stride: im2col path
                        Case{2, 8, 8, 3, 7, 2, 2, 2, 0, true},   // patch embedding (kernel = stride)
                        Case{1, 6, 5, 2, 3, 4, 2, 1, 2, false},  // asymmetric kernel, pad > kernel/2
                        Case{1, 1, 1, 9, 4, 3, 3, 1, 1, true}}) {  // a 1×1 image with padding
    SCOPED_TRACE("x [" + std::to_string(k.B) + "," + std::to_string(k.H) + "," + std::to_string(k.W) + "," +
                 std::to_string(k.Ci) + "] w [" + std::to_string(k.Co) + "," + std::to_string(k.kh) + "," +
                 std::to_string(k.kw) + "] stride " + std::to_string(k.stride) + " pad " + std::to_string(k.pad));
    const Tensor x = test::random_tensor({k.B, k.H, k.W, k.Ci}, 1);
    const Tensor w = test::random_tensor({k.Co, k.kh, k.kw, k.Ci}, 2);
    const Tensor b = test::random_tensor({k.Co}, 3);
    const int64_t ho = (k.H + 2 * k.pad - k.kh) / k.stride + 1, wo = (k.W + 2 * k.pad - k.kw) / k.stride + 1;
    Tensor y = Tensor::zeros({k.B, ho, wo, k.Co});
    ops.conv2d(x, w, k.bias ? &b : nullptr, Conv2dParams{k.stride, k.pad}, y);
    const auto want = conv_loops(x, w, k.bias ? &b : nullptr, k.stride, k.pad);
    // fp32 sums of ≤ 81 products of N(0,1) values: rounding ~1e-6 of the output's scale.
    expect_all_near(y, want, 1e-5 * std::max(1.0, test::max_abs(want)), "conv2d");
  }
}

TEST(CpuConv, ManyTilesAtWideChannels) {
  CpuOps ops;
  // 48×48 pixels × (3·3·128) taps = 2.6 M im2col values: more than one 2 M-value tile.
  const Tensor x = test::random_tensor({1, 48, 48, 128}, 4);
  const Tensor w = test::random_tensor({8, 3, 3, 128}, 5, 0.05f);
  const Tensor b = test::random_tensor({8}, 6);
  Tensor y = Tensor::zeros({1, 48, 48, 8});
  ops.conv2d(x, w, &b, Conv2dParams{1, 1}, y);
  const auto want = conv_loops(x, w, &b, 1, 1);
  // 1152-term fp32 sums: rounding grows ~sqrt(terms)·ulp; 1e-5 of the output's scale covers it.
  expect_all_near(y, want, 1e-5 * std::max(1.0, test::max_abs(want)), "conv2d over several tiles");
}

TEST(CpuConv, RejectsMismatchedShapes) {
  CpuOps ops;
  const Tensor x = test::random_tensor({1, 5, 5, 3}, 1), w = test::random_tensor({2, 3, 3, 3}, 2);
  Tensor wrong_y = Tensor::zeros({1, 5, 5, 2});  // stride 2 gives 3×3
  EXPECT_THROW(ops.conv2d(x, w, nullptr, Conv2dParams{2, 1}, wrong_y), Error);
  const Tensor w4 = test::random_tensor({2, 3, 3, 4}, 3);
  Tensor y = Tensor::zeros({1, 5, 5, 2});
  EXPECT_THROW(ops.conv2d(x, w4, nullptr, Conv2dParams{1, 1}, y), Error);
  const Tensor bias3 = test::random_tensor({3}, 4);
  EXPECT_THROW(ops.conv2d(x, w, &bias3, Conv2dParams{1, 1}, y), Error);
  const Tensor big = test::random_tensor({2, 7, 7, 3}, 5);
  Tensor tiny = Tensor::zeros({1, 1, 1, 2});
  EXPECT_THROW(ops.conv2d(x, big, nullptr, Conv2dParams{1, 0}, tiny), Error);  // kernel larger than image
}

}  // namespace
}  // namespace blr
