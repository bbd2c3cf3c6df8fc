// CUDA vs CPU parity for the normalisation family: add_layer_norm (plain, affine, adaLN modulation, with a
// residual add with and without gate, strided views, in place), modulate, gated_add and group_norm (+ SiLU),
// over shapes that hit every kernel path (warp-per-row tiles R = 1..6, block-per-row, the scalar fallback
// for odd C or misaligned views; GroupNorm vector widths 1/2/4/8 and the wide-row path) in f32, f16, bf16.
#include <cmath>
#include <vector>

#include "tests/ops/gpu_parity_util.h"

namespace blr::test {
namespace {

class NormParity : public GpuParity {};

struct LnCase {
  int64_t B, N, C;
};

// Shapes chosen for the kernel paths (16-byte vectors: 4 f32 / 8 f16,bf16 channels; warp path for
// C/V <= 192 vectors with tiles R = 1..6, block path (R = 4, <= 512 threads) up to 2048 vectors, then the
// scalar fallback):
const std::vector<LnCase> kLnShapes = {
    {1, 1, 1},     {1, 1, 7},     {2, 3, 5},      // scalar fallback, tiny
    {1, 4, 64},    {3, 5, 128},   {2, 7, 256},    // warp path, R = 1/2 (f32: 2/2/...)
    {1, 197, 768}, {2, 197, 768},                 // ViT-B (bf16: R = 3; f32: R = 6); odd row count
    {2, 256, 1152},                               // DiT-XL/2 (bf16: R = 5; f32: block path, 96 threads)
    {1, 3, 776},                                  // f32: first block-path row (194 vectors)
    {1, 9, 1000},  {1, 3, 1153},                  // not a multiple of 8 / odd
    {1, 3, 1536},  {1, 3, 1544},                  // bf16/f16: last warp tile (R = 6), first block-path row
    {2, 3, 2048},  {2, 3, 2056},  {1, 2, 4104},   // block path
    {1, 2, 8192},  {1, 2, 8200},                  // f32: largest block-path row, then the scalar fallback
    {1, 2, 16384}, {1, 2, 16392},                 // bf16/f16: largest block-path row, then the fallback
    {1, 2, 40000}, {1, 1, 70001},                 // scalar fallback
};

// Random inputs of one case, as host f32 (the CPU sees them rounded through the dtype, like the GPU).
struct LnInputs {
  Tensor x, delta, gate, weight, bias, shift, scale;
};
LnInputs ln_inputs(const LnCase& s, uint64_t seed) {
  LnInputs in;
  in.x = random_tensor({s.B, s.N, s.C}, seed, 2.0f);
  float* px = in.x.data_as<float>();
  for (int64_t i = 0; i < in.x.numel(); ++i) px[i] += 0.5f;  // a non-zero mean
  in.delta = random_tensor({s.B, s.N, s.C}, seed + 1, 1.0f);
  in.gate = random_tensor({s.B, s.C}, seed + 2, 0.5f);
  in.weight = random_tensor({s.C}, seed + 3, 0.2f);
  float* pw = in.weight.data_as<float>();
  for (int64_t i = 0; i < s.C; ++i) pw[i] += 1.0f;
  in.bias = random_tensor({s.C}, seed + 4, 0.2f);
  in.shift = random_tensor({s.B, s.C}, seed + 5, 0.3f);
  in.scale = random_tensor({s.B, s.C}, seed + 6, 0.3f);
  return in;
}

enum class LnVariant { Plain, Affine, WeightOnly, Modulate, GatedResidual, ResidualAffine, GatedResidualModulate };
const char* variant_name(LnVariant v) {
  switch (v) {
    case LnVariant::Plain: return "plain";
    case LnVariant::Affine: return "affine";
    case LnVariant::WeightOnly: return "weight only";
    case LnVariant::GatedResidual: return "gated residual";
    case LnVariant::Modulate: return "modulate";
    case LnVariant::ResidualAffine: return "residual+affine";
    case LnVariant::GatedResidualModulate: return "gated residual+modulate";
  }
  return "?";
}

TEST_F(NormParity, AddLayerNormMatchesCpuOnEveryPathAndDtype) {
  const LnVariant variants[] = {LnVariant::Plain,         LnVariant::Affine,         LnVariant::WeightOnly,
                                LnVariant::Modulate,      LnVariant::GatedResidual,  LnVariant::ResidualAffine,
                                LnVariant::GatedResidualModulate};
  uint64_t seed = 100;
  for (const LnCase& s : kLnShapes) {
    for (DType dt : float_dtypes()) {
      for (LnVariant v : variants) {
        const std::string what = cat("add_layer_norm ", variant_name(v), " [", s.B, ",", s.N, ",", s.C, "] ",
                                     dtype_name(dt));
        SCOPED_TRACE(what);
        const LnInputs in = ln_inputs(s, seed += 10);
        const bool gated = v == LnVariant::GatedResidual || v == LnVariant::GatedResidualModulate;
        const bool residual = gated || v == LnVariant::ResidualAffine || v == LnVariant::WeightOnly;
        const bool affine = v == LnVariant::Affine || v == LnVariant::ResidualAffine;
        const bool weight_only = v == LnVariant::WeightOnly;
        const bool modulate = v == LnVariant::Modulate || v == LnVariant::GatedResidualModulate;
        // CPU on the dtype-rounded inputs.
        Tensor cx = rounded(in.x, dt), cd = rounded(in.delta, dt), cg = rounded(in.gate, dt);
        const Tensor cw = rounded(in.weight, dt), cb = rounded(in.bias, dt), csh = rounded(in.shift, dt),
                     csc = rounded(in.scale, dt);
        Tensor cy = Tensor::zeros({s.B, s.N, s.C});
        NormParams cp;
        cp.eps = 1e-6f;
        if (affine) cp.weight = &cw, cp.bias = &cb;
        if (weight_only) cp.weight = &cw;
        if (modulate) cp.shift = &csh, cp.scale = &csc;
        cpu_.add_layer_norm(cx, residual ? &cd : nullptr, gated ? &cg : nullptr, cp, cy);
        // GPU.
        Tensor gx = up(in.x, dt), gd = up(in.delta, dt), gg = up(in.gate, dt);
        const Tensor gw = up(in.weight, dt), gb = up(in.bias, dt), gsh = up(in.shift, dt), gsc = up(in.scale, dt);
        Tensor gy = dev({s.B, s.N, s.C}, dt);
        NormParams gp;
        gp.eps = 1e-6f;
        if (affine) gp.weight = &gw, gp.bias = &gb;
        if (weight_only) gp.weight = &gw;
        if (modulate) gp.shift = &gsh, gp.scale = &gsc;
        gpu_->add_layer_norm(gx, residual ? &gd : nullptr, gated ? &gg : nullptr, gp, gy);
        expect_close(gy, cy, default_tolerance(dt), what + ": y");
        if (residual) {
          // The residual is one add per element, rounded once to the storage type.
          expect_close(gx, cx, default_tolerance(dt), what + ": updated x");
        } else {
          expect_equal(gx, rounded(in.x, dt), what + ": x must be untouched without delta");
        }
      }
    }
  }
}

// The model shapes at the batch sizes the benchmarks run — DiT-XL/2 with 8 guided images ([16, 256, 1152],
// gated residual + modulation by strided chunks of one adaLN row, as in every DiT block) and ViT-B at batch
// 32 ([32, 197, 768], residual + affine) — so grids of thousands of rows, several waves of blocks and the
// per-sample indexing of many samples are covered, not only the 1-2 sample cases above.
TEST_F(NormParity, AddLayerNormAtBenchmarkBatchSizes) {
  struct Case {
    int64_t B, N, C;
    bool dit;
  };
  for (const Case& s : {Case{16, 256, 1152, true}, Case{32, 197, 768, false}}) {
    for (DType dt : float_dtypes()) {
      const std::string what = cat(s.dit ? "DiT" : "ViT", " add_layer_norm [", s.B, ",", s.N, ",", s.C, "] ",
                                   dtype_name(dt));
      SCOPED_TRACE(what);
      const Tensor hx = random_tensor({s.B, s.N, s.C}, 41, 1.5f), hd = random_tensor({s.B, s.N, s.C}, 42),
                   hada = random_tensor({s.B, 6 * s.C}, 43, 0.4f), hw = random_tensor({s.C}, 44, 0.3f),
                   hb = random_tensor({s.C}, 45, 0.3f);
      Tensor cx = rounded(hx, dt), cd = rounded(hd, dt);
      const Tensor cada = rounded(hada, dt), cw = rounded(hw, dt), cb = rounded(hb, dt);
      const Tensor csh = cada.slice(1, 3 * s.C, 4 * s.C), csc = cada.slice(1, 4 * s.C, 5 * s.C),
                   cg = cada.slice(1, 2 * s.C, 3 * s.C);
      Tensor cy = Tensor::zeros({s.B, s.N, s.C});
      NormParams cp;
      if (s.dit) cp.shift = &csh, cp.scale = &csc;
      else cp.weight = &cw, cp.bias = &cb;
      cpu_.add_layer_norm(cx, &cd, s.dit ? &cg : nullptr, cp, cy);
      Tensor gx = up(hx, dt), gd = up(hd, dt);
      const Tensor gada = up(hada, dt), gw = up(hw, dt), gb = up(hb, dt);
      const Tensor gsh = gada.slice(1, 3 * s.C, 4 * s.C), gsc = gada.slice(1, 4 * s.C, 5 * s.C),
                   gg = gada.slice(1, 2 * s.C, 3 * s.C);
      Tensor gy = dev({s.B, s.N, s.C}, dt);
      NormParams gp;
      if (s.dit) gp.shift = &gsh, gp.scale = &gsc;
      else gp.weight = &gw, gp.bias = &gb;
      gpu_->add_layer_norm(gx, &gd, s.dit ? &gg : nullptr, gp, gy);
      expect_close(gy, cy, default_tolerance(dt), what + ": y");
      expect_close(gx, cx, default_tolerance(dt), what + ": updated x");
    }
  }
}

// Views: x is the token slice [:, 1:N+1] of a larger buffer (samples and tokens strided differently, which
// the CUDA op addresses directly; the CPU reference needs evenly spaced rows, so it runs on a contiguous
// copy), y a channel slice of a wider buffer, and shift, scale and gate are chunks of one [B, 6C] adaLN
// output (rows 6C apart), as in DiT. C = 1152 keeps every view 16-byte aligned (vector path); 100 and 13
// do not for some dtypes (scalar path).
TEST_F(NormParity, AddLayerNormOnStridedViews) {
  for (DType dt : float_dtypes()) {
    for (int64_t C : {1152, 100, 13}) {  // vector path, 4-aligned, scalar fallback
      const std::string what = cat("strided add_layer_norm C=", C, " ", dtype_name(dt));
      SCOPED_TRACE(what);
      const int64_t B = 3, N = 17;
      const Tensor hx = random_tensor({B, N + 2, C}, 7, 1.5f), hd = random_tensor({B, N, C}, 8),
                   hada = random_tensor({B, 6 * C}, 9, 0.4f);
      // CPU.
      Tensor cxb = rounded(hx, dt), cd = rounded(hd, dt), cada = rounded(hada, dt);
      Tensor cx = cxb.slice(1, 1, N + 1).clone();
      Tensor cyb = Tensor::zeros({B, N, 2 * C + 8});
      Tensor cy = cyb.slice(2, C + 8, 2 * C + 8);
      const Tensor csh = cada.slice(1, 0, C), csc = cada.slice(1, C, 2 * C), cg = cada.slice(1, 2 * C, 3 * C);
      NormParams cp;
      cp.shift = &csh;
      cp.scale = &csc;
      cpu_.add_layer_norm(cx, &cd, &cg, cp, cy);
      // GPU: the same views of device buffers.
      Tensor gxb = up(hx, dt), gd = up(hd, dt), gada = up(hada, dt);
      Tensor gx = gxb.slice(1, 1, N + 1);
      Tensor gyb = up(Tensor::zeros({B, N, 2 * C + 8}), dt);
      Tensor gy = gyb.slice(2, C + 8, 2 * C + 8);
      const Tensor gsh = gada.slice(1, 0, C), gsc = gada.slice(1, C, 2 * C), gg = gada.slice(1, 2 * C, 3 * C);
      NormParams gp;
      gp.shift = &gsh;
      gp.scale = &gsc;
      gpu_->add_layer_norm(gx, &gd, &gg, gp, gy);
      gpu_->synchronize();
      const Tensor gyb_h = gyb.to_host(), gxb_h = gxb.to_host();
      expect_close(gyb_h.slice(2, C + 8, 2 * C + 8), cy, default_tolerance(dt), what + ": y");
      expect_close(gxb_h.slice(1, 1, N + 1), cx, default_tolerance(dt), what + ": updated x");
      // Bytes outside the views are untouched.
      expect_equal(gyb_h.slice(2, 0, C + 8), rounded(Tensor::zeros({B, N, C + 8}), dt), what + ": y outside view");
      expect_equal(gxb_h.slice(1, 0, 1), rounded(hx, dt).slice(1, 0, 1), what + ": x row 0 outside view");
      expect_equal(gxb_h.slice(1, N + 1, N + 2), rounded(hx, dt).slice(1, N + 1, N + 2), what + ": x last row");
    }
  }
}

// ViT's final norm on the class tokens only: x is the [B, C] view tokens[:, 0, :] (rows N·C apart), with
// LayerNorm's weight and bias.
TEST_F(NormParity, LayerNormOfClassTokenRows) {
  for (DType dt : float_dtypes()) {
    const std::string what = cat("class-token layer_norm ", dtype_name(dt));
    SCOPED_TRACE(what);
    const int64_t B = 4, N = 197, C = 768;
    const Tensor ht = random_tensor({B, N, C}, 21), hw = random_tensor({C}, 22, 0.3f), hb = random_tensor({C}, 23);
    Tensor ct = rounded(ht, dt);
    const Tensor cw = rounded(hw, dt), cb = rounded(hb, dt);
    Tensor cy = Tensor::zeros({B, C});
    NormParams cp;
    cp.eps = 1e-6f;
    cp.weight = &cw;
    cp.bias = &cb;
    cpu_.layer_norm(ct.select(1, 0), cp, cy);
    Tensor gt = up(ht, dt);
    const Tensor gw = up(hw, dt), gb = up(hb, dt);
    Tensor gy = dev({B, C}, dt);
    NormParams gp = cp;
    gp.weight = &gw;
    gp.bias = &gb;
    gpu_->layer_norm(gt.select(1, 0), gp, gy);
    expect_close(gy, cy, default_tolerance(dt), what);
  }
}

TEST_F(NormParity, AddLayerNormInPlace) {
  for (DType dt : float_dtypes()) {
    for (int64_t C : {1152, 77}) {
      const std::string what = cat("in-place add_layer_norm C=", C, " ", dtype_name(dt));
      SCOPED_TRACE(what);
      const Tensor hx = random_tensor({2, 9, C}, 31), hd = random_tensor({2, 9, C}, 32);
      Tensor cx = rounded(hx, dt), cd = rounded(hd, dt), cy = Tensor::zeros({2, 9, C});
      cpu_.add_layer_norm(cx, &cd, nullptr, NormParams{}, cy);
      Tensor gx = up(hx, dt), gd = up(hd, dt);
      Tensor gy = gx;  // y is x
      gpu_->add_layer_norm(gx, &gd, nullptr, NormParams{}, gy);
      expect_close(gx, cy, default_tolerance(dt), what);
    }
  }
}

TEST_F(NormParity, ModulateAndGatedAddMatchCpu) {
  const std::vector<LnCase> shapes = {{1, 1, 1}, {2, 3, 5}, {2, 256, 1152}, {3, 197, 768}, {2, 5, 1001}, {1, 4, 8}};
  uint64_t seed = 500;
  for (const LnCase& s : shapes) {
    for (DType dt : float_dtypes()) {
      const std::string what = cat("[", s.B, ",", s.N, ",", s.C, "] ", dtype_name(dt));
      SCOPED_TRACE(what);
      const Tensor hx = random_tensor({s.B, s.N, s.C}, ++seed), hd = random_tensor({s.B, s.N, s.C}, ++seed),
                   hada = random_tensor({s.B, 3 * s.C}, ++seed, 0.5f);
      const Tensor cx = rounded(hx, dt), cd = rounded(hd, dt), cada = rounded(hada, dt);
      const Tensor gxc = up(hx, dt), gd = up(hd, dt), gada = up(hada, dt);
      // modulate with shift/scale as strided chunks of one adaLN row.
      {
        Tensor cy = Tensor::zeros({s.B, s.N, s.C});
        cpu_.modulate(cx, cada.slice(1, 0, s.C), cada.slice(1, s.C, 2 * s.C), cy);
        Tensor gy = dev({s.B, s.N, s.C}, dt);
        gpu_->modulate(gxc, gada.slice(1, 0, s.C), gada.slice(1, s.C, 2 * s.C), gy);
        expect_close(gy, cy, default_tolerance(dt), "modulate " + what);
      }
      // gated_add with a strided gate, and without a gate.
      for (bool gated : {true, false}) {
        Tensor cxx = cx.clone();
        const Tensor cg = cada.slice(1, 2 * s.C, 3 * s.C);
        cpu_.gated_add(cxx, gated ? &cg : nullptr, cd);
        Tensor gx = up(hx, dt);
        const Tensor gg = gada.slice(1, 2 * s.C, 3 * s.C);
        gpu_->gated_add(gx, gated ? &gg : nullptr, gd);
        expect_close(gx, cxx, default_tolerance(dt), (gated ? "gated_add " : "add (no gate) ") + what);
      }
    }
  }
}

struct GnCase {
  int64_t B, H, W, C;
  int groups;
};

TEST_F(NormParity, GroupNormMatchesCpuOnEveryPathAndDtype) {
  const std::vector<GnCase> cases = {
      {1, 1, 1, 64, 32},      // one pixel
      {1, 4, 4, 32, 32},      // one channel per group
      {2, 8, 8, 64, 32},      // 2 channels per group (vector width 2)
      {2, 16, 16, 128, 32},   // 4 per group (VAE's last stage channel count)
      {1, 32, 32, 512, 32},   // VAE mid block
      {3, 7, 9, 96, 32},      // 3 per group: scalar path
      {1, 3, 5, 6, 3},        // odd everything
      {2, 64, 64, 256, 32},   // many chunks per sample
      {1, 128, 96, 128, 32},  // non-square, many chunks
      {1, 2, 3, 8192, 32},    // f32: 2048 vector columns -> the wide-row path
      {1, 3, 2, 1500, 500},   // 1500 scalar columns -> the wide-row path for every dtype
  };
  uint64_t seed = 900;
  for (const GnCase& s : cases) {
    for (DType dt : float_dtypes()) {
      for (Act act : {Act::None, Act::Silu}) {
        const std::string what = cat("group_norm [", s.B, ",", s.H, ",", s.W, ",", s.C, "] groups ", s.groups, " ",
                                     act_name(act), " ", dtype_name(dt));
        SCOPED_TRACE(what);
        Tensor hx = random_tensor({s.B, s.H, s.W, s.C}, ++seed, 1.5f);
        float* px = hx.data_as<float>();
        for (int64_t i = 0; i < hx.numel(); ++i) px[i] += 3.0f;  // mean well away from 0
        const Tensor hw = random_tensor({s.C}, ++seed, 0.5f), hb = random_tensor({s.C}, ++seed, 0.5f);
        Tensor cy = Tensor::zeros({s.B, s.H, s.W, s.C});
        cpu_.group_norm(rounded(hx, dt), s.groups, rounded(hw, dt), rounded(hb, dt), 1e-6f, act, cy);
        const Tensor gx = up(hx, dt), gw = up(hw, dt), gb = up(hb, dt);
        Tensor gy = dev({s.B, s.H, s.W, s.C}, dt);
        gpu_->group_norm(gx, s.groups, gw, gb, 1e-6f, act, gy);
        expect_close(gy, cy, default_tolerance(dt), what);
      }
    }
  }
}

// The VAE's largest GroupNorm (256×256×128) against a double-precision reference computed here, with a mean
// 100× the standard deviation: the shifted one-pass sums must not lose the variance to cancellation.
TEST_F(NormParity, GroupNormLargeOffsetMatchesDoubleReference) {
  const int64_t B = 1, H = 256, W = 256, C = 128;
  const int G = 32, cpg = C / G;
  Tensor hx = random_tensor({B, H, W, C}, 77, 1.0f);
  float* px = hx.data_as<float>();
  for (int64_t i = 0; i < hx.numel(); ++i) px[i] += 100.0f;
  const Tensor hw = random_tensor({C}, 78, 0.5f), hb = random_tensor({C}, 79, 0.5f);
  std::vector<double> mean(G, 0.0), var(G, 0.0);
  for (int64_t p = 0; p < H * W; ++p)
    for (int64_t c = 0; c < C; ++c) mean[c / cpg] += px[p * C + c];
  for (int g = 0; g < G; ++g) mean[g] /= double(H * W * cpg);
  for (int64_t p = 0; p < H * W; ++p)
    for (int64_t c = 0; c < C; ++c) {
      const double d = px[p * C + c] - mean[c / cpg];
      var[c / cpg] += d * d;
    }
  for (int g = 0; g < G; ++g) var[g] /= double(H * W * cpg);
  Tensor ref = Tensor::zeros({B, H, W, C});
  float* pr = ref.data_as<float>();
  const float* pw = hw.data_as<float>();
  const float* pb = hb.data_as<float>();
  for (int64_t p = 0; p < H * W; ++p)
    for (int64_t c = 0; c < C; ++c) {
      const int g = static_cast<int>(c / cpg);
      pr[p * C + c] = static_cast<float>((px[p * C + c] - mean[g]) / std::sqrt(var[g] + 1e-6) * pw[c] + pb[c]);
    }
  const Tensor gx = up(hx, DType::F32), gw = up(hw, DType::F32), gb = up(hb, DType::F32);
  Tensor gy = dev({B, H, W, C}, DType::F32);
  gpu_->group_norm(gx, G, gw, gb, 1e-6f, Act::None, gy);
  // x itself carries only ~7 significant digits at 100 (ulp 7.6e-6), so the normalised values can be no
  // better than ~1e-5 absolute; allow 3e-5 of the output scale.
  expect_close(gy, ref, Tolerance{3e-5, 0.99999}, "group_norm with mean 100, std 1 vs double reference");
}

TEST_F(NormParity, GroupNormInPlaceAndDeterministic) {
  for (DType dt : float_dtypes()) {
    const std::string what = cat("group_norm in place ", dtype_name(dt));
    SCOPED_TRACE(what);
    const Tensor hx = random_tensor({2, 32, 32, 256}, 61), hw = random_tensor({256}, 62), hb = random_tensor({256}, 63);
    const Tensor gw = up(hw, dt), gb = up(hb, dt);
    Tensor out = dev({2, 32, 32, 256}, dt);
    gpu_->group_norm(up(hx, dt), 32, gw, gb, 1e-6f, Act::Silu, out);
    Tensor inplace = up(hx, dt);
    gpu_->group_norm(inplace, 32, gw, gb, 1e-6f, Act::Silu, inplace);
    gpu_->synchronize();
    // Fixed-order reductions: the same inputs give the same bits, in place or not.
    expect_equal(inplace, out.to_host(), what);
  }
}

TEST_F(NormParity, BadArgumentsAreRejectedWithClearErrors) {
  Tensor x = up(random_tensor({2, 4, 16}, 1), DType::BF16);
  Tensor y = dev({2, 4, 16}, DType::BF16);
  Tensor wrong = dev({2, 4, 15}, DType::BF16);
  Tensor f32 = dev({2, 4, 16}, DType::F32);
  NormParams p;
  EXPECT_THROW(gpu_->add_layer_norm(x, &wrong, nullptr, p, y), Error);  // delta shape
  EXPECT_THROW(gpu_->add_layer_norm(x, nullptr, nullptr, p, f32), Error);  // y dtype
  Tensor gate = dev({2, 16}, DType::BF16);
  EXPECT_THROW(gpu_->add_layer_norm(x, nullptr, &gate, p, y), Error);  // gate without delta
  Tensor bad_shift = dev({3, 16}, DType::BF16), one_row = dev({1, 16}, DType::BF16), ok_shift = dev({2, 16}, DType::BF16);
  p.shift = &bad_shift;
  EXPECT_THROW(gpu_->add_layer_norm(x, nullptr, nullptr, p, y), Error);  // per-sample batch mismatch
  p.shift = &one_row;
  EXPECT_THROW(gpu_->add_layer_norm(x, nullptr, nullptr, p, y), Error);  // no implicit broadcast (as on the CPU)
  Tensor w16 = dev({16}, DType::BF16);
  p.shift = &ok_shift;
  p.weight = &w16;
  EXPECT_THROW(gpu_->add_layer_norm(x, nullptr, nullptr, p, y), Error);  // affine and modulation together
  Tensor host = Tensor::zeros({2, 4, 16});
  EXPECT_THROW(gpu_->gated_add(host, nullptr, x), Error);  // host tensor
  Tensor img = dev({1, 4, 4, 30}, DType::F32), w = dev({30}, DType::F32);
  Tensor img_y = dev({1, 4, 4, 30}, DType::F32);
  EXPECT_THROW(gpu_->group_norm(img, 32, w, w, 1e-6f, Act::None, img_y), Error);  // 30 % 32
  try {
    gpu_->add_layer_norm(x, &wrong, nullptr, NormParams{}, y);
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("delta"), std::string::npos) << m;
    EXPECT_NE(m.find("[2,4,15]"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace blr::test
