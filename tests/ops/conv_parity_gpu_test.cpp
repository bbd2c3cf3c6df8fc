// CUDA conv2d (cuDNN and the direct fallback) against the CPU reference: 1x1, 3x3 and 5x5 kernels,
// strides 1 and 2, with and without padding and bias, channel counts that are and are not multiples of
// 8, all three dtypes; graph capture; bad arguments.
#include <cmath>
#include <string>
#include <vector>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_conv.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/error.h"
#include "engine/runtime/graph_runner.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

// Random values every dtype stores exactly (see attention_parity_gpu_test.cpp).
Tensor exact_random(const Shape& shape, uint64_t seed, float stddev) {
  Tensor t = test::random_tensor(shape, seed, stddev).to_dtype(DType::BF16).to_dtype(DType::F32);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (std::fabs(p[i]) < 6.2e-5f) p[i] = 0.0f;
  return t;
}

struct Case {
  int64_t B, H, W, Ci, Co;
  int k, stride, pad;
  bool bias;
  int64_t Ho() const { return (H + 2 * pad - k) / stride + 1; }
  int64_t Wo() const { return (W + 2 * pad - k) / stride + 1; }
  std::string name() const {
    return cat("x[", B, ",", H, ",", W, ",", Ci, "] w[", Co, ",", k, ",", k, ",", Ci, "] stride ", stride, " pad ",
               pad, bias ? " +bias" : "");
  }
};

// float64 convolution straight from the definition; only used while CpuOps::conv2d is not implemented.
Tensor naive_conv(const Tensor& x, const Tensor& w, const Tensor* bias, const Case& c) {
  Tensor y = Tensor::zeros({c.B, c.Ho(), c.Wo(), c.Co});
  const float* xp = x.data_as<const float>();
  const float* wp = w.data_as<const float>();
  float* yp = y.data_as<float>();
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t oy = 0; oy < c.Ho(); ++oy)
      for (int64_t ox = 0; ox < c.Wo(); ++ox)
        for (int64_t co = 0; co < c.Co; ++co) {
          double acc = bias ? bias->data_as<const float>()[co] : 0.0;
          for (int ky = 0; ky < c.k; ++ky)
            for (int kx = 0; kx < c.k; ++kx) {
              const int64_t iy = oy * c.stride - c.pad + ky, ix = ox * c.stride - c.pad + kx;
              if (iy < 0 || iy >= c.H || ix < 0 || ix >= c.W) continue;
              for (int64_t ci = 0; ci < c.Ci; ++ci)
                acc += static_cast<double>(xp[((b * c.H + iy) * c.W + ix) * c.Ci + ci]) *
                       wp[((co * c.k + ky) * c.k + kx) * c.Ci + ci];
            }
          yp[((b * c.Ho() + oy) * c.Wo() + ox) * c.Co + co] = static_cast<float>(acc);
        }
  return y;
}

Tensor cpu_conv(const Tensor& x, const Tensor& w, const Tensor* bias, const Case& c, std::string* which) {
  Tensor y = Tensor::zeros({c.B, c.Ho(), c.Wo(), c.Co});
  try {
    CpuOps cpu;
    cpu.conv2d(x, w, bias, Conv2dParams{c.stride, c.pad}, y);
    *which = "CpuOps";
    return y;
  } catch (const NotImplementedError&) {
    *which = "float64 naive reference (CpuOps::conv2d not implemented)";
    return naive_conv(x, w, bias, c);
  }
}

struct Tol {
  double rel_fro, max_rel, cosine;
};
Tol tolerance(DType dt) {
  // f32 runs FMA-only kernels (no TF32): only summation order differs.
  if (dt == DType::F32) return {1e-5, 1e-4, 0.999999};
  // f16: exact inputs, fp32 accumulation, one rounding of the output to f16 (2^-11 relative); cuDNN's
  // Winograd/FFT variants add a little transform error on top.
  if (dt == DType::F16) return {2e-3, 1e-2, 0.99999};
  // bf16: as f16 with 8 mantissa bits (2^-8), applied to the conv output and again after the bias add.
  return {1e-2, 3e-2, 0.9999};
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {1, 8, 8, 4, 4, 1, 1, 0, true},       // VAE post_quant_conv
      {2, 5, 7, 16, 24, 1, 1, 0, true},     // 1x1 shortcut
      {1, 8, 8, 4, 64, 3, 1, 1, true},      // VAE conv_in (4 input channels)
      {2, 9, 7, 32, 32, 3, 1, 1, true},
      {1, 16, 16, 64, 3, 3, 1, 1, true},    // VAE conv_out (3 output channels)
      {1, 10, 10, 13, 11, 3, 1, 1, false},  // odd channel counts
      {2, 11, 9, 16, 32, 3, 2, 1, true},    // stride 2
      {1, 8, 8, 24, 8, 3, 2, 0, false},     // stride 2, no padding
      {1, 17, 13, 8, 16, 5, 1, 2, true},    // 5x5
      {3, 1, 1, 8, 8, 1, 1, 0, true},       // single pixel
      {1, 16, 16, 256, 256, 3, 1, 1, true}, // wide
  };
  return c;
}

void run_cases(ConvPath path) {
  Arena arena(Device::CUDA, "conv test");
  CudaOps ops(arena);
  set_conv_path(ops, path);
  for (const Case& c : cases()) {
    const Tensor x = exact_random({c.B, c.H, c.W, c.Ci}, 10 + c.Ci, 1.0f);
    const Tensor w = exact_random({c.Co, int64_t{c.k}, int64_t{c.k}, c.Ci}, 20 + c.Co,
                                  1.0f / std::sqrt(static_cast<float>(c.Ci * c.k * c.k)));
    const Tensor b = exact_random({c.Co}, 30 + c.Co, 0.5f);
    std::string which;
    const Tensor ref = cpu_conv(x, w, c.bias ? &b : nullptr, c, &which);
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
      SCOPED_TRACE(c.name() + " " + dtype_name(dt) + " vs " + which);
      const Tensor dx = test::upload(x, dt, arena), dw = test::upload(w, dt, arena), db = test::upload(b, dt, arena);
      Tensor y = Tensor::empty({c.B, c.Ho(), c.Wo(), c.Co}, dt, arena, MemCategory::Other, "conv out");
      ops.conv2d(dx, dw, c.bias ? &db : nullptr, Conv2dParams{c.stride, c.pad}, y);
      ops.synchronize();
      const std::string used = last_conv_path(ops);
      if (path == ConvPath::Direct) {
        EXPECT_EQ(used, "direct");
      }
      // Tensor-core cuDNN kernels exist for NHWC with channels in multiples of 8; the VAE relies on them.
      if (path == ConvPath::Auto && dt != DType::F32 && c.Ci % 8 == 0 && c.Co % 8 == 0) {
        EXPECT_EQ(used.rfind("cudnn:", 0), 0u) << "fell back to " << used;
      }
      const test::Closeness cl = test::compare(y, ref);
      const Tol tol = tolerance(dt);
      EXPECT_EQ(cl.nonfinite, 0) << used << ": " << cl.str();
      EXPECT_LE(cl.rel_fro, tol.rel_fro) << used << ": " << cl.str();
      EXPECT_LE(cl.max_abs, tol.max_rel * cl.max_ref) << used << ": " << cl.str();
      EXPECT_GE(cl.cosine, tol.cosine) << used << ": " << cl.str();
    }
  }
}

TEST(ConvParityGpu, AutoPathMatchesCpu) {
  BLR_REQUIRE_CUDA();
  run_cases(ConvPath::Auto);
}

TEST(ConvParityGpu, DirectFallbackMatchesCpu) {
  BLR_REQUIRE_CUDA();
  run_cases(ConvPath::Direct);
}

TEST(ConvParityGpu, GraphReplayMatchesEager) {
  BLR_REQUIRE_CUDA();
  for (ConvPath path : {ConvPath::Auto, ConvPath::Direct}) {
    Arena arena(Device::CUDA, "conv graph test");
    CudaOps ops(arena);
    set_conv_path(ops, path);
    const Tensor x = test::upload(exact_random({1, 32, 32, 128}, 1, 1.0f), DType::BF16, arena);
    const Tensor w = test::upload(exact_random({128, 3, 3, 128}, 2, 0.03f), DType::BF16, arena);
    const Tensor b = test::upload(exact_random({128}, 3, 0.5f), DType::BF16, arena);
    Tensor y = Tensor::empty({1, 32, 32, 128}, DType::BF16, arena, MemCategory::Other, "y");
    GraphRunner graphs;
    std::vector<float> first;
    for (int run = 0; run < 4; ++run) {
      graphs.run("conv", ops.stream(), [&] { ops.conv2d(x, w, &b, Conv2dParams{1, 1}, y); });
      ops.synchronize();
      const std::vector<float> now = y.to_vector();
      if (run == 0) {
        first = now;
      } else {
        EXPECT_TRUE(now == first) << last_conv_path(ops) << ": run " << run << " differs from the eager run";
      }
    }
    EXPECT_EQ(graphs.captures(), 1u);
  }
}

TEST(ConvParityGpu, BadArgumentsAreRejected) {
  BLR_REQUIRE_CUDA();
  Arena arena(Device::CUDA, "conv bad args");
  CudaOps ops(arena);
  const Tensor x = Tensor::empty({1, 8, 8, 16}, DType::BF16, arena, MemCategory::Other, "x");
  const Tensor w = Tensor::empty({32, 3, 3, 16}, DType::BF16, arena, MemCategory::Other, "w");
  Tensor wrong = Tensor::empty({1, 8, 8, 16}, DType::BF16, arena, MemCategory::Other, "y");
  try {
    ops.conv2d(x, w, nullptr, Conv2dParams{1, 1}, wrong);
    ADD_FAILURE() << "wrong output shape accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected [1,8,8,32]"), std::string::npos) << e.what();
  }
  const Tensor w_bad = Tensor::empty({32, 3, 3, 8}, DType::BF16, arena, MemCategory::Other, "w");
  Tensor y = Tensor::empty({1, 8, 8, 32}, DType::BF16, arena, MemCategory::Other, "y");
  EXPECT_THROW(ops.conv2d(x, w_bad, nullptr, Conv2dParams{1, 1}, y), Error);  // Ci mismatch
  const Tensor b_bad = Tensor::empty({16}, DType::BF16, arena, MemCategory::Other, "b");
  EXPECT_THROW(ops.conv2d(x, w, &b_bad, Conv2dParams{1, 1}, y), Error);  // bias size
}

}  // namespace
}  // namespace blr
