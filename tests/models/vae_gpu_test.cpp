// SD-VAE decoder on the CUDA backend: the tiny golden in fp32 (tight) and bf16/f16 (cosine), the real SD
// structure with random weights against the CPU backend, CUDA-graph replay without allocation, and the
// activation memory of a full 256x256 decode.
#include <cmath>
#include <string>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_attention.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/error.h"
#include "engine/models/vae/vae_decoder.h"
#include "engine/runtime/graph_runner.h"
#include "tests/common/test_util.h"
#include "tests/models/vae_test_util.h"

namespace blr {
namespace {

Tensor decode_gpu(CudaOps& ops, Arena& arena, const VaeDecoder& vae_const, const Tensor& latent_host,
                  DType io_dtype) {
  VaeDecoder& vae = const_cast<VaeDecoder&>(vae_const);
  const Tensor latent = test::upload(latent_host, io_dtype, arena);
  Tensor image = Tensor::empty(vae.image_shape(latent.shape()), io_dtype, arena, MemCategory::Other, "image");
  vae.decode(ops, latent, image);
  ops.synchronize();
  return image.to_host().to_dtype(DType::F32);
}

TEST(VaeDecoderGpu, Fp32MatchesGolden) {
  BLR_REQUIRE_CUDA();
  const test::VaeGolden g = test::load_vae_golden();
  Arena arena(Device::CUDA, "vae fp32");
  CudaOps ops(arena);
  auto vae = VaeDecoder::load(g.model, DType::F32, &arena);
  const Tensor image = decode_gpu(ops, arena, *vae, g.latent, DType::F32);
  const test::Closeness cl = test::compare(image, g.image);
  // fp32 everywhere (cuDNN FMA kernels, cuBLAS fp32 attention) against float64: rounding only.
  EXPECT_EQ(cl.nonfinite, 0) << cl.str();
  EXPECT_LE(cl.max_abs, 1e-4 * cl.max_ref) << cl.str();
  EXPECT_LE(cl.rel_fro, 1e-4) << cl.str();
}

TEST(VaeDecoderGpu, HalfPrecisionMatchesGoldenByCosine) {
  BLR_REQUIRE_CUDA();
  const test::VaeGolden g = test::load_vae_golden();
  for (DType dt : {DType::BF16, DType::F16}) {
    for (DType io : {dt, DType::F32}) {  // f32 latent/image exercise the dtype conversions inside decode
      SCOPED_TRACE(cat("weights ", dtype_name(dt), ", latent/image ", dtype_name(io)));
      Arena arena(Device::CUDA, "vae half");
      CudaOps ops(arena);
      auto vae = VaeDecoder::load(g.model, dt, &arena);
      EXPECT_EQ(vae->weight_bytes(), static_cast<size_t>(vae->parameter_count()) * 2);
      const Tensor image = decode_gpu(ops, arena, *vae, g.latent, io);
      const test::Closeness cl = test::compare(image, g.image);
      // Activations are rounded to 16 bits after every op (~40 ops deep): the brief's bar is cosine
      // ≥ 0.999; elementwise, bf16's 2^-9 relative rounding compounding over depth stays within 5 %.
      EXPECT_EQ(cl.nonfinite, 0) << cl.str();
      EXPECT_GE(cl.cosine, 0.999) << cl.str();
      EXPECT_LE(cl.max_abs, 0.05 * cl.max_ref) << cl.str();
      // The mid block's single head of D = 32 takes the fused kernel in 16-bit storage.
      EXPECT_EQ(last_attention_path(ops).rfind("flash<", 0), 0u) << last_attention_path(ops);
    }
  }
}

TEST(VaeDecoderGpu, GraphReplayIsIdenticalAndAllocatesNothing) {
  BLR_REQUIRE_CUDA();
  const test::VaeGolden g = test::load_vae_golden();
  Arena arena(Device::CUDA, "vae graph");
  CudaOps ops(arena);
  auto vae = VaeDecoder::load(g.model, DType::BF16, &arena);
  const Tensor latent = test::upload(g.latent, DType::BF16, arena);
  Tensor image = Tensor::empty(vae->image_shape(latent.shape()), DType::BF16, arena, MemCategory::Other, "image");
  GraphRunner graphs;
  std::vector<float> first;
  size_t allocations_after_first = 0;
  for (int run = 0; run < 4; ++run) {
    graphs.run("vae", ops.stream(), [&] { vae->decode(ops, latent, image); });
    ops.synchronize();
    const std::vector<float> now = image.to_vector();
    if (run == 0) {
      first = now;
      allocations_after_first = arena.report().live_allocations;
      EXPECT_GT(vae->activation_bytes(), 0u);
    } else {
      EXPECT_TRUE(now == first) << "run " << run << " differs from the eager run";
      EXPECT_EQ(arena.report().live_allocations, allocations_after_first) << "run " << run << " allocated";
    }
  }
  EXPECT_EQ(graphs.captures(), 1u);
}

TEST(VaeDecoderGpu, RealSdStructureMatchesCpu) {
  BLR_REQUIRE_CUDA();
  const Checkpoint ckpt = test::random_sd_vae(2);
  const Tensor latent = test::random_tensor({1, 8, 8, 4}, 3, 1.0f);
  auto cpu_vae = VaeDecoder::load(ckpt, DType::F32, nullptr);
  CpuOps cpu;
  Tensor want = Tensor::zeros(cpu_vae->image_shape(latent.shape()));
  cpu_vae->decode(cpu, latent, want);
  for (DType dt : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dt));
    Arena arena(Device::CUDA, "vae sd");
    CudaOps ops(arena);
    auto vae = VaeDecoder::load(ckpt, dt, &arena);
    EXPECT_EQ(vae->parameter_count(), cpu_vae->parameter_count());
    const Tensor got = decode_gpu(ops, arena, *vae, latent, dt);
    // One head of D = 512 has no fused kernel: the cuBLAS path runs.
    EXPECT_EQ(last_attention_path(ops), "gemm");
    const test::Closeness cl = test::compare(got, want);
    EXPECT_EQ(cl.nonfinite, 0) << cl.str();
    if (dt == DType::F32) {
      // fp32 on both sides through 30 convolutions of up to 4608 terms: summation order only.
      EXPECT_LE(cl.rel_fro, 1e-4) << cl.str();
      EXPECT_LE(cl.max_abs, 1e-3 * cl.max_ref) << cl.str();
    } else {
      EXPECT_GE(cl.cosine, 0.999) << cl.str();  // bf16 storage, fp32 accumulation
    }
  }
}

TEST(VaeDecoderGpu, FullSizeDecodeStaysWithinItsActivationPlan) {
  BLR_REQUIRE_CUDA();
  const Checkpoint ckpt = test::random_sd_vae(4);
  Arena arena(Device::CUDA, "vae full size");
  CudaOps ops(arena);
  auto vae = VaeDecoder::load(ckpt, DType::BF16, &arena);
  const Tensor latent = test::upload(test::random_tensor({1, 32, 32, 4}, 5, 1.0f), DType::BF16, arena);
  Tensor image = Tensor::empty({1, 256, 256, 3}, DType::BF16, arena, MemCategory::Other, "image");
  vae->decode(ops, latent, image);
  ops.synchronize();
  const test::Closeness cl = test::compare(image, image);
  EXPECT_EQ(cl.nonfinite, 0);
  // Plan for one 256x256 image in bf16 (elements): two running buffers of 256·256·256 (the last
  // upsampler's output), a temporary of the same size (its upsampled input), 256·256·128 (conv
  // outputs of the last block) and 1024·512 (attention output) = 59.3 M elements = 113 MiB.
  const size_t expected = (3 * size_t{256 * 256 * 256} + size_t{256 * 256 * 128} + size_t{1024 * 512}) * 2;
  EXPECT_EQ(vae->planned_activation_bytes({1, 32, 32, 4}, DType::BF16, DType::BF16), expected);
  EXPECT_EQ(vae->activation_bytes(), expected);
  EXPECT_EQ(arena.report().of(MemCategory::Activations), expected);
}

}  // namespace
}  // namespace blr
