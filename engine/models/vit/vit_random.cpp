#include "engine/models/vit/vit_random.h"

#include <cmath>
#include <map>
#include <memory>
#include <string>

#include "engine/core/error.h"

namespace blr {

namespace {

// splitmix64: fast, seedable, and good enough for weights nobody trains.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform with mean `mean` and standard deviation `stddev`.
  float uniform(float mean, float stddev) {
    const float u = static_cast<float>(next() >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    return mean + (2.0f * u - 1.0f) * stddev * 1.7320508f;
  }
};

}  // namespace

Checkpoint random_vit_checkpoint(const VitConfig& c, const LinearSpec& spec, uint64_t seed) {
  c.validate();
  Rng rng{seed * 0x2545f4914f6cdd1dull + 1};
  std::map<std::string, Tensor> t;
  std::map<std::string, std::string> meta = c.to_metadata();
  auto fill = [&](const std::string& name, const Shape& shape, float mean, float stddev) {
    Tensor x = Tensor::zeros(shape, DType::F32);
    float* p = x.data_as<float>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] = rng.uniform(mean, stddev);
    t[name] = x;
  };
  constexpr float kStd = 0.02f;
  const int64_t D = c.width, H = c.mlp_hidden;
  auto linear = [&](const std::string& name, int64_t in, int64_t out, bool factored) {
    fill(name + ".bias", {out}, 0.0f, kStd);
    if (!factored || spec.kind == LinearKind::Dense) {
      fill(name + ".weight", {out, in}, 0.0f, kStd);
      return;
    }
    validate_spec(spec, in, out, name);
    const int64_t b = spec.blocks, r = spec.rank;
    // Factor scales chosen so the assembled matrix has entries of std ≈ kStd, like the dense layer.
    switch (spec.kind) {
      case LinearKind::LowRank: {
        const float s = std::sqrt(kStd / std::sqrt(static_cast<float>(r)));
        fill(name + ".lowrank_A", {r, in}, 0.0f, s);
        fill(name + ".lowrank_B", {out, r}, 0.0f, s);
        break;
      }
      case LinearKind::Monarch: {  // each block is a product over r/b features
        const float s = std::sqrt(kStd / std::sqrt(static_cast<float>(r / b)));
        fill(name + ".monarch_R", {b, r, in / b}, 0.0f, s);
        fill(name + ".monarch_L", {b, out / b, r}, 0.0f, s);
        break;
      }
      case LinearKind::Blast: {  // each block sums r rank-one terms weighted by s ~ 1
        const float s = std::sqrt(kStd / std::sqrt(static_cast<float>(r)));
        fill(name + ".blast_U", {b, out / b, r}, 0.0f, s);
        fill(name + ".blast_S", {b, b, r}, 0.0f, 1.0f);
        fill(name + ".blast_V", {b, r, in / b}, 0.0f, s);
        break;
      }
      case LinearKind::Dense: break;
    }
    meta["blr." + name + ".method"] = linear_kind_name(spec.kind);
    meta["blr." + name + ".b"] = std::to_string(b);
    meta["blr." + name + ".r"] = std::to_string(r);
    meta["blr." + name + ".rel_error"] = "0";
  };

  fill("patch_embed.proj.weight", {D, c.in_chans, c.patch, c.patch}, 0.0f, kStd);
  fill("patch_embed.proj.bias", {D}, 0.0f, kStd);
  fill("cls_token", {1, 1, D}, 0.0f, kStd);
  fill("pos_embed", {1, c.tokens(), D}, 0.0f, kStd);
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string pre = cat("blocks.", i, ".");
    fill(pre + "norm1.weight", {D}, 1.0f, 0.1f);
    fill(pre + "norm1.bias", {D}, 0.0f, kStd);
    linear(pre + "attn.qkv", D, 3 * D, true);
    linear(pre + "attn.proj", D, D, false);
    fill(pre + "norm2.weight", {D}, 1.0f, 0.1f);
    fill(pre + "norm2.bias", {D}, 0.0f, kStd);
    linear(pre + "mlp.fc1", D, H, true);
    linear(pre + "mlp.fc2", H, D, true);
  }
  fill("norm.weight", {D}, 1.0f, 0.1f);
  fill("norm.bias", {D}, 0.0f, kStd);
  linear("head", D, c.num_classes, false);
  const std::string label = cat("random ", c.describe(), spec.kind == LinearKind::Dense ? "" : " " + spec.describe());
  return Checkpoint(std::make_shared<TensorMapReader>(label, std::move(t), std::move(meta)));
}

}  // namespace blr
