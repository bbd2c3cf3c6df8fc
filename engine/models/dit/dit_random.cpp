#include "engine/models/dit/dit_random.h"

#include <cmath>
#include <map>
#include <string>

#include "engine/core/error.h"

namespace blr {

namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Host tensor of `dtype` with uniform values of standard deviation `stddev`.
Tensor uniform(const Shape& shape, DType dtype, uint64_t seed, double stddev) {
  Tensor t = Tensor::zeros(shape, dtype);
  const int64_t n = t.numel();
  const double a = stddev * std::sqrt(3.0);
  void* p = t.data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const double u = static_cast<double>(splitmix(seed ^ splitmix(static_cast<uint64_t>(i))) >> 11) * 0x1.0p-53;
    const float v = static_cast<float>((2.0 * u - 1.0) * a);
    if (dtype == DType::F32) static_cast<float*>(p)[i] = v;
    else if (dtype == DType::BF16) static_cast<uint16_t*>(p)[i] = f32_to_bf16_bits(v);
    else if (dtype == DType::F16) static_cast<uint16_t*>(p)[i] = f32_to_f16_bits(v);
    else store_from_double(p, dtype, static_cast<size_t>(i), v);
  }
  return t;
}

}  // namespace

Checkpoint random_dit_checkpoint(const DitConfig& c, uint64_t seed, DType dtype, const std::vector<LayerRule>& rules) {
  std::map<std::string, Tensor> t;
  std::map<std::string, std::string> meta = c.to_metadata();
  uint64_t counter = 0;
  auto next_seed = [&] { return splitmix(seed * 1000003ull + ++counter); };
  const int64_t H = c.hidden;
  auto linear = [&](const std::string& name, int64_t in, int64_t out) {
    t[name + ".bias"] = uniform({out}, dtype, next_seed(), 0.02);
    const std::optional<LinearSpec> spec = match_rules(rules, name);
    if (!spec || spec->kind == LinearKind::Dense) {
      t[name + ".weight"] = uniform({out, in}, dtype, next_seed(), 1.0 / std::sqrt(static_cast<double>(in)));
      return;
    }
    validate_spec(*spec, in, out, name);
    const int64_t b = spec->blocks, r = spec->rank;
    meta["blr." + name + ".method"] = linear_kind_name(spec->kind);
    meta["blr." + name + ".b"] = std::to_string(b);
    meta["blr." + name + ".r"] = std::to_string(r);
    const double sr = 1.0 / std::sqrt(static_cast<double>(r));
    switch (spec->kind) {
      case LinearKind::LowRank:
        t[name + ".lowrank_A"] = uniform({r, in}, dtype, next_seed(), 1.0 / std::sqrt(static_cast<double>(in)));
        t[name + ".lowrank_B"] = uniform({out, r}, dtype, next_seed(), sr);
        break;
      case LinearKind::Monarch:
        t[name + ".monarch_R"] = uniform({b, r, in / b}, dtype, next_seed(), 1.0 / std::sqrt(static_cast<double>(in / b)));
        t[name + ".monarch_L"] = uniform({b, out / b, r}, dtype, next_seed(), sr);
        break;
      case LinearKind::Blast:
        t[name + ".blast_U"] = uniform({b, out / b, r}, dtype, next_seed(), sr);
        t[name + ".blast_S"] = uniform({b, b, r}, dtype, next_seed(), 1.0 / std::sqrt(static_cast<double>(b)));
        t[name + ".blast_V"] = uniform({b, r, in / b}, dtype, next_seed(), 1.0 / std::sqrt(static_cast<double>(in / b)));
        break;
      default: break;
    }
  };
  t["x_embedder.proj.weight"] =
      uniform({H, c.in_channels, c.patch, c.patch}, dtype, next_seed(), 1.0 / std::sqrt(static_cast<double>(c.patch_features())));
  t["x_embedder.proj.bias"] = uniform({H}, dtype, next_seed(), 0.02);
  linear("t_embedder.mlp.0", c.freq_dim, H);
  linear("t_embedder.mlp.2", H, H);
  t["y_embedder.embedding_table.weight"] = uniform({c.num_classes + 1, H}, dtype, next_seed(), 1.0);
  for (int64_t l = 0; l < c.depth; ++l) {
    const std::string b = cat("blocks.", l, ".");
    linear(b + "attn.qkv", H, 3 * H);
    linear(b + "attn.proj", H, H);
    linear(b + "mlp.fc1", H, c.mlp_hidden);
    linear(b + "mlp.fc2", c.mlp_hidden, H);
    linear(b + "adaLN_modulation.1", H, c.adaln_width());
  }
  linear("final_layer.adaLN_modulation.1", H, 2 * H);
  linear("final_layer.linear", H, c.out_features());
  return Checkpoint(std::make_shared<TensorMapReader>(cat("random DiT (seed ", seed, ")"), std::move(t), std::move(meta)));
}

}  // namespace blr
