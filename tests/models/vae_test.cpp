// SD-VAE decoder on the CPU backend: config inference, the tiny golden (tools/make_vae_golden.py), both
// attention key styles, key prefixes, and clear errors for bad checkpoints and bad tensors.
#include <string>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/core/error.h"
#include "engine/models/vae/vae_decoder.h"
#include "engine/models/vae/vae_random.h"
#include "tests/common/test_util.h"
#include "tests/models/vae_test_util.h"

namespace blr {
namespace {

Tensor decode_cpu(const Checkpoint& ckpt, const Tensor& latent) {
  auto vae = VaeDecoder::load(ckpt, DType::F32, nullptr);
  CpuOps cpu;
  Tensor image = Tensor::zeros(vae->image_shape(latent.shape()));
  vae->decode(cpu, latent, image);
  return image;
}

// Expects `f` to throw InputError whose message contains every one of `parts`.
template <typename F>
void expect_input_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const InputError& e) {
    for (const std::string& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(VaeDecoder, ConfigIsInferredFromTheGoldenShapes) {
  const test::VaeGolden g = test::load_vae_golden();
  const VaeConfig c = infer_vae_config(g.model);
  // tools/make_vae_golden.py: latent 4, mid 32, blocks 32,32,16,16 of 2 resnets, groups 8 in metadata.
  EXPECT_EQ(c.latent_channels, 4);
  EXPECT_EQ(c.mid_channels, 32);
  EXPECT_EQ(c.block_channels, (std::vector<int>{32, 32, 16, 16}));
  EXPECT_EQ(c.block_upsample, (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(c.resnets_per_block, 2);
  EXPECT_EQ(c.groups, 8);
  EXPECT_EQ(c.out_channels, 3);
  EXPECT_TRUE(c.mid_attention);
  EXPECT_FALSE(c.legacy_attention_keys);
  EXPECT_TRUE(c.post_quant_conv);
  EXPECT_EQ(c.upscale(), 8);
  EXPECT_FLOAT_EQ(c.scaling_factor, 0.18215f);
  auto vae = VaeDecoder::load(g.model, DType::F32, nullptr);
  // Packing q, k, v into one linear keeps the parameter count; encoder.* and quant_conv.* are ignored.
  EXPECT_EQ(vae->parameter_count(), test::decoder_parameter_count(g.model));
  EXPECT_EQ(vae->weight_bytes(), static_cast<size_t>(vae->parameter_count()) * 4);
  EXPECT_EQ(vae->image_shape({2, 3, 5, 4}), (Shape{2, 24, 40, 3}));
}

TEST(VaeDecoder, RealSdConfigIsInferred) {
  const Checkpoint ckpt = test::random_sd_vae(1);
  const VaeConfig c = infer_vae_config(ckpt);
  EXPECT_EQ(c.block_channels, (std::vector<int>{512, 512, 256, 128}));
  EXPECT_EQ(c.resnets_per_block, 3);
  EXPECT_EQ(c.groups, 32);
  EXPECT_EQ(c.mid_channels, 512);
  EXPECT_EQ(c.upscale(), 8);
  auto vae = VaeDecoder::load(ckpt, DType::F32, nullptr);
  EXPECT_EQ(vae->parameter_count(), test::decoder_parameter_count(ckpt));
  // REFERENCE.md §4: about 49.5 M decoder parameters.
  EXPECT_NEAR(static_cast<double>(vae->parameter_count()), 49.5e6, 0.1e6);
  // Activation plan for one 256x256 image (elements): two running buffers of 256·256·256 (the last
  // upsampler's output), a temporary of the same size (its upsampled input), 256·256·128 (conv outputs
  // of the last block) and 1024·512 (the attention output) — 59.3 M elements; 4 bytes each in f32.
  const size_t elements = 3 * size_t{256 * 256 * 256} + size_t{256 * 256 * 128} + size_t{1024 * 512};
  EXPECT_EQ(vae->planned_activation_bytes({1, 32, 32, 4}, DType::F32, DType::F32), elements * 4);
  // An f16 latent and image need their own conversion buffers (the host model is f32).
  EXPECT_EQ(vae->planned_activation_bytes({1, 32, 32, 4}, DType::F16, DType::F16),
            (elements + 32 * 32 * 4 + 256 * 256 * 3) * 4);
}

// random_vae_checkpoint writes what infer_vae_config reads back, for structures unlike SD's too.
TEST(VaeDecoder, RandomCheckpointRoundTripsItsConfig) {
  VaeConfig want = sd_vae_config();
  want.latent_channels = 8;
  want.mid_channels = 48;
  want.block_channels = {48, 24, 24};
  want.block_upsample = {true, false, true};
  want.resnets_per_block = 1;
  want.groups = 12;
  want.mid_attention = false;
  want.post_quant_conv = false;
  want.out_channels = 1;
  const Checkpoint ckpt = random_vae_checkpoint(want, 3);
  const VaeConfig got = infer_vae_config(ckpt);
  EXPECT_EQ(got.latent_channels, 8);
  EXPECT_EQ(got.mid_channels, 48);
  EXPECT_EQ(got.block_channels, want.block_channels);
  EXPECT_EQ(got.block_upsample, want.block_upsample);
  EXPECT_EQ(got.resnets_per_block, 1);
  EXPECT_EQ(got.groups, 12);
  EXPECT_FALSE(got.mid_attention);
  EXPECT_FALSE(got.post_quant_conv);
  EXPECT_EQ(got.out_channels, 1);
  EXPECT_EQ(got.upscale(), 4);
  // Without post_quant_conv the latent scaling is folded into conv_in: the decode still runs end to end.
  auto vae = VaeDecoder::load(ckpt, DType::F32, nullptr);
  CpuOps cpu;
  const Tensor latent = test::random_tensor({1, 2, 3, 8}, 4, 1.0f);
  Tensor image = Tensor::zeros(vae->image_shape(latent.shape()));
  vae->decode(cpu, latent, image);
  EXPECT_EQ(image.shape(), (Shape{1, 8, 12, 1}));
  EXPECT_EQ(test::compare(image, image).nonfinite, 0);
}

// The FLOP count behind `blr bench-vae`'s TFLOP/s: REFERENCE.md §4 quotes ≈311 GMAC for a 32x32 latent.
TEST(VaeDecoder, DecodeFlopsMatchTheSdFigure) {
  EXPECT_NEAR(sd_vae_config().decode_flops(1, 32, 32) / 2, 311e9, 0.5e9);
  EXPECT_DOUBLE_EQ(sd_vae_config().decode_flops(3, 32, 32), 3 * sd_vae_config().decode_flops(1, 32, 32));
}

TEST(VaeDecoder, CpuMatchesGolden) {
  const test::VaeGolden g = test::load_vae_golden();
  const Tensor image = decode_cpu(g.model, g.latent);
  const test::Closeness cl = test::compare(image, g.image);
  // fp32 against a float64 reference through ~25 convolutions: rounding differences only (~1e-6).
  EXPECT_EQ(cl.nonfinite, 0) << cl.str();
  EXPECT_LE(cl.max_abs, 1e-4 * cl.max_ref) << cl.str();
  EXPECT_LE(cl.rel_fro, 1e-4) << cl.str();
}

TEST(VaeDecoder, LegacyAttentionKeysAndConvShapedWeightsGiveIdenticalOutput) {
  const test::VaeGolden g = test::load_vae_golden();
  auto tensors = test::checkpoint_tensors(g.model);
  const std::string a = "decoder.mid_block.attentions.0.";
  const std::pair<const char*, const char*> renames[] = {
      {"to_q", "query"}, {"to_k", "key"}, {"to_v", "value"}, {"to_out.0", "proj_attn"}};
  for (const auto& [from, to] : renames) {
    Tensor w = tensors.at(a + from + ".weight");
    tensors[a + to + ".weight"] = w.reshape({w.dim(0), w.dim(1), 1, 1});  // older files store 1x1 convs
    tensors[a + to + ".bias"] = tensors.at(a + from + ".bias");
    tensors.erase(a + from + ".weight");
    tensors.erase(a + from + ".bias");
  }
  const Checkpoint legacy = test::in_memory(tensors, g.model.metadata(), "legacy");
  EXPECT_TRUE(infer_vae_config(legacy).legacy_attention_keys);
  const Tensor want = decode_cpu(g.model, g.latent);
  const Tensor got = decode_cpu(legacy, g.latent);
  EXPECT_TRUE(got.to_vector() == want.to_vector()) << test::compare(got, want).str();
}

TEST(VaeDecoder, KeyPrefixIsAccepted) {
  const test::VaeGolden g = test::load_vae_golden();
  std::map<std::string, Tensor> prefixed;
  for (auto& [name, t] : test::checkpoint_tensors(g.model)) prefixed["vae." + name] = t;
  const Checkpoint ckpt = test::in_memory(prefixed, g.model.metadata(), "prefixed");
  EXPECT_EQ(infer_vae_config(ckpt).key_prefix, "vae.");
  const Tensor want = decode_cpu(g.model, g.latent);
  const Tensor got = decode_cpu(ckpt, g.latent);
  EXPECT_TRUE(got.to_vector() == want.to_vector()) << test::compare(got, want).str();
}

TEST(VaeDecoder, MissingTensorIsNamed) {
  const test::VaeGolden g = test::load_vae_golden();
  for (const std::string name : {"decoder.up_blocks.1.resnets.0.conv2.weight", "decoder.conv_norm_out.bias",
                                 "decoder.mid_block.attentions.0.to_v.bias", "decoder.conv_in.weight"}) {
    SCOPED_TRACE(name);
    auto tensors = test::checkpoint_tensors(g.model);
    tensors.erase(name);
    const Checkpoint ckpt = test::in_memory(tensors, g.model.metadata(), "broken.safetensors");
    expect_input_error([&] { VaeDecoder::load(ckpt, DType::F32, nullptr); }, {"broken.safetensors", name});
  }
}

TEST(VaeDecoder, WrongShapeNamesTensorAndBothShapes) {
  const test::VaeGolden g = test::load_vae_golden();
  {
    auto tensors = test::checkpoint_tensors(g.model);
    tensors["decoder.up_blocks.2.resnets.1.conv1.weight"] = Tensor::zeros({16, 8, 3, 3});
    const Checkpoint ckpt = test::in_memory(tensors, g.model.metadata(), "bad.safetensors");
    expect_input_error([&] { VaeDecoder::load(ckpt, DType::F32, nullptr); },
                       {"decoder.up_blocks.2.resnets.1.conv1.weight", "[16,8,3,3]", "[16,16,3,3]"});
  }
  {
    auto tensors = test::checkpoint_tensors(g.model);
    tensors["decoder.mid_block.attentions.0.to_k.weight"] = Tensor::zeros({32, 16});
    const Checkpoint ckpt = test::in_memory(tensors, g.model.metadata(), "bad.safetensors");
    expect_input_error([&] { VaeDecoder::load(ckpt, DType::F32, nullptr); },
                       {"decoder.mid_block.attentions.0.to_k.weight", "[32,16]", "[32,32]"});
  }
  {
    auto tensors = test::checkpoint_tensors(g.model);
    tensors["decoder.conv_norm_out.weight"] = Tensor::zeros({15});
    const Checkpoint ckpt = test::in_memory(tensors, g.model.metadata(), "bad.safetensors");
    expect_input_error([&] { VaeDecoder::load(ckpt, DType::F32, nullptr); },
                       {"decoder.conv_norm_out.weight", "[15]", "[16]"});
  }
}

TEST(VaeDecoder, StructuralProblemsAreExplained) {
  const test::VaeGolden g = test::load_vae_golden();
  auto tensors = test::checkpoint_tensors(g.model);
  // GroupNorm groups that do not divide the channel counts.
  expect_input_error(
      [&] { infer_vae_config(test::in_memory(tensors, {{"vae.groups", "5"}}, "g.safetensors")); },
      {"g.safetensors", "not divisible by 5"});
  expect_input_error(
      [&] { infer_vae_config(test::in_memory(tensors, {{"vae.groups", "many"}}, "g.safetensors")); },
      {"vae.groups", "many"});
  // A channel change without its 1x1 shortcut.
  auto no_shortcut = tensors;
  no_shortcut.erase("decoder.up_blocks.2.resnets.0.conv_shortcut.weight");
  expect_input_error(
      [&] { VaeDecoder::load(test::in_memory(no_shortcut, g.model.metadata(), "s.safetensors"), DType::F32, nullptr); },
      {"decoder.up_blocks.2.resnets.0.conv_shortcut.weight", "32 to 16"});
  // Not a VAE at all.
  expect_input_error([&] { infer_vae_config(test::in_memory({{"x", Tensor::zeros({2})}}, {}, "other.safetensors")); },
                     {"other.safetensors", "decoder.conv_in.weight"});
}

TEST(VaeDecoder, BadLatentOrImageShapesAreRejected) {
  const test::VaeGolden g = test::load_vae_golden();
  auto vae = VaeDecoder::load(g.model, DType::F32, nullptr);
  CpuOps cpu;
  Tensor image = Tensor::zeros({2, 24, 40, 3});
  const Tensor latent3 = Tensor::zeros({2, 3, 5, 3});
  expect_input_error([&] { vae->decode(cpu, latent3, image); }, {"[2,3,5,3]", "[B, h, w, 4]"});
  Tensor wrong = Tensor::zeros({2, 24, 41, 3});
  expect_input_error([&] { vae->decode(cpu, g.latent, wrong); }, {"[2,24,41,3]", "expected [2,24,40,3]"});
}

}  // namespace
}  // namespace blr
