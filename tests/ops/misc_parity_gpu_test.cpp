// CUDA vs CPU parity for the elementwise / layout ops: activation, add (same shape and suffix broadcast),
// softmax, copy (conversion, strided views, concatenation through views), fill, nearest 2× upsample,
// embedding, timestep embedding, patchify/unpatchify and softmax top-k — f32, f16, bf16, shapes that hit
// the vector and scalar paths, and a few GPU-only properties (documented tie order, bad ids, bad input).
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

#include "engine/runtime/graph_runner.h"
#include "tests/ops/gpu_parity_util.h"

namespace blr::test {
namespace {

class MiscParity : public GpuParity {};

TEST_F(MiscParity, ActivationMatchesCpu) {
  const std::vector<Shape> shapes = {{1}, {7}, {3, 5}, {2, 197, 3072}, {4, 1000}, {2, 3, 4, 9}};
  uint64_t seed = 1;
  for (const Shape& s : shapes)
    for (DType dt : float_dtypes())
      for (Act act : {Act::None, Act::GeluErf, Act::GeluTanh, Act::Silu}) {
        const std::string what = cat("activation ", act_name(act), " ", shape_str(s), " ", dtype_name(dt));
        SCOPED_TRACE(what);
        const Tensor hx = random_tensor(s, ++seed, 3.0f);
        Tensor cy = Tensor::zeros(s);
        cpu_.activation(rounded(hx, dt), act, cy);
        Tensor gy = dev(s, dt);
        gpu_->activation(up(hx, dt), act, gy);
        expect_close(gy, cy, default_tolerance(dt), what);
        Tensor inplace = up(hx, dt);  // y = x
        gpu_->activation(inplace, act, inplace);
        expect_equal(inplace, gy.to_host(), what + " in place");
      }
}

TEST_F(MiscParity, ActivationOnAColumnSliceLeavesTheRestAlone) {
  for (DType dt : float_dtypes()) {
    const std::string what = cat("activation on a column slice ", dtype_name(dt));
    const Tensor hx = random_tensor({5, 3072}, 11, 2.0f);
    Tensor cbase = rounded(hx, dt);
    Tensor cy = Tensor::zeros({5, 1536});
    cpu_.activation(cbase.slice(1, 1536, 3072), Act::GeluTanh, cy);
    Tensor gbase = up(hx, dt);
    Tensor gview = gbase.slice(1, 1536, 3072);
    gpu_->activation(gview, Act::GeluTanh, gview);
    gpu_->synchronize();
    const Tensor out = gbase.to_host();
    expect_close(out.slice(1, 1536, 3072), cy, default_tolerance(dt), what);
    expect_equal(out.slice(1, 0, 1536), cbase.slice(1, 0, 1536), what + ": untouched half");
  }
}

TEST_F(MiscParity, AddMatchesCpuWithAndWithoutBroadcast) {
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases = {
      {{7}, {7}},                     {{2, 197, 768}, {2, 197, 768}},  // same shape
      {{2, 197, 768}, {768}},         {{3, 5, 7}, {7}},                // channel vector
      {{2, 197, 768}, {197, 768}},    {{3, 17, 33}, {17, 33}},         // position embedding
      {{4, 3, 5, 9}, {5, 9}},         {{1, 1}, {1}},
  };
  uint64_t seed = 40;
  for (const Case& c : cases)
    for (DType dt : float_dtypes()) {
      const std::string what = cat("add ", shape_str(c.a), " + ", shape_str(c.b), " ", dtype_name(dt));
      SCOPED_TRACE(what);
      const Tensor ha = random_tensor(c.a, ++seed), hb = random_tensor(c.b, ++seed);
      Tensor cy = Tensor::zeros(c.a);
      cpu_.add(rounded(ha, dt), rounded(hb, dt), cy);
      Tensor gy = dev(c.a, dt);
      const Tensor gb = up(hb, dt);
      gpu_->add(up(ha, dt), gb, gy);
      expect_close(gy, cy, default_tolerance(dt), what);
      Tensor ga = up(ha, dt);  // y = a
      gpu_->add(ga, gb, ga);
      expect_equal(ga, gy.to_host(), what + " in place");
    }
}

TEST_F(MiscParity, SoftmaxMatchesCpu) {
  const std::vector<Shape> shapes = {{1, 1},    {3, 7},    {5, 64},   {2, 1000},  {4, 2048},
                                     {3, 2056}, {17, 33},  {2, 20000}, {2, 40000}, {1, 70001}};
  uint64_t seed = 70;
  for (const Shape& s : shapes)
    for (DType dt : float_dtypes()) {
      const std::string what = cat("softmax ", shape_str(s), " ", dtype_name(dt));
      SCOPED_TRACE(what);
      Tensor hx = random_tensor(s, ++seed, 3.0f);
      float* p = hx.data_as<float>();
      for (int64_t i = 0; i < s[1]; ++i) p[i] += 1000.0f;  // row 0 far from 0: needs the max shift
      Tensor cy = Tensor::zeros(s);
      cpu_.softmax(rounded(hx, dt), cy);
      Tensor gy = dev(s, dt);
      gpu_->softmax(up(hx, dt), gy);
      expect_close(gy, cy, default_tolerance(dt), what);
    }
}

TEST_F(MiscParity, CopyConvertsBetweenFloatTypesExactly) {
  const Tensor h = random_tensor({3, 5, 1031}, 90, 10.0f);
  for (DType from : float_dtypes())
    for (DType to : float_dtypes()) {
      const std::string what = cat("copy ", dtype_name(from), " -> ", dtype_name(to));
      const Tensor src = up(h, from);
      Tensor dst = dev(h.shape(), to);
      gpu_->copy(src, dst);
      // Conversions round to nearest even on both the host and the device.
      expect_equal(dst, h.to_dtype(from).to_dtype(to), what);
    }
}

TEST_F(MiscParity, CopyOfStridedViewsMatchesCpu) {
  // (source view, destination view) built the same way on host and device buffers.
  struct Case {
    std::string name;
    Shape src_shape, dst_shape;
    std::function<Tensor(const Tensor&)> src_view, dst_view;
  };
  const std::vector<Case> cases = {
      {"transpose", {5, 7, 9}, {7, 5, 9}, [](const Tensor& t) { return t.transpose(0, 1); },
       [](const Tensor& t) { return t; }},
      {"rank-4 permute", {2, 3, 4, 5}, {2, 5, 4, 3}, [](const Tensor& t) { return t.transpose(1, 3); },
       [](const Tensor& t) { return t; }},
      {"into a channel slice (concatenation)", {2, 6, 10}, {2, 6, 24}, [](const Tensor& t) { return t; },
       [](const Tensor& t) { return t.slice(2, 8, 18); }},
      {"innermost transpose", {33, 17}, {17, 33}, [](const Tensor& t) { return t.transpose(0, 1); },
       [](const Tensor& t) { return t; }},
      {"slice to slice", {4, 9, 16}, {4, 9, 16}, [](const Tensor& t) { return t.slice(1, 2, 7).slice(2, 3, 11); },
       [](const Tensor& t) { return t.slice(1, 1, 6).slice(2, 8, 16); }},
      {"rank 5 that merges", {2, 3, 4, 5, 6}, {2, 3, 4, 5, 6}, [](const Tensor& t) { return t; },
       [](const Tensor& t) { return t; }},
  };
  uint64_t seed = 120;
  for (const Case& c : cases)
    for (DType from : float_dtypes())
      for (DType to : {DType::F32, DType::BF16}) {
        const std::string what = cat("copy ", c.name, " ", dtype_name(from), " -> ", dtype_name(to));
        SCOPED_TRACE(what);
        const Tensor hs = random_tensor(c.src_shape, ++seed), hd = random_tensor(c.dst_shape, ++seed);
        // Expected: the CPU copy of the f32 views, then the destination buffer converted.
        Tensor cs = rounded(hs, from), cd = rounded(hd, to);
        Tensor cdv = c.dst_view(cd);
        cpu_.copy(c.src_view(cs), cdv);
        Tensor gs = up(hs, from), gd = up(hd, to);
        Tensor gdv = c.dst_view(gd);
        gpu_->copy(c.src_view(gs), gdv);
        expect_equal(gd, cd.to_dtype(to), what);
      }
}

TEST_F(MiscParity, CopyOfIntegerAndByteTensorsIsBitExact) {
  Tensor hi = Tensor::zeros({6, 7}, DType::I32);
  for (int64_t i = 0; i < hi.numel(); ++i) hi.data_as<int32_t>()[i] = static_cast<int32_t>(i * 7919 - 100000);
  Tensor gi = up_raw(hi), go = dev({7, 6}, DType::I32);
  gpu_->copy(gi.transpose(0, 1), go);
  expect_equal(go, hi.transpose(0, 1), "i32 transpose copy");
  Tensor hu = Tensor::zeros({5, 11, 3}, DType::U8);
  for (int64_t i = 0; i < hu.numel(); ++i) hu.data_as<uint8_t>()[i] = static_cast<uint8_t>(i * 37);
  Tensor gu = up_raw(hu), gou = dev({5, 5, 3}, DType::U8);
  gpu_->copy(gu.slice(1, 3, 8), gou);
  expect_equal(gou, hu.slice(1, 3, 8), "u8 slice copy");
}

TEST_F(MiscParity, CopyAndAddRejectWhatTheyCannotExpress) {
  Tensor a = dev({2, 3, 4, 5, 6}, DType::F32), b = dev({2, 3, 4, 5, 6}, DType::F32);
  // Reversing five dimensions leaves five unmergeable strided dimensions.
  const Tensor rev = dev({6, 5, 4, 3, 2}, DType::F32).transpose(0, 4).transpose(1, 3);
  EXPECT_THROW(gpu_->copy(rev, b), Error);
  Tensor c = dev({2, 3, 4, 5, 7}, DType::F32);
  EXPECT_THROW(gpu_->copy(a, c), Error);  // shape mismatch
  Tensor i = dev({2, 3, 4, 5, 6}, DType::I32);
  EXPECT_THROW(gpu_->copy(a, i), Error);  // f32 -> i32 is not a supported conversion
  // add: b must be a's shape or its trailing dims (a leading 1 is not broadcast, as on the CPU).
  Tensor x = dev({2, 7, 8}, DType::BF16), y = dev({2, 7, 8}, DType::BF16), b1 = dev({1, 7, 8}, DType::BF16),
         b2 = dev({7, 9}, DType::BF16);
  EXPECT_THROW(gpu_->add(x, b1, y), Error);
  EXPECT_THROW(gpu_->add(x, b2, y), Error);
}

TEST_F(MiscParity, FillWritesEveryElementOfAViewAndNothingElse) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::I32}) {
    const std::string what = cat("fill ", dtype_name(dt));
    const Tensor base_h = Tensor::zeros({4, 6, 10}, dt);
    Tensor g = up_raw(base_h);
    Tensor view = g.slice(0, 1, 3).slice(2, 3, 9);
    gpu_->fill(view, 2.5f);
    Tensor whole = dev({3, 5}, dt);
    gpu_->fill(whole, -1.0f);
    Tensor expected = Tensor::zeros({4, 6, 10}, dt);
    const double v = dt == DType::I32 ? 2.0 : 2.5;
    for (int64_t i = 1; i < 3; ++i)
      for (int64_t j = 0; j < 6; ++j)
        for (int64_t k = 3; k < 9; ++k) store_from_double(expected.data(), dt, (i * 6 + j) * 10 + k, v);
    expect_equal(g, expected, what + " on a view");
    Tensor minus_one = Tensor::zeros({3, 5}, dt);
    for (int64_t i = 0; i < 15; ++i) store_from_double(minus_one.data(), dt, i, -1.0);
    expect_equal(whole, minus_one, what + " contiguous");
  }
}

TEST_F(MiscParity, UpsampleNearest2xMatchesCpuExactly) {
  const std::vector<Shape> shapes = {{1, 1, 1, 1}, {2, 3, 5, 7}, {1, 32, 32, 512}, {2, 4, 4, 3}, {1, 5, 3, 128}};
  uint64_t seed = 200;
  for (const Shape& s : shapes)
    for (DType dt : float_dtypes()) {
      const std::string what = cat("upsample_nearest2x ", shape_str(s), " ", dtype_name(dt));
      const Tensor hx = random_tensor(s, ++seed);
      const Shape so = {s[0], 2 * s[1], 2 * s[2], s[3]};
      Tensor cy = Tensor::zeros(so);
      cpu_.upsample_nearest2x(rounded(hx, dt), cy);
      Tensor gy = dev(so, dt);
      gpu_->upsample_nearest2x(up(hx, dt), gy);
      expect_equal(gy, cy, what);
    }
}

TEST_F(MiscParity, EmbeddingGathersRowsExactly) {
  for (DType dt : float_dtypes())
    for (int64_t C : {1152, 13}) {
      const std::string what = cat("embedding C=", C, " ", dtype_name(dt));
      const int64_t vocab = 1001;
      const Tensor ht = random_tensor({vocab, C}, 300 + C);
      const std::vector<int32_t> ids = {0, 1000, 207, 360, 207, 5};
      Tensor hid = Tensor::zeros({static_cast<int64_t>(ids.size())}, DType::I32);
      std::copy(ids.begin(), ids.end(), hid.data_as<int32_t>());
      Tensor cy = Tensor::zeros({static_cast<int64_t>(ids.size()), C});
      cpu_.embedding(rounded(ht, dt), hid, cy);
      Tensor gy = dev({static_cast<int64_t>(ids.size()), C}, dt);
      gpu_->embedding(up(ht, dt), up_raw(hid), gy);
      expect_equal(gy, cy, what);
    }
}

TEST_F(MiscParity, EmbeddingOfAnOutOfRangeIdGivesNaNNotAStrayRead) {
  const Tensor table = up(random_tensor({10, 8}, 5), DType::BF16);
  Tensor hid = Tensor::zeros({3}, DType::I32);
  hid.data_as<int32_t>()[0] = 2;
  hid.data_as<int32_t>()[1] = 10;  // one past the end
  hid.data_as<int32_t>()[2] = -1;
  Tensor y = dev({3, 8}, DType::BF16);
  gpu_->embedding(table, up_raw(hid), y);
  gpu_->synchronize();
  const Tensor h = y.to_host();
  for (int64_t c = 0; c < 8; ++c) {
    EXPECT_TRUE(std::isfinite(h.at({0, c}))) << "valid id 2, column " << c;
    EXPECT_TRUE(std::isnan(h.at({1, c}))) << "id 10 of a 10-row table, column " << c;
    EXPECT_TRUE(std::isnan(h.at({2, c}))) << "id -1, column " << c;
  }
}

TEST_F(MiscParity, TimestepEmbeddingMatchesCpu) {
  const Tensor t = Tensor::from_vector({6}, {0.0f, 1.0f, 4.0f, 500.5f, 998.0f, 999.0f});
  for (int64_t dim : {256, 255, 2})
    for (DType dt : float_dtypes()) {
      const std::string what = cat("timestep_embedding dim ", dim, " ", dtype_name(dt));
      SCOPED_TRACE(what);
      Tensor cy = Tensor::zeros({6, dim});
      cpu_.timestep_embedding(t, 10000.0f, cy);
      Tensor gy = dev({6, dim}, dt);
      gpu_->timestep_embedding(up(t, DType::F32), 10000.0f, gy);
      // The arguments reach t·f ≈ 1000 rad: one ulp of difference in a frequency (expf on the device vs the
      // CPU's exp) moves the argument by ~1.2e-4, and the output by as much. Allow 3e-4 absolute in f32
      // (outputs are in [-1, 1]); f16/bf16 are dominated by their own rounding.
      Tolerance tol = default_tolerance(dt);
      if (dt == DType::F32) tol = Tolerance{3e-4, 0.9999999};
      expect_close(gy, cy, tol, what);
    }
}

TEST_F(MiscParity, PatchifyAndUnpatchifyMatchCpuAndRoundTrip) {
  struct Case {
    Shape img;
    int p;
  };
  const std::vector<Case> cases = {{{2, 32, 32, 4}, 2}, {{1, 6, 9, 3}, 3}, {{3, 4, 4, 5}, 1}, {{1, 8, 8, 4}, 8},
                                   {{2, 32, 32, 8}, 2}};
  uint64_t seed = 400;
  for (const Case& c : cases)
    for (DType dt : float_dtypes()) {
      const std::string what = cat("patchify ", shape_str(c.img), " p=", c.p, " ", dtype_name(dt));
      SCOPED_TRACE(what);
      const int64_t B = c.img[0], H = c.img[1], W = c.img[2], C = c.img[3];
      const Shape ts = {B, (H / c.p) * (W / c.p), int64_t{c.p} * c.p * C};
      const Tensor himg = random_tensor(c.img, ++seed);
      Tensor ctok = Tensor::zeros(ts);
      cpu_.patchify(rounded(himg, dt), c.p, ctok);
      const Tensor gimg = up(himg, dt);
      Tensor gtok = dev(ts, dt);
      gpu_->patchify(gimg, c.p, gtok);
      expect_equal(gtok, ctok, what);
      Tensor cimg = Tensor::zeros(c.img);
      cpu_.unpatchify(ctok, c.p, cimg);
      Tensor gback = dev(c.img, dt);
      gpu_->unpatchify(gtok, c.p, gback);
      expect_equal(gback, cimg, what + " unpatchify");
      expect_equal(gback, rounded(himg, dt), what + " round trip");
    }
  // With a dtype conversion folded in (f32 latent -> bf16 tokens).
  const Tensor h = random_tensor({2, 8, 8, 4}, 450);
  Tensor tok = dev({2, 16, 16}, DType::BF16);
  gpu_->patchify(up(h, DType::F32), 2, tok);
  Tensor ref = Tensor::zeros({2, 16, 16});
  cpu_.patchify(h, 2, ref);
  expect_equal(tok, ref.to_dtype(DType::BF16), "patchify f32 -> bf16");
}

// Logits N(0, 1) plus `count` planted, distinct values 8 + 0.25·j (exact in every dtype, larger than any
// normal sample here) at random columns; returns the planted columns in descending order of value.
std::vector<int32_t> plant_top(Tensor& logits, int64_t row, int count, uint64_t seed) {
  const int64_t C = logits.dim(1);
  std::vector<int32_t> cols(C);
  std::iota(cols.begin(), cols.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(cols.begin(), cols.end(), rng);
  cols.resize(count);
  float* p = logits.data_as<float>() + row * C;
  for (int j = 0; j < count; ++j) p[cols[j]] = 8.0f + 0.25f * static_cast<float>(count - 1 - j);
  return cols;  // cols[0] holds the largest planted value
}

TEST_F(MiscParity, SoftmaxTopkMatchesCpuAndThePlantedOrder) {
  uint64_t seed = 600;
  for (int64_t classes : {10, 33, 1000, 21843})
    for (int k : {1, 5, 10, 16, 17, 40})
      for (DType dt : float_dtypes()) {
        if (k > classes) continue;
        const std::string what = cat("softmax_topk classes ", classes, " k ", k, " ", dtype_name(dt));
        SCOPED_TRACE(what);
        const int64_t B = 3;
        Tensor logits = random_tensor({B, classes}, ++seed);
        std::vector<std::vector<int32_t>> planted;
        for (int64_t b = 0; b < B; ++b) planted.push_back(plant_top(logits, b, std::min<int>(k + 3, classes), ++seed));
        const Tensor cl = rounded(logits, dt);
        Tensor cp = Tensor::zeros({B, k}), ci = Tensor::zeros({B, k}, DType::I32);
        cpu_.softmax_topk(cl, cp, ci);
        Tensor gp = dev({B, k}, DType::F32), gi = dev({B, k}, DType::I32);
        gpu_->softmax_topk(up(logits, dt), gp, gi);
        gpu_->synchronize();
        const Tensor hi = gi.to_host();
        expect_equal(hi, ci, what + ": indices vs CPU");
        for (int64_t b = 0; b < B; ++b)
          for (int j = 0; j < k; ++j)
            EXPECT_EQ(hi.at({b, j}), planted[b][j]) << what << ": row " << b << " rank " << j;
        // Both sides compute the probabilities in fp32 from the same (rounded) logits: only the order of
        // the exp-sum differs.
        expect_close(gp, cp, Tolerance{1e-5, 0.999999}, what + ": probabilities");
      }
}

TEST_F(MiscParity, SoftmaxTopkBreaksTiesTowardsTheSmallerIndex) {
  for (int k : {3, 12, 20}) {
    const std::string what = cat("softmax_topk of equal logits, k ", k);
    Tensor logits = Tensor::zeros({2, 50});
    logits.data_as<float>()[50 + 30] = 1.0f;  // row 1: column 30 first, then ties in index order
    Tensor gp = dev({2, k}, DType::F32), gi = dev({2, k}, DType::I32);
    gpu_->softmax_topk(up(logits, DType::BF16), gp, gi);
    gpu_->synchronize();
    const Tensor hi = gi.to_host(), hp = gp.to_host();
    for (int j = 0; j < k; ++j) {
      EXPECT_EQ(hi.at({0, j}), j) << what << ": row 0 rank " << j;
      EXPECT_NEAR(hp.at({0, j}), 1.0 / 50, 1e-7) << what << ": row 0 rank " << j;
      EXPECT_EQ(hi.at({1, j}), j == 0 ? 30 : (j - 1 < 30 ? j - 1 : j)) << what << ": row 1 rank " << j;
    }
  }
  Tensor logits = dev({2, 5}, DType::F32), p = dev({2, 6}, DType::F32), i = dev({2, 6}, DType::I32);
  EXPECT_THROW(gpu_->softmax_topk(logits, p, i), Error);  // k > classes
}

// Every op of this family in one CUDA graph (the way models run): capture must succeed (nothing allocates,
// synchronises or copies to the host inside), and replays must reproduce the eager run bit for bit.
TEST_F(MiscParity, OpsCaptureIntoACudaGraphAndReplayIdentically) {
  const DType dt = DType::BF16;
  const Tensor x0 = up(random_tensor({2, 256, 1152}, 1), dt), delta = up(random_tensor({2, 256, 1152}, 2), dt),
               ada = up(random_tensor({2, 3 * 1152}, 3, 0.3f), dt), img = up(random_tensor({1, 32, 32, 256}, 4), dt),
               gnw = up(random_tensor({256}, 5), dt), gnb = up(random_tensor({256}, 6), dt),
               logits = up(random_tensor({2, 1000}, 7), dt), lat = up(random_tensor({2, 8, 8, 4}, 8), dt),
               t = up(Tensor::from_vector({2}, {3.0f, 999.0f}), DType::F32),
               img3 = up(uniform_tensor({2, 8, 8, 3}, 10, -1.2f, 1.2f), dt);
  Tensor hid = Tensor::zeros({2}, DType::I32);
  hid.data_as<int32_t>()[0] = 7;
  hid.data_as<int32_t>()[1] = 1000;
  const Tensor ids = up_raw(hid), table = up(random_tensor({1001, 1152}, 9), dt);
  const Tensor frame = up_raw([] {
    Tensor f = Tensor::zeros({333, 517, 3}, DType::U8);
    for (int64_t i = 0; i < f.numel(); ++i) f.data_as<uint8_t>()[i] = static_cast<uint8_t>(i * 31 + i / 7);
    return f;
  }());
  Tensor x = dev({2, 256, 1152}, dt), y = dev({2, 256, 1152}, dt), gn = dev({1, 32, 32, 256}, dt),
         up2 = dev({1, 64, 64, 256}, dt), sm = dev({2, 1000}, dt), probs = dev({2, 5}, DType::F32),
         idx = dev({2, 5}, DType::I32), tok = dev({2, 16, 16}, dt), back = dev({2, 8, 8, 4}, dt),
         temb = dev({2, 256}, dt), emb = dev({2, 1152}, dt), pre = dev({224, 224, 3}, dt),
         rgba = dev({2, 8, 8, 4}, DType::U8), act = dev({2, 1000}, dt), sum = dev({2, 1000}, dt);
  const Tensor shift = ada.slice(1, 0, 1152), scale = ada.slice(1, 1152, 2304), gate = ada.slice(1, 2304, 3456);
  auto work = [&] {
    gpu_->copy(x0, x);
    NormParams p;
    p.shift = &shift;
    p.scale = &scale;
    gpu_->add_layer_norm(x, &delta, &gate, p, y);
    gpu_->group_norm(img, 32, gnw, gnb, 1e-6f, Act::Silu, gn);
    gpu_->upsample_nearest2x(gn, up2);
    gpu_->softmax(logits, sm);
    gpu_->softmax_topk(logits, probs, idx);
    gpu_->activation(logits, Act::GeluErf, act);
    gpu_->add(logits, act, sum);
    gpu_->patchify(lat, 2, tok);
    gpu_->unpatchify(tok, 2, back);
    gpu_->timestep_embedding(t, 10000.0f, temb);
    gpu_->embedding(table, ids, emb);
    gpu_->preprocess_image(frame, PreprocessParams{}, pre);
    gpu_->to_rgba8(img3, rgba);
  };
  std::vector<Tensor*> outputs = {&x, &y, &gn, &up2, &sm, &probs, &idx, &tok, &back, &temb, &emb, &pre, &act, &sum, &rgba};
  GraphRunner runner;
  std::vector<Tensor> eager;
  for (int run = 0; run < 3; ++run) {  // eager, capture + replay, replay
    for (Tensor* o : outputs) gpu_->fill(*o, 0.0f);
    runner.run("elementwise-family", gpu_->stream(), work);
    gpu_->synchronize();
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (run == 0) {
        eager.push_back(outputs[i]->to_host());
      } else {
        expect_equal(*outputs[i], eager[i], cat("graph run ", run, ", output ", i));
      }
    }
  }
  EXPECT_TRUE(runner.has_graph("elementwise-family"));
  EXPECT_EQ(runner.captures(), 1u);
}

}  // namespace
}  // namespace blr::test
