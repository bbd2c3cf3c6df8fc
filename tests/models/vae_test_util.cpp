#include "tests/models/vae_test_util.h"

#include <cmath>
#include <random>

#include "engine/core/error.h"
#include "tests/common/test_util.h"

namespace blr::test {

VaeGolden load_vae_golden() {
  VaeGolden g;
  g.model = Checkpoint::open(data_path("vae_tiny/model.safetensors"));
  const Checkpoint io = Checkpoint::open(data_path("vae_tiny/io.safetensors"));
  g.latent = io.get_as("latent", DType::F32).clone();
  g.image = io.get_as("image", DType::F32).clone();
  return g;
}

std::map<std::string, Tensor> checkpoint_tensors(const Checkpoint& ckpt) {
  std::map<std::string, Tensor> out;
  for (const std::string& name : ckpt.names()) out[name] = ckpt.get_as(name, DType::F32).clone();
  return out;
}

Checkpoint in_memory(std::map<std::string, Tensor> tensors, std::map<std::string, std::string> metadata,
                     const std::string& label) {
  return Checkpoint(std::make_shared<TensorMapReader>(label, std::move(tensors), std::move(metadata)));
}

Checkpoint random_sd_vae(uint64_t seed) {
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
  auto norm = [&](const std::string& n, int64_t c) {
    t[n + ".weight"] = normal({c}, 1.0f, 0.1f);
    t[n + ".bias"] = normal({c}, 0.0f, 0.1f);
  };
  auto resnet = [&](const std::string& n, int64_t ci, int64_t co) {
    norm(n + ".norm1", ci);
    conv(n + ".conv1", co, ci, 3);
    norm(n + ".norm2", co);
    conv(n + ".conv2", co, co, 3);
    if (ci != co) conv(n + ".conv_shortcut", co, ci, 1);
  };
  const int64_t mid = 512;
  const int64_t blocks[4] = {512, 512, 256, 128};
  conv("post_quant_conv", 4, 4, 1);
  conv("decoder.conv_in", mid, 4, 3);
  resnet("decoder.mid_block.resnets.0", mid, mid);
  const std::string a = "decoder.mid_block.attentions.0";
  norm(a + ".group_norm", mid);
  for (const char* n : {"to_q", "to_k", "to_v", "to_out.0"}) {
    t[cat(a, ".", n, ".weight")] = normal({mid, mid}, 0.0f, 1.0f / std::sqrt(static_cast<float>(mid)));
    t[cat(a, ".", n, ".bias")] = normal({mid}, 0.0f, 0.05f);
  }
  resnet("decoder.mid_block.resnets.1", mid, mid);
  int64_t cin = mid;
  for (int b = 0; b < 4; ++b) {
    for (int r = 0; r < 3; ++r) resnet(cat("decoder.up_blocks.", b, ".resnets.", r), r == 0 ? cin : blocks[b], blocks[b]);
    if (b < 3) conv(cat("decoder.up_blocks.", b, ".upsamplers.0.conv"), blocks[b], blocks[b], 3);
    cin = blocks[b];
  }
  norm("decoder.conv_norm_out", cin);
  conv("decoder.conv_out", 3, cin, 3);
  return in_memory(std::move(t), {}, "random SD VAE");
}

int64_t decoder_parameter_count(const Checkpoint& ckpt) {
  int64_t n = 0;
  for (const std::string& name : ckpt.names())
    if (name.rfind("decoder.", 0) == 0 || name.rfind("post_quant_conv.", 0) == 0) n += shape_numel(ckpt.info(name).shape);
  return n;
}

}  // namespace blr::test
