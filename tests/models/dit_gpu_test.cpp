// DiT and the sampler on the GPU against the CPU reference: tiny golden configs in fp32 (tight) and bf16
// (cosine), the sampler op bit for bit (same portable math and Philox on both), graph replay vs eager,
// determinism of two runs with one seed, and one step of a full-size random DiT-XL/2.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/error.h"

#include <cstring>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/diffusion/noise.h"
#include "engine/diffusion/schedule.h"
#include "engine/io/checkpoint.h"
#include "engine/models/dit/dit_model.h"
#include "engine/models/dit/dit_random.h"
#include "engine/runtime/generator.h"
#include "engine/runtime/latent_preview.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

std::string tiny(const std::string& file) { return test::data_path("dit_tiny/" + file); }

Tensor run_forward(Ops& ops, Arena& arena, const DitModel& m, const Tensor& x_host, const Tensor& t_host,
                   const Tensor& y_host) {
  const int64_t B = x_host.dim(0);
  const DitConfig& c = m.config();
  const bool cuda = arena.device() == Device::CUDA;
  Tensor x = cuda ? test::upload(x_host, m.dtype(), arena) : x_host;
  Tensor t = cuda ? t_host.to_device(arena, MemCategory::Other, "t") : t_host;
  Tensor y = cuda ? y_host.to_device(arena, MemCategory::Other, "y") : y_host;
  DitWorkspace ws = m.plan(B, arena);
  Tensor out = Tensor::empty({B, c.input_size, c.input_size, c.out_channels()}, m.dtype(), arena,
                             MemCategory::Activations, "out");
  m.forward(ops, x, t, y, ws, out);
  ops.synchronize();
  return out.to_host().to_dtype(DType::F32);
}

DitModel load(const Checkpoint& ck, DType dtype, Arena& arena, bool fuse = true) {
  DitLoadOptions o;
  o.dtype = dtype;
  o.arena = &arena;
  o.fuse_adaln = fuse;
  return DitModel::load(ck, o);
}

TEST(DitGpu, TinyForwardMatchesCpuInFp32AndBf16) {
  BLR_REQUIRE_CUDA();
  const Checkpoint ck = Checkpoint::open(tiny("dit_tiny.safetensors"));
  const Checkpoint g = Checkpoint::open(tiny("forward.safetensors"));
  const Tensor x = g.get_as("x", DType::F32), t = g.get_as("t", DType::F32), y = g.get_as("y", DType::I32);
  Arena host(Device::CPU, "cpu");
  CpuOps cpu;
  const Tensor ref = run_forward(cpu, host, load(ck, DType::F32, host), x, t, y);
  Arena dev(Device::CUDA, "cuda");
  CudaOps cuda(dev);
  for (bool fuse : {true, false}) {
    const test::Closeness f32 = test::compare(run_forward(cuda, dev, load(ck, DType::F32, dev, fuse), x, t, y), ref);
    EXPECT_LT(f32.rel_fro, 1e-4) << "fp32 GPU vs CPU (fused adaLN " << fuse << "): " << f32.str();  // order of sums only
    const test::Closeness bf = test::compare(run_forward(cuda, dev, load(ck, DType::BF16, dev, fuse), x, t, y), ref);
    EXPECT_GE(bf.cosine, 0.999) << "bf16 GPU vs fp32 CPU (fused adaLN " << fuse << "): " << bf.str();
    EXPECT_EQ(bf.nonfinite, 0);
  }
}

TEST(DitGpu, SamplerStepIsBitIdenticalToCpu) {
  BLR_REQUIRE_CUDA();
  const int K = 30, B = 3, S = 5, C = 4;
  const Tensor table = build_step_table(make_schedule(K));
  Arena dev(Device::CUDA, "cuda");
  CudaOps cuda(dev);
  CpuOps cpu;
  for (SamplerKind kind : {SamplerKind::DDPM, SamplerKind::DDIM})
    for (bool guided : {false, true}) {
      Tensor x = test::random_tensor({B, S, S, C}, 5);
      Tensor mo = test::uniform_tensor({guided ? 2 * B : B, S, S, 2 * C}, 6, -1.f, 1.f);
      Tensor step = Tensor::zeros({1}, DType::I32);
      step.data_as<int32_t>()[0] = 4;
      Tensor seeds = Tensor::zeros({B}, DType::I64);
      for (int b = 0; b < B; ++b) seeds.data_as<int64_t>()[b] = 100 + 7 * b;
      Tensor dx = x.to_device(dev, MemCategory::Other, "x"), dmo = mo.to_device(dev, MemCategory::Other, "mo");
      Tensor dtab = table.to_device(dev, MemCategory::Other, "t"), dstep = step.to_device(dev, MemCategory::Other, "s");
      Tensor dseeds = seeds.to_device(dev, MemCategory::Other, "seeds");
      Tensor in_h = Tensor::zeros({guided ? 2 * B : B, S, S, C});
      Tensor din = in_h.to_device(dev, MemCategory::Other, "in");
      SamplerStepArgs a;
      a.kind = kind;
      a.guidance = 3.5f;
      a.model_out = &mo;
      a.x = &x;
      a.tables = &table;
      a.step = &step;
      a.seeds = &seeds;
      a.model_in = &in_h;
      cpu.sampler_step(a);
      SamplerStepArgs d = a;
      d.model_out = &dmo;
      d.x = &dx;
      d.tables = &dtab;
      d.step = &dstep;
      d.seeds = &dseeds;
      d.model_in = &din;
      cuda.sampler_step(d);
      cuda.synchronize();
      const Tensor gx = dx.to_host(), gin = din.to_host(), gstep = dstep.to_host();
      EXPECT_EQ(std::memcmp(gx.data(), x.data(), x.nbytes()), 0)
          << sampler_name(kind) << (guided ? " guided" : "") << ": GPU latent differs from CPU: "
          << test::compare(gx, x).str();
      EXPECT_EQ(std::memcmp(gin.data(), in_h.data(), in_h.nbytes()), 0) << "model_in differs";
      EXPECT_EQ(gstep.data_as<int32_t>()[0], 5) << "device step counter not incremented once";
    }
}

TEST(DitGpu, TimestepLookupReadsTheDeviceCounter) {
  BLR_REQUIRE_CUDA();
  Arena dev(Device::CUDA, "cuda");
  CudaOps cuda(dev);
  const Tensor table = build_step_table(make_schedule(250));
  Tensor step = Tensor::zeros({1}, DType::I32);
  step.data_as<int32_t>()[0] = 249;
  Tensor dtab = table.to_device(dev, MemCategory::Other, "t"), dstep = step.to_device(dev, MemCategory::Other, "s");
  Tensor dt = Tensor::empty({4}, DType::F32, dev, MemCategory::Other, "ts");
  cuda.sampler_timesteps(dtab, dstep, dt);
  cuda.synchronize();
  const Tensor t = dt.to_host();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(t.data_as<float>()[i], 0.0f) << "last step of 250 is timestep 0";
}

GenerateResult generate_tiny(bool graphs, uint64_t seed, DType dtype, size_t* captures = nullptr) {
  Arena dev(Device::CUDA, "cuda");
  CudaOps cuda(dev);
  const DitModel m = load(Checkpoint::open(tiny("dit_tiny.safetensors")), dtype, dev);
  PreviewDecoder dec(dev, dtype);
  GeneratorOptions o;
  o.use_graphs = graphs;
  o.previews = true;
  Generator gen(cuda, m, &dec, dev, o);
  GenerateRequest r;
  r.classes = {3, 7, 1};
  r.seed = seed;
  r.steps = 12;
  int previews = 0;
  GenerateResult res = gen.generate(r, [&](const StepInfo& s) {
    previews += s.preview != nullptr;
    return true;
  });
  EXPECT_EQ(previews, r.steps) << "every step should hand the callback a preview";
  // A second request of the same shape replays the same graph: still one capture.
  res = gen.generate(r);
  if (captures) *captures = gen.graph_captures();
  return res;
}

TEST(DitGpu, GraphReplayEqualsEagerAndSeedsAreDeterministic) {
  BLR_REQUIRE_CUDA();
  size_t captures = 0;
  const GenerateResult g1 = generate_tiny(true, 11, DType::BF16, &captures);
  EXPECT_EQ(captures, 1u) << "one graph must serve every step of both requests";
  const GenerateResult g2 = generate_tiny(true, 11, DType::BF16);
  const GenerateResult eager = generate_tiny(false, 11, DType::BF16);
  const GenerateResult other = generate_tiny(true, 12, DType::BF16);
  ASSERT_TRUE(g1.rgba.defined() && g2.rgba.defined() && eager.rgba.defined());
  EXPECT_EQ(std::memcmp(g1.latent.data(), g2.latent.data(), g1.latent.nbytes()), 0) << "same seed, different latents";
  EXPECT_EQ(std::memcmp(g1.rgba.data(), g2.rgba.data(), g1.rgba.nbytes()), 0) << "same seed, different image bytes";
  EXPECT_EQ(std::memcmp(g1.latent.data(), eager.latent.data(), g1.latent.nbytes()), 0)
      << "graph and eager differ: " << test::compare(g1.latent, eager.latent).str();
  EXPECT_NE(std::memcmp(g1.latent.data(), other.latent.data(), g1.latent.nbytes()), 0) << "seed has no effect";
  EXPECT_EQ(g1.step_ms.size(), 12u);
}

// The decoder is warmed up (eager planning decode + capture) by the first request of a batch size, outside
// decode_ms; later requests of that batch size — even with another step count and sampler, i.e. a new
// sampling plan — replay the same decode graph; and the replayed decode gives the eager decode's bytes.
TEST(DitGpu, DecoderIsWarmedOnceAndReplayedAsAGraph) {
  BLR_REQUIRE_CUDA();
  Arena dev(Device::CUDA, "cuda");
  CudaOps cuda(dev);
  const DitModel m = load(Checkpoint::open(tiny("dit_tiny.safetensors")), DType::BF16, dev);
  PreviewDecoder dec(dev, DType::BF16);
  Generator gen(cuda, m, &dec, dev);
  GenerateRequest r;
  r.classes = {3, 7};
  r.seed = 5;
  r.steps = 4;
  const GenerateResult first = gen.generate(r);
  EXPECT_GT(first.decode_warmup_ms, 0.0) << "the first request of a batch size must warm the decoder up";
  const size_t captures = gen.decode_graph_captures();
  EXPECT_GE(captures, 1u) << "the decode must run as a captured graph";
  r.steps = 6;
  r.sampler = SamplerKind::DDIM;
  const GenerateResult second = gen.generate(r);
  EXPECT_EQ(second.decode_warmup_ms, 0.0) << "a second request of the same batch size warmed the decoder again";
  EXPECT_EQ(gen.decode_graph_captures(), captures) << "a new sampling plan re-captured the decode graph";
  EXPECT_GT(second.decode_ms, 0.0);

  GeneratorOptions eo;
  eo.use_graphs = false;
  Generator eager(cuda, m, &dec, dev, eo);
  const GenerateResult e = eager.generate(r);
  ASSERT_TRUE(second.rgba.defined() && e.rgba.defined());
  ASSERT_EQ(std::memcmp(second.latent.data(), e.latent.data(), e.latent.nbytes()), 0)
      << "graph and eager sampling differ: " << test::compare(second.latent, e.latent).str();
  EXPECT_EQ(std::memcmp(second.rgba.data(), e.rgba.data(), e.rgba.nbytes()), 0)
      << "graph-replayed and eager decodes of the same latent differ";

  r.classes = {1, 2, 3};  // another batch size: new decoder buffers, warmed up again
  const GenerateResult third = gen.generate(r);
  EXPECT_GT(third.decode_warmup_ms, 0.0) << "a new batch size must warm its decoder buffers up";
  ASSERT_TRUE(third.rgba.defined());
  EXPECT_EQ(third.rgba.dim(0), 3);
}

TEST(DitGpu, TinyGuidedDdpmTrajectoryMatchesGolden) {
  BLR_REQUIRE_CUDA();
  Arena dev(Device::CUDA, "cuda");
  CudaOps cuda(dev);
  const DitModel m = load(Checkpoint::open(tiny("dit_tiny.safetensors")), DType::F32, dev);
  const Checkpoint g = Checkpoint::open(tiny("ddpm.safetensors"));
  Generator gen(cuda, m, nullptr, dev);
  gen.inject_initial_latent(g.get_as("x_T", DType::F32));
  gen.inject_noise(g.get_as("noise", DType::F32));
  GenerateRequest r;
  r.classes = {3, 7};
  r.steps = 10;
  r.guidance = 4.0f;
  r.decode = false;
  const GenerateResult res = gen.generate(r);
  const test::Closeness c = test::compare(res.latent, g.get_as("final", DType::F32));
  EXPECT_LT(c.rel_fro, 1e-3) << c.str();  // fp32 GPU; x0 amplification over 10 steps (see dit_test)
}

TEST(DitGpu, FullSizeXL2OneStepMatchesCpu) {
  BLR_REQUIRE_CUDA();
  const DitConfig xl = DitConfig::xl2();
  const Checkpoint ck = random_dit_checkpoint(xl, 2024, DType::F32);
  const Tensor x = test::random_tensor({2, 32, 32, 4}, 9);
  const Tensor t = Tensor::from_vector({2}, {999.f, 999.f});
  Tensor y = Tensor::zeros({2}, DType::I32);
  y.data_as<int32_t>()[0] = 207;
  y.data_as<int32_t>()[1] = 1000;
  Tensor ref;
  {
    Arena host(Device::CPU, "cpu");
    CpuOps cpu;
    ref = run_forward(cpu, host, load(ck, DType::F32, host), x, t, y);
  }
  Arena dev(Device::CUDA, "cuda");
  CudaOps cuda(dev);
  const test::Closeness f32 = test::compare(run_forward(cuda, dev, load(ck, DType::F32, dev), x, t, y), ref);
  EXPECT_LT(f32.rel_fro, 2e-3) << "XL/2 fp32 GPU vs CPU: " << f32.str();  // 28 blocks of reordered fp32 sums
  const test::Closeness bf = test::compare(run_forward(cuda, dev, load(ck, DType::BF16, dev), x, t, y), ref);
  EXPECT_GE(bf.cosine, 0.999) << "XL/2 bf16 GPU vs fp32 CPU: " << bf.str();
}

}  // namespace
}  // namespace blr
