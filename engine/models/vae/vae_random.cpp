#include "engine/models/vae/vae_random.h"

#include <cmath>
#include <map>
#include <random>

#include "engine/core/error.h"

namespace blr {

VaeConfig sd_vae_config() {
  VaeConfig c;
  c.latent_channels = 4;
  c.out_channels = 3;
  c.mid_channels = 512;
  c.block_channels = {512, 512, 256, 128};
  c.block_upsample = {true, true, true, false};
  c.resnets_per_block = 3;
  c.groups = 32;
  return c;
}

Checkpoint random_vae_checkpoint(const VaeConfig& c, uint64_t seed) {
  BLR_CHECK(c.block_channels.size() == c.block_upsample.size() && !c.block_channels.empty(),
            "random_vae_checkpoint: block_channels and block_upsample must have the same, non-zero length");
  std::map<std::string, Tensor> t;
  std::mt19937_64 rng(seed);
  auto normal = [&](const Shape& shape, float mean, float stddev) {
    Tensor x = Tensor::zeros(shape);
    std::normal_distribution<float> dist(mean, stddev);
    float* p = x.data_as<float>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] = dist(rng);
    return x;
  };
  auto conv = [&](const std::string& n, int64_t co, int64_t ci, int64_t k) {
    t[n + ".weight"] = normal({co, ci, k, k}, 0.0f, 1.0f / std::sqrt(static_cast<float>(ci * k * k)));
    t[n + ".bias"] = normal({co}, 0.0f, 0.05f);
  };
  auto norm = [&](const std::string& n, int64_t ch) {
    t[n + ".weight"] = normal({ch}, 1.0f, 0.1f);
    t[n + ".bias"] = normal({ch}, 0.0f, 0.1f);
  };
  auto resnet = [&](const std::string& n, int64_t ci, int64_t co) {
    norm(n + ".norm1", ci);
    conv(n + ".conv1", co, ci, 3);
    norm(n + ".norm2", co);
    conv(n + ".conv2", co, co, 3);
    if (ci != co) conv(n + ".conv_shortcut", co, ci, 1);
  };
  const int64_t mid = c.mid_channels, lat = c.latent_channels;
  if (c.post_quant_conv) conv("post_quant_conv", lat, lat, 1);
  conv("decoder.conv_in", mid, lat, 3);
  resnet("decoder.mid_block.resnets.0", mid, mid);
  if (c.mid_attention) {
    const std::string a = "decoder.mid_block.attentions.0";
    norm(a + ".group_norm", mid);
    for (const char* n : {"to_q", "to_k", "to_v", "to_out.0"}) {
      t[cat(a, ".", n, ".weight")] = normal({mid, mid}, 0.0f, 1.0f / std::sqrt(static_cast<float>(mid)));
      t[cat(a, ".", n, ".bias")] = normal({mid}, 0.0f, 0.05f);
    }
  }
  resnet("decoder.mid_block.resnets.1", mid, mid);
  int64_t cin = mid;
  for (size_t b = 0; b < c.block_channels.size(); ++b) {
    const int64_t co = c.block_channels[b];
    for (int r = 0; r < c.resnets_per_block; ++r)
      resnet(cat("decoder.up_blocks.", b, ".resnets.", r), r == 0 ? cin : co, co);
    if (c.block_upsample[b]) conv(cat("decoder.up_blocks.", b, ".upsamplers.0.conv"), co, co, 3);
    cin = co;
  }
  norm("decoder.conv_norm_out", cin);
  conv("decoder.conv_out", c.out_channels, cin, 3);
  std::map<std::string, std::string> meta;
  if (c.groups != 32) meta["vae.groups"] = std::to_string(c.groups);
  if (c.scaling_factor != 0.18215f) meta["vae.scaling_factor"] = std::to_string(c.scaling_factor);
  if (c.attention_heads != 1) meta["vae.attention_heads"] = std::to_string(c.attention_heads);
  return Checkpoint(std::make_shared<TensorMapReader>("random VAE decoder", std::move(t), std::move(meta)));
}

}  // namespace blr
