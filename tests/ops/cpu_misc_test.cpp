// CPU reference: activations at published points, add with broadcast, softmax, strided copy and fill,
// nearest upsampling, embedding lookup, timestep embedding, patchify/unpatchify and softmax top-k,
// each against values computed by hand or by a second formula in the test.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/core/error.h"
#include "tests/common/test_util.h"
#include "tests/ops/cpu_ref_util.h"

namespace blr {
namespace {

using test::expect_all_near;
using test::random_tensor;

TEST(CpuMisc, ActivationsAtPublishedPoints) {
  CpuOps ops;
  const std::vector<float> xs = {-3, -1, 0, 1, 2, 3};
  const Tensor x = Tensor::from_vector({2, 3}, xs);
  Tensor y = Tensor::zeros({2, 3});
  // GELU(x) = x·Φ(x) with the standard normal CDF from tables: Φ(1) = 0.8413447461, Φ(2) = 0.9772498681,
  // Φ(3) = 0.9986501020, Φ(−x) = 1 − Φ(x).
  const double p1 = 0.8413447460685429, p2 = 0.9772498680518208, p3 = 0.9986501019683699;
  ops.activation(x, Act::GeluErf, y);
  expect_all_near(y, {-3 * (1 - p3), -(1 - p1), 0, p1, 2 * p2, 3 * p3}, 2e-7 * 4, "gelu (erf)");  // fp32 ulps
  // SiLU(x) = x·σ(x); σ(1) = e/(1+e) = 0.7310585786.
  ops.activation(x, Act::Silu, y);
  std::vector<double> silu;
  for (float v : xs) silu.push_back(v * std::exp(double(v)) / (1 + std::exp(double(v))));
  expect_all_near(y, silu, 1e-6, "silu");
  EXPECT_NEAR(y.flat(3), 0.7310585786300049, 1e-7);
  // The tanh approximation: its definition in double, and within 5e-4 of the exact GELU (its known
  // worst error is ~4.7e-4 near |x| = 2), so a wrong constant would show in one check or the other.
  ops.activation(x, Act::GeluTanh, y);
  std::vector<double> gt;
  for (float v : xs) gt.push_back(0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
  expect_all_near(y, gt, 1e-6, "gelu (tanh)");
  expect_all_near(y, {-3 * (1 - p3), -(1 - p1), 0, p1, 2 * p2, 3 * p3}, 5e-4, "gelu (tanh) vs exact gelu");
  EXPECT_NEAR(y.flat(3), 0.8411919906082768, 1e-6);
  ops.activation(x, Act::None, y);
  expect_all_near(y, {-3, -1, 0, 1, 2, 3}, 0, "identity");
}

TEST(CpuMisc, ActivationOnRowStridedView) {
  CpuOps ops;
  const Tensor wide = random_tensor({4, 10}, 1);
  const Tensor x = wide.slice(1, 2, 7);  // rows 10 apart, 5 wide
  Tensor y = Tensor::zeros({4, 5});
  ops.activation(x, Act::Silu, y);
  std::vector<double> want;
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 5; ++c) {
      const double v = wide.at({r, c + 2});
      want.push_back(v / (1 + std::exp(-v)));
    }
  expect_all_near(y, want, 1e-6, "silu of a strided view");
}

TEST(CpuMisc, AddSameShapeAndSuffixBroadcast) {
  CpuOps ops;
  const Tensor a = Tensor::from_vector({2, 2}, {1, 2, 3, 4}), b = Tensor::from_vector({2, 2}, {10, 20, 30, 40});
  Tensor y = Tensor::zeros({2, 2});
  ops.add(a, b, y);
  expect_all_near(y, {11, 22, 33, 44}, 0, "add");
  // [2, 3, 4] + [3, 4] (position embedding over the batch) and + [4] (bias over every row).
  const Tensor a3 = random_tensor({2, 3, 4}, 1), b2 = random_tensor({3, 4}, 2), b1 = random_tensor({4}, 3);
  Tensor y3 = Tensor::zeros({2, 3, 4});
  ops.add(a3, b2, y3);
  std::vector<double> want;
  for (int64_t i = 0; i < 24; ++i) want.push_back(float(a3.flat(i) + b2.flat(i % 12)));
  expect_all_near(y3, want, 0, "add [3,4] to [2,3,4]");
  ops.add(a3, b1, y3);
  want.clear();
  for (int64_t i = 0; i < 24; ++i) want.push_back(float(a3.flat(i) + b1.flat(i % 4)));
  expect_all_near(y3, want, 0, "add [4] to [2,3,4]");
  const Tensor bad = random_tensor({2, 4}, 4);
  EXPECT_THROW(ops.add(a3, bad, y3), Error);
}

TEST(CpuMisc, SoftmaxByHandStableAndRandom) {
  CpuOps ops;
  // softmax([1, 2, 3]) = e^i / (e + e² + e³); shifting every logit by 1000 must not change it (nor overflow).
  const Tensor x = Tensor::from_vector({2, 3}, {1, 2, 3, 1001, 1002, 1003});
  Tensor y = Tensor::zeros({2, 3});
  ops.softmax(x, y);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  const std::vector<double> row = {std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z};
  expect_all_near(y, {row[0], row[1], row[2], row[0], row[1], row[2]}, 1e-7, "softmax");

  for (const Shape& s : {Shape{3, 1}, Shape{2, 5, 33}, Shape{1, 1000}}) {
    SCOPED_TRACE(shape_str(s));
    const Tensor xr = random_tensor(s, 5, 3.0f);
    Tensor yr = Tensor::zeros(s);
    ops.softmax(xr, yr);
    const int64_t C = s.back();
    std::vector<double> want(xr.numel());
    for (int64_t r = 0; r < xr.numel() / C; ++r) {
      double sum = 0;
      for (int64_t c = 0; c < C; ++c) sum += std::exp(xr.flat(r * C + c));
      for (int64_t c = 0; c < C; ++c) want[r * C + c] = std::exp(xr.flat(r * C + c)) / sum;
    }
    expect_all_near(yr, want, 1e-6, "softmax");
  }
}

TEST(CpuMisc, StridedCopyAndFill) {
  CpuOps ops;
  // A transposed source into a contiguous destination.
  const Tensor src = random_tensor({3, 4}, 1);
  const Tensor srcT = src.transpose(0, 1);
  Tensor dst = Tensor::zeros({4, 3});
  ops.copy(srcT, dst);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j) ASSERT_EQ(dst.at({i, j}), src.at({j, i})) << i << "," << j;

  // Concatenation along the channels through views: [2, 3, 2] and [2, 3, 5] into [2, 3, 7].
  const Tensor a = random_tensor({2, 3, 2}, 2), b = random_tensor({2, 3, 5}, 3);
  Tensor cat = Tensor::zeros({2, 3, 7});
  Tensor left = cat.slice(2, 0, 2), right = cat.slice(2, 2, 7);
  ops.copy(a, left);
  ops.copy(b, right);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 7; ++k)
        ASSERT_EQ(cat.at({i, j, k}), k < 2 ? a.at({i, j, k}) : b.at({i, j, k - 2})) << i << "," << j << "," << k;

  // A rank-4 permuted view (NHWC -> NCHW order) element by element.
  const Tensor img = random_tensor({2, 3, 4, 5}, 4);
  const Tensor nchw = img.transpose(1, 3).transpose(2, 3);  // [2, 5, 3, 4]
  Tensor out = Tensor::zeros({2, 5, 3, 4});
  ops.copy(nchw, out);
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 5; ++c)
      for (int64_t h = 0; h < 3; ++h)
        for (int64_t w = 0; w < 4; ++w) ASSERT_EQ(out.at({n, c, h, w}), img.at({n, h, w, c}));

  // Fill a strided slice; the rest stays as it was.
  Tensor f = Tensor::zeros({3, 6});
  Tensor mid = f.slice(1, 1, 4);
  ops.fill(mid, 2.5f);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 6; ++j) ASSERT_EQ(f.at({i, j}), (j >= 1 && j < 4) ? 2.5 : 0.0) << i << "," << j;
  Tensor wrong = Tensor::zeros({3, 5});
  EXPECT_THROW(ops.copy(src, wrong), Error);
}

TEST(CpuMisc, UpsampleNearest2x) {
  CpuOps ops;
  // One channel, 1×2 -> 2×4: each value covers a 2×2 block.
  const Tensor x1 = Tensor::from_vector({1, 1, 2, 1}, {7, 9});
  Tensor y1 = Tensor::zeros({1, 2, 4, 1});
  ops.upsample_nearest2x(x1, y1);
  expect_all_near(y1, {7, 7, 9, 9, 7, 7, 9, 9}, 0, "upsample by hand");

  const Shape s = {2, 3, 5, 3};
  const Tensor x = random_tensor(s, 1);
  Tensor y = Tensor::zeros({2, 6, 10, 3});
  ops.upsample_nearest2x(x, y);
  std::vector<double> want;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 6; ++i)
      for (int64_t j = 0; j < 10; ++j)
        for (int64_t c = 0; c < 3; ++c) want.push_back(x.at({b, i / 2, j / 2, c}));
  expect_all_near(y, want, 0, "upsample");
  Tensor bad = Tensor::zeros({2, 6, 9, 3});
  EXPECT_THROW(ops.upsample_nearest2x(x, bad), Error);
}

TEST(CpuMisc, EmbeddingLookupAndOutOfRangeIds) {
  CpuOps ops;
  const Tensor table = random_tensor({5, 3}, 1);
  Tensor ids = Tensor::zeros({3}, DType::I32);
  const int32_t picks[3] = {4, 0, 4};
  for (int i = 0; i < 3; ++i) ids.data_as<int32_t>()[i] = picks[i];
  Tensor y = Tensor::zeros({3, 3});
  ops.embedding(table, ids, y);
  std::vector<double> want;
  for (int32_t id : picks)
    for (int64_t c = 0; c < 3; ++c) want.push_back(table.at({id, c}));
  expect_all_near(y, want, 0, "embedding");

  for (int32_t bad : {5, -1, 1000}) {
    ids.data_as<int32_t>()[1] = bad;
    try {
      ops.embedding(table, ids, y);
      ADD_FAILURE() << "id " << bad << " was accepted";
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("id " + std::to_string(bad)), std::string::npos) << msg;
      EXPECT_NE(msg.find("5 rows"), std::string::npos) << msg;
    }
  }
}

TEST(CpuMisc, TimestepEmbeddingByHand) {
  CpuOps ops;
  // dim 8, max_period 10⁴: f_i = 10⁴^(−i/4) = 1, 0.1, 0.01, 0.001. Row 0: t = 0 -> cos = 1, sin = 0.
  const Tensor t = Tensor::from_vector({2}, {0, 2});
  Tensor y = Tensor::zeros({2, 8});
  ops.timestep_embedding(t, 10000.0f, y);
  std::vector<double> want = {1, 1, 1, 1, 0, 0, 0, 0};
  for (double f : {1.0, 0.1, 0.01, 0.001}) want.push_back(std::cos(2 * f));
  for (double f : {1.0, 0.1, 0.01, 0.001}) want.push_back(std::sin(2 * f));
  expect_all_near(y, want, 1e-6, "timestep embedding");

  // Odd dim: half = 2 frequencies (1, 0.01), then a zero column.
  Tensor y5 = Tensor::zeros({2, 5});
  ops.timestep_embedding(t, 10000.0f, y5);
  expect_all_near(y5, {1, 1, 0, 0, 0, std::cos(2.0), std::cos(0.02), std::sin(2.0), std::sin(0.02), 0}, 1e-6,
                  "odd timestep embedding");

  // DiT's size (dim 256) at large t against the formula in double. The op follows PyTorch in fp32, where
  // t·f near 999 is rounded to ~6e-5, so cos/sin may differ from the double value by about that much.
  const Tensor tl = Tensor::from_vector({3}, {999, 500.5f, 1});
  Tensor yl = Tensor::zeros({3, 256});
  ops.timestep_embedding(tl, 10000.0f, yl);
  std::vector<double> wl;
  for (int64_t b = 0; b < 3; ++b) {
    for (int i = 0; i < 128; ++i) wl.push_back(std::cos(tl.flat(b) * std::exp(-std::log(10000.0) * i / 128)));
    for (int i = 0; i < 128; ++i) wl.push_back(std::sin(tl.flat(b) * std::exp(-std::log(10000.0) * i / 128)));
  }
  expect_all_near(yl, wl, 2e-4, "timestep embedding at DiT's size");
}

TEST(CpuMisc, PatchifyIndexAndRoundTrip) {
  CpuOps ops;
  // img[0, y, x, c] = (y·6 + x)·2 + c on a 4×6×2 image, patch 2: token h·3 + w, feature (pi·2 + pj)·2 + c.
  Tensor img = Tensor::zeros({1, 4, 6, 2});
  for (int64_t i = 0; i < img.numel(); ++i) img.data_as<float>()[i] = float(i);
  Tensor tokens = Tensor::zeros({1, 6, 8});
  ops.patchify(img, 2, tokens);
  // Token 4 is patch (1, 1): rows 2..3, cols 2..3. Feature 5 = (pi 1, pj 0, c 1) -> pixel (3, 2) channel 1
  // -> (3·6 + 2)·2 + 1 = 41.
  EXPECT_EQ(tokens.at({0, 4, 5}), 41.0);
  EXPECT_EQ(tokens.at({0, 0, 0}), 0.0);
  EXPECT_EQ(tokens.at({0, 5, 7}), 47.0);  // last patch, last feature: pixel (3, 5) channel 1
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t w = 0; w < 3; ++w)
      for (int64_t pi = 0; pi < 2; ++pi)
        for (int64_t pj = 0; pj < 2; ++pj)
          for (int64_t c = 0; c < 2; ++c)
            ASSERT_EQ(tokens.at({0, h * 3 + w, (pi * 2 + pj) * 2 + c}), img.at({0, h * 2 + pi, w * 2 + pj, c}));

  // unpatchify ∘ patchify = identity on an odd shape (C = 3, 2×3 patches of 3×3).
  const Tensor x = random_tensor({2, 6, 9, 3}, 1);
  Tensor tok = Tensor::zeros({2, 6, 27});
  ops.patchify(x, 3, tok);
  Tensor back = Tensor::zeros({2, 6, 9, 3});
  ops.unpatchify(tok, 3, back);
  EXPECT_EQ(test::compare(back, x).max_abs, 0.0);
  Tensor bad_tok = Tensor::zeros({1, 6, 8});
  const Tensor odd = random_tensor({1, 5, 6, 2}, 2);
  EXPECT_THROW(ops.patchify(odd, 2, bad_tok), Error);
}

TEST(CpuMisc, SoftmaxTopkOrderTiesAndProbabilities) {
  CpuOps ops;
  // Row 0 ties at logit 3 (indices 1, 2, 5) come out in index order, then logit 2 (index 4).
  const Tensor logits = Tensor::from_vector({2, 6}, {1, 3, 3, 0, 2, 3, -1, 4, 0.5f, 7, 7.5f, 2});
  Tensor probs = Tensor::zeros({2, 4}), idx = Tensor::zeros({2, 4}, DType::I32);
  ops.softmax_topk(logits, probs, idx);
  const std::vector<int> want_idx = {1, 2, 5, 4, 4, 3, 1, 5};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(idx.data_as<int32_t>()[i], want_idx[i]) << "position " << i;
  std::vector<double> want;
  for (int64_t b = 0; b < 2; ++b) {
    double z = 0;
    for (int64_t v = 0; v < 6; ++v) z += std::exp(logits.at({b, v}));
    for (int j = 0; j < 4; ++j) want.push_back(std::exp(logits.at({b, want_idx[b * 4 + j]})) / z);
  }
  expect_all_near(probs, want, 1e-7, "top-k probabilities");
  Tensor too_many = Tensor::zeros({2, 7}), too_many_i = Tensor::zeros({2, 7}, DType::I32);
  EXPECT_THROW(ops.softmax_topk(logits, too_many, too_many_i), Error);
}

}  // namespace
}  // namespace blr
