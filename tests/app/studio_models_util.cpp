#include "tests/app/studio_models_util.h"

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/io/checkpoint.h"
#include "engine/io/safetensors.h"
#include "engine/models/dit/dit_config.h"
#include "engine/models/dit/pos_embed.h"
#include "engine/models/vit/vit_random.h"
#include "tests/common/test_util.h"
#include "tests/common/tiny_vit.h"

#ifdef BLR_HAVE_OPENCV
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#endif

namespace blr::test {

namespace {

using Tensors = std::vector<std::pair<std::string, Tensor>>;

struct Builder {
  uint64_t seed;
  Tensors tensors;
  void add(const std::string& name, const Shape& shape, float stddev) {
    tensors.emplace_back(name, random_tensor(shape, seed++, stddev));
  }
  void ones(const std::string& name, int64_t n) { tensors.emplace_back(name, Tensor::from_vector({n}, std::vector<float>(n, 1.0f))); }
  void linear(const std::string& name, int64_t out, int64_t in) {
    add(name + ".weight", {out, in}, 1.0f / std::sqrt(static_cast<float>(in)));
    add(name + ".bias", {out}, 0.02f);
  }
  void conv(const std::string& name, int64_t out, int64_t in, int64_t k) {
    add(name + ".weight", {out, in, k, k}, 1.0f / std::sqrt(static_cast<float>(in * k * k)));
    add(name + ".bias", {out}, 0.02f);
  }
  void norm(const std::string& name, int64_t c) {
    ones(name + ".weight", c);
    add(name + ".bias", {c}, 0.02f);
  }
  void resnet(const std::string& name, int64_t in, int64_t out) {
    norm(name + ".norm1", in);
    conv(name + ".conv1", out, in, 3);
    norm(name + ".norm2", out);
    conv(name + ".conv2", out, out, 3);
    if (in != out) conv(name + ".conv_shortcut", out, in, 1);
  }
};

std::string names_json() { return nlohmann::json(tiny_class_names()).dump(); }

}  // namespace

const std::vector<std::string>& tiny_class_names() {
  static const std::vector<std::string> names = {"circle", "square", "triangle", "stripes", "checker",
                                                 "ring",   "cross",  "dots",     "gradient", "star"};
  return names;
}

void write_tiny_dit(const std::string& path, uint64_t seed) { write_random_dit(path, seed, 64, 2, 4, 8); }

void write_random_dit(const std::string& path, uint64_t seed, int64_t hidden, int64_t depth, int64_t heads,
                      int64_t latent) {
  DitConfig c;
  c.hidden = hidden;
  c.depth = depth;
  c.heads = heads;
  c.patch = 2;
  c.input_size = latent;
  c.in_channels = 4;
  c.mlp_hidden = 4 * hidden;
  c.num_classes = 10;
  c.learn_sigma = true;
  const int64_t H = c.hidden;
  Builder b{seed, {}};
  b.add("x_embedder.proj.weight", {H, c.in_channels, c.patch, c.patch}, 0.3f);
  b.add("x_embedder.proj.bias", {H}, 0.02f);
  b.tensors.emplace_back("pos_embed", sincos_pos_embed_2d(H, c.grid()).reshape({1, c.tokens(), H}));
  b.linear("t_embedder.mlp.0", H, c.freq_dim);
  b.linear("t_embedder.mlp.2", H, H);
  b.add("y_embedder.embedding_table", {c.num_classes + 1, H}, 0.5f);
  for (int64_t l = 0; l < c.depth; ++l) {
    const std::string p = cat("blocks.", l, ".");
    b.linear(p + "attn.qkv", 3 * H, H);
    b.linear(p + "attn.proj", H, H);
    b.linear(p + "mlp.fc1", c.mlp_hidden, H);
    b.linear(p + "mlp.fc2", H, c.mlp_hidden);
    b.linear(p + "adaLN_modulation.1", 6 * H, H);
  }
  b.linear("final_layer.adaLN_modulation.1", 2 * H, H);
  b.linear("final_layer.linear", c.out_features(), H);
  auto meta = c.to_metadata();
  meta["class_names"] = names_json();
  write_safetensors(path, b.tensors, meta);
}

void write_tiny_vae(const std::string& path, uint64_t seed) {
  Builder b{seed, {}};
  const int64_t mid = 32;
  const int64_t blocks[4] = {32, 32, 16, 16};
  b.conv("post_quant_conv", 4, 4, 1);
  b.conv("decoder.conv_in", mid, 4, 3);
  b.resnet("decoder.mid_block.resnets.0", mid, mid);
  b.norm("decoder.mid_block.attentions.0.group_norm", mid);
  for (const char* q : {"to_q", "to_k", "to_v", "to_out.0"}) b.linear(cat("decoder.mid_block.attentions.0.", q), mid, mid);
  b.resnet("decoder.mid_block.resnets.1", mid, mid);
  int64_t cin = mid;
  for (int i = 0; i < 4; ++i) {
    const std::string p = cat("decoder.up_blocks.", i, ".");
    b.resnet(p + "resnets.0", cin, blocks[i]);
    if (i < 3) b.conv(p + "upsamplers.0.conv", blocks[i], blocks[i], 3);
    cin = blocks[i];
  }
  b.norm("decoder.conv_norm_out", cin);
  b.conv("decoder.conv_out", 3, cin, 3);
  write_safetensors(path, b.tensors, {{"vae.groups", "8"}});
}

void write_tiny_vit(const std::string& path, uint64_t seed) {
  const Checkpoint ck = random_vit_checkpoint(tiny_vit_config(), LinearSpec{}, seed);
  Tensors tensors;
  for (const auto& name : ck.names()) tensors.emplace_back(name, ck.get(name));
  auto meta = ck.metadata();
  meta["class_names"] = names_json();
  write_safetensors(path, tensors, meta);
}

bool write_test_video(const std::string& path, int frames) {
#ifdef BLR_HAVE_OPENCV
  cv::VideoWriter writer(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10.0, cv::Size(96, 72));
  if (!writer.isOpened()) return false;
  for (int i = 0; i < frames; ++i) {
    cv::Mat m(72, 96, CV_8UC3, cv::Scalar(40 + 5 * i % 200, 60, 90));
    cv::circle(m, cv::Point(10 + (i * 7) % 76, 36), 12, cv::Scalar(30, 200, 240), -1);
    cv::rectangle(m, cv::Point(60 - (i * 3) % 40, 8), cv::Point(80 - (i * 3) % 40, 28), cv::Scalar(220, 80, 60), -1);
    writer.write(m);
  }
  writer.release();
  return true;
#else
  (void)path;
  (void)frames;
  return false;
#endif
}

}  // namespace blr::test
