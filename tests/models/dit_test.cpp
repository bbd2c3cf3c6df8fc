// DiT on the CPU backend against the PyTorch reference (tools/make_dit_golden.py → tests/data/dit_tiny):
// model output for fixed (x, t, y), whole guided DDPM / DDIM trajectories with injected noise, and an
// unguided one; plus configuration inference, the positional embedding, fused vs per-layer adaLN, and
// the errors a broken checkpoint must produce.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/error.h"

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/diffusion/schedule.h"
#include "engine/io/checkpoint.h"
#include "engine/io/safetensors.h"
#include "engine/models/dit/dit_config.h"
#include "engine/models/dit/dit_model.h"
#include "engine/models/dit/dit_random.h"
#include "engine/models/dit/pos_embed.h"
#include "engine/runtime/generator.h"
#include "engine/runtime/vae_loader.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

std::string tiny(const std::string& file) { return test::data_path("dit_tiny/" + file); }

struct CpuDit {
  Arena arena{Device::CPU, "cpu test"};
  CpuOps ops;
  DitModel model;
  explicit CpuDit(const std::string& path, bool fuse = true) {
    DitLoadOptions o;
    o.dtype = DType::F32;
    o.arena = &arena;
    o.fuse_adaln = fuse;
    model = DitModel::load(Checkpoint::open(path), o);
  }
  Tensor forward(const Tensor& x, const Tensor& t, const Tensor& y) {
    const int64_t B = x.dim(0);
    DitWorkspace ws = model.plan(B, arena);
    const DitConfig& c = model.config();
    Tensor out = Tensor::empty({B, c.input_size, c.input_size, c.out_channels()}, DType::F32, arena,
                               MemCategory::Activations, "out");
    model.forward(ops, x, t, y, ws, out);
    return out;
  }
};

TEST(DitConfig, InferredFromTheTinyCheckpoint) {
  const DitConfig c = infer_dit_config(Checkpoint::open(tiny("dit_tiny.safetensors")));
  EXPECT_EQ(c.hidden, 64);
  EXPECT_EQ(c.depth, 2);
  EXPECT_EQ(c.heads, 4);
  EXPECT_EQ(c.patch, 2);
  EXPECT_EQ(c.input_size, 8);
  EXPECT_EQ(c.in_channels, 4);
  EXPECT_EQ(c.mlp_hidden, 256);
  EXPECT_EQ(c.num_classes, 10);
  EXPECT_TRUE(c.learn_sigma);
}

TEST(DitConfig, XL2DefaultsAndShapeInference) {
  DitConfig xl = DitConfig::xl2();
  EXPECT_EQ(xl.tokens(), 256);
  EXPECT_EQ(xl.head_dim(), 72);
  EXPECT_EQ(xl.out_features(), 32);
  // A random XL/2-shaped checkpoint without "dit.heads" still gets 16 heads from its width.
  DitConfig small = xl;
  small.depth = 2;
  const Checkpoint ck = random_dit_checkpoint(small, 1, DType::BF16);
  std::map<std::string, Tensor> tensors;
  for (const auto& n : ck.names()) tensors[n] = ck.get(n);
  const Checkpoint no_meta(std::make_shared<TensorMapReader>("no metadata", tensors));
  const DitConfig c = infer_dit_config(no_meta);
  EXPECT_EQ(c.hidden, 1152);
  EXPECT_EQ(c.heads, 16);
  EXPECT_EQ(c.depth, 2);
  EXPECT_EQ(c.input_size, 32);  // no pos_embed: the 256 px default
}

TEST(DitPosEmbed, RecomputedTableEqualsTheStoredOne) {
  const Checkpoint ck = Checkpoint::open(tiny("dit_tiny.safetensors"));
  const Tensor stored = ck.get_as("pos_embed", DType::F32).reshape({16, 64});
  const Tensor ours = sincos_pos_embed_2d(64, 4);
  const test::Closeness c = test::compare(ours, stored);
  EXPECT_LT(c.max_abs, 1e-6) << c.str();  // both rounded once from float64
  // Token (h=1, w=2): channel 0 is sin(w·ω_0) = sin(2), channel 32 is sin(h·ω_0) = sin(1).
  EXPECT_NEAR(ours.at({6, 0}), std::sin(2.0), 1e-6);
  EXPECT_NEAR(ours.at({6, 32}), std::sin(1.0), 1e-6);
}

TEST(DitGolden, ForwardMatchesPyTorch) {
  CpuDit d(tiny("dit_tiny.safetensors"));
  const Checkpoint g = Checkpoint::open(tiny("forward.safetensors"));
  const Tensor out = d.forward(g.get_as("x", DType::F32), g.get_as("t", DType::F32), g.get_as("y", DType::I32));
  const test::Closeness c = test::compare(out, g.get_as("out", DType::F32));
  // fp32 both sides; only summation order differs (Eigen vs MKL) over two blocks.
  EXPECT_LT(c.rel_fro, 1e-5) << c.str();
  EXPECT_EQ(c.nonfinite, 0);
}

TEST(DitGolden, PerLayerAdaLNEqualsFusedAdaLN) {
  CpuDit fused(tiny("dit_tiny.safetensors"), true), split(tiny("dit_tiny.safetensors"), false);
  EXPECT_TRUE(fused.model.adaln_fused());
  EXPECT_FALSE(split.model.adaln_fused());
  const Checkpoint g = Checkpoint::open(tiny("forward.safetensors"));
  const Tensor x = g.get_as("x", DType::F32), t = g.get_as("t", DType::F32), y = g.get_as("y", DType::I32);
  const test::Closeness c = test::compare(fused.forward(x, t, y), split.forward(x, t, y));
  EXPECT_LT(c.rel_fro, 1e-6) << c.str();  // same math, one GEMM vs several: rounding only
  EXPECT_EQ(fused.model.parameter_count(), split.model.parameter_count());
}

void check_trajectory(const std::string& file, SamplerKind kind) {
  CpuDit d(tiny("dit_tiny.safetensors"));
  const Checkpoint g = Checkpoint::open(tiny(file));
  const Tensor labels = g.get_as("labels", DType::I32);
  GenerateRequest req;
  for (int64_t b = 0; b < labels.numel(); ++b) req.classes.push_back(static_cast<int>(labels.flat(b)));
  req.steps = static_cast<int>(g.get_as("steps", DType::I32).flat(0));
  req.guidance = static_cast<float>(g.get_as("cfg", DType::F32).flat(0));
  req.sampler = kind;
  req.decode = false;
  Generator gen(d.ops, d.model, nullptr, d.arena);
  gen.inject_initial_latent(g.get_as("x_T", DType::F32));
  gen.inject_noise(g.get_as("noise", DType::F32));
  int calls = 0;
  const GenerateResult r = gen.generate(req, [&](const StepInfo& s) {
    EXPECT_EQ(s.step, calls);
    ++calls;
    return true;
  });
  EXPECT_EQ(calls, req.steps);
  EXPECT_EQ(r.steps_done, req.steps);
  const test::Closeness c = test::compare(r.latent, g.get_as("final", DType::F32));
  // fp32 on both sides; each step multiplies model-output differences by up to √(1/ᾱ−1) ≈ 160 in x0,
  // so after 10 steps ~1e-6 op-level differences can reach ~1e-5 relative.
  EXPECT_LT(c.rel_fro, 1e-4) << file << ": " << c.str();
  EXPECT_EQ(c.nonfinite, 0);
}

TEST(DitGolden, GuidedDdpmTrajectoryMatchesPyTorch) { check_trajectory("ddpm.safetensors", SamplerKind::DDPM); }
TEST(DitGolden, GuidedDdimTrajectoryMatchesPyTorch) { check_trajectory("ddim.safetensors", SamplerKind::DDIM); }
TEST(DitGolden, UnguidedDdpmTrajectoryMatchesPyTorch) { check_trajectory("ddpm_plain.safetensors", SamplerKind::DDPM); }

TEST(DitGolden, DecodedImageMatchesPyTorch) {
  // tools/make_dit_golden.py decodes the DDIM golden's final latent with the tiny VAE of tests/data/vae_tiny
  // through tools/reference_vae.py (float64); here the whole pipeline runs: DiT + DDIM + VAE + RGBA8.
  const std::string vae = test::data_path("vae_tiny/model.safetensors");
  if (!test::file_exists(vae) || !test::file_exists(tiny("decode.safetensors")))
    GTEST_SKIP() << "tiny VAE or decode golden missing";
  CpuDit d(tiny("dit_tiny.safetensors"));
  std::unique_ptr<LatentDecoder> dec = load_vae_decoder(Checkpoint::open(vae), DType::F32, d.arena);
  const Checkpoint g = Checkpoint::open(tiny("ddim.safetensors"));
  const Checkpoint gd = Checkpoint::open(tiny("decode.safetensors"));
  Generator gen(d.ops, d.model, dec.get(), d.arena);
  gen.inject_initial_latent(g.get_as("x_T", DType::F32));
  GenerateRequest req;
  req.classes = {3, 7};
  req.steps = 10;
  req.guidance = 4.0f;
  req.sampler = SamplerKind::DDIM;
  const GenerateResult r = gen.generate(req);
  ASSERT_TRUE(r.rgba.defined());
  const Tensor img = gd.get_as("image", DType::F32);
  ASSERT_EQ(r.rgba.shape(), Shape({img.dim(0), img.dim(1), img.dim(2), 4}));
  int64_t off_by_more_than_one = 0;
  for (int64_t i = 0; i < img.numel(); ++i) {
    const double v = std::min(1.0, std::max(0.0, (img.flat(i) + 1.0) / 2.0)) * 255.0;
    const int64_t px = i / 3, c = i % 3;
    const double got = r.rgba.data_as<uint8_t>()[px * 4 + c];
    off_by_more_than_one += std::abs(got - std::round(v)) > 1.0;
  }
  // 8-bit output: fp32 vs float64 differences may flip a rounding by one level, never more.
  EXPECT_EQ(off_by_more_than_one, 0);
  EXPECT_EQ(r.rgba.data_as<uint8_t>()[3], 255);
}

TEST(DitGenerator, PrecomputedConditioningEqualsPerStep) {
  // Every step's adaLN modulations computed up front (one GEMM, gathered per step) must give the same
  // trajectory as computing them in each step, for fused and per-layer adaLN alike.
  for (bool fuse : {true, false}) {
    CpuDit d(tiny("dit_tiny.safetensors"), fuse);
    GenerateRequest req;
    req.classes = {2, 5, 8};
    req.steps = 6;
    req.decode = false;
    GeneratorOptions on, off;
    off.precompute_conditioning = false;
    Generator a(d.ops, d.model, nullptr, d.arena, on), b(d.ops, d.model, nullptr, d.arena, off);
    const GenerateResult ra = a.generate(req), rb = b.generate(req);
    EXPECT_GT(ra.conditioning_ms, 0.0) << "precompute did not run";
    EXPECT_EQ(rb.conditioning_ms, 0.0);
    const test::Closeness c = test::compare(ra.latent, rb.latent);
    EXPECT_LT(c.rel_fro, 1e-6) << "fused " << fuse << ": " << c.str();  // GEMM row count changes sums' blocking only
  }
}

TEST(DitGenerator, CancelStopsAfterTheCallbackSaysSo) {
  CpuDit d(tiny("dit_tiny.safetensors"));
  Generator gen(d.ops, d.model, nullptr, d.arena);
  GenerateRequest req;
  req.classes = {1};
  req.steps = 8;
  req.decode = false;
  const GenerateResult r = gen.generate(req, [](const StepInfo& s) { return s.step < 2; });
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.steps_done, 3);
}

TEST(DitGenerator, RejectsBadRequests) {
  CpuDit d(tiny("dit_tiny.safetensors"));
  Generator gen(d.ops, d.model, nullptr, d.arena);
  GenerateRequest req;
  req.classes = {10};  // 10 classes: 0..9
  EXPECT_THROW(gen.validate(req), InputError);
  req.classes = {1};
  req.steps = 0;
  EXPECT_THROW(gen.validate(req), InputError);
  req.steps = 10;
  req.guidance = -1;
  EXPECT_THROW(gen.validate(req), InputError);
  req.guidance = 4;
  req.classes = {};
  EXPECT_THROW(gen.validate(req), InputError);
}

TEST(DitLoad, WrongShapeNamesTheTensorAndBothShapes) {
  const Checkpoint ck = Checkpoint::open(tiny("dit_tiny.safetensors"));
  std::map<std::string, Tensor> t;
  for (const auto& n : ck.names()) t[n] = ck.get(n);
  t["blocks.1.mlp.fc2.weight"] = Tensor::zeros({64, 200});
  const Checkpoint bad(std::make_shared<TensorMapReader>("bad.safetensors", t, ck.metadata()));
  Arena arena(Device::CPU, "cpu");
  DitLoadOptions o;
  o.dtype = DType::F32;
  o.arena = &arena;
  try {
    DitModel::load(bad, o);
    FAIL() << "a [64,200] fc2 weight must be rejected";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("blocks.1.mlp.fc2"), std::string::npos) << m;
    EXPECT_NE(m.find("[64,200]"), std::string::npos) << m;
    EXPECT_NE(m.find("[64,256]"), std::string::npos) << m;
  }
}

TEST(DitLoad, MissingTensorIsAnInputError) {
  const Checkpoint ck = Checkpoint::open(tiny("dit_tiny.safetensors"));
  std::map<std::string, Tensor> t;
  for (const auto& n : ck.names())
    if (n != "blocks.0.attn.proj.weight") t[n] = ck.get(n);
  const Checkpoint bad(std::make_shared<TensorMapReader>("partial.safetensors", t, ck.metadata()));
  Arena arena(Device::CPU, "cpu");
  DitLoadOptions o;
  o.dtype = DType::F32;
  o.arena = &arena;
  EXPECT_THROW(DitModel::load(bad, o), InputError);
  std::map<std::string, Tensor> none = {{"something.else", Tensor::zeros({2})}};
  EXPECT_THROW(infer_dit_config(Checkpoint(std::make_shared<TensorMapReader>("x", none))), InputError);
}

TEST(DitLoad, ModeRulesMatchThePaperConfiguration) {
  const std::vector<LayerRule> r = dit_mode_rules("blast");
  const auto qkv = match_rules(r, "blocks.3.attn.qkv");
  ASSERT_TRUE(qkv.has_value());
  EXPECT_EQ(qkv->kind, LinearKind::Blast);
  EXPECT_EQ(qkv->blocks, 9);
  EXPECT_EQ(qkv->rank, 384);
  EXPECT_EQ(match_rules(r, "blocks.3.mlp.fc1")->rank, 256);
  EXPECT_EQ(match_rules(r, "blocks.27.adaLN_modulation.1")->rank, 256);
  EXPECT_FALSE(match_rules(r, "blocks.3.attn.proj").has_value());
  EXPECT_FALSE(match_rules(r, "blocks.3.mlp.fc2").has_value());
  EXPECT_FALSE(match_rules(r, "final_layer.adaLN_modulation.1").has_value());
  EXPECT_TRUE(dit_mode_rules("dense").empty());
  EXPECT_THROW(dit_mode_rules("sparse"), InputError);
}

TEST(DitLoad, RandomFactoredCheckpointLoadsAsBlrLayers) {
  DitConfig c;
  c.hidden = 72;
  c.depth = 2;
  c.heads = 4;
  c.mlp_hidden = 288;
  c.input_size = 8;
  c.num_classes = 5;
  const std::vector<LayerRule> rules = {parse_layer_rule("blocks.*.attn.qkv=blast:b=3,r=24"),
                                        parse_layer_rule("blocks.*.mlp.fc1=monarch:b=2,r=16"),
                                        parse_layer_rule("blocks.*.adaLN_modulation.1=lowrank:r=8")};
  const Checkpoint ck = random_dit_checkpoint(c, 7, DType::F32, rules);
  Arena arena(Device::CPU, "cpu");
  DitLoadOptions o;
  o.dtype = DType::F32;
  o.arena = &arena;
  const DitModel m = DitModel::load(ck, o);
  EXPECT_FALSE(m.adaln_fused());  // BLR adaLN runs per layer
  const std::string layers = m.describe_layers();
  EXPECT_NE(layers.find("blast"), std::string::npos) << layers;
  EXPECT_NE(layers.find("monarch"), std::string::npos) << layers;
  EXPECT_NE(layers.find("lowrank"), std::string::npos) << layers;
  // And it runs.
  CpuOps ops;
  DitWorkspace ws = m.plan(2, arena);
  Tensor x = test::random_tensor({2, 8, 8, 4}, 3);
  Tensor t = Tensor::from_vector({2}, {10.f, 900.f});
  Tensor y = Tensor::zeros({2}, DType::I32);
  y.data_as<int32_t>()[1] = 5;
  Tensor out = Tensor::zeros({2, 8, 8, 8});
  m.forward(ops, x, t, y, ws, out);
  EXPECT_EQ(test::compare(out, out).nonfinite, 0);
}

}  // namespace
}  // namespace blr
