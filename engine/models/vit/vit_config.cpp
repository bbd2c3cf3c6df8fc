#include "engine/models/vit/vit_config.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "engine/core/error.h"
#include "engine/io/checkpoint.h"

namespace blr {

int VitConfig::resize_short() const {
  // timm: scale_size = floor(img_size / crop_pct); 224 / 0.9 -> 248. The epsilon keeps exact ratios
  // (e.g. 256 / 0.875 = 292.57..., 224 / 0.875 = 256) from landing one below through rounding.
  return static_cast<int>(std::floor(static_cast<double>(image_size) / crop_pct + 1e-6));
}

PreprocessParams VitConfig::preprocess() const {
  PreprocessParams p;
  p.resize_short = resize_short();
  p.crop = static_cast<int>(image_size);
  for (int c = 0; c < 3; ++c) {
    p.mean[c] = mean[c];
    p.std[c] = std[c];
  }
  p.bgr_to_rgb = true;
  return p;
}

void VitConfig::validate() const {
  auto fail = [](const std::string& why) { throw InputError(cat("ViT config: ", why)); };
  if (patch < 1 || image_size < patch) fail(cat("image size ", image_size, " with patch ", patch));
  if (image_size % patch != 0) fail(cat("image size ", image_size, " is not a multiple of patch ", patch));
  if (in_chans != 3) fail(cat(in_chans, " input channels (only RGB models are supported)"));
  if (width < 1 || depth < 1 || mlp_hidden < 1 || num_classes < 1)
    fail(cat("width ", width, ", depth ", depth, ", mlp ", mlp_hidden, ", classes ", num_classes, " must be positive"));
  if (heads < 1 || width % heads != 0) fail(cat("width ", width, " is not divisible into ", heads, " heads"));
  if (!(norm_eps > 0)) fail(cat("norm eps ", norm_eps, " must be positive"));
  if (!(crop_pct > 0 && crop_pct <= 1)) fail(cat("crop_pct ", crop_pct, " must be in (0, 1]"));
  for (int c = 0; c < 3; ++c)
    if (!(std[c] > 0)) fail(cat("std[", c, "] = ", std[c], " must be positive"));
}

std::string VitConfig::describe() const {
  return cat("ViT ", image_size, "px/", patch, ", width ", width, ", depth ", depth, ", ", heads, " heads, mlp ",
             mlp_hidden, ", ", num_classes, " classes");
}

static std::string float3_str(const std::array<float, 3>& v) {
  std::ostringstream os;
  os.precision(9);
  os << v[0] << "," << v[1] << "," << v[2];
  return os.str();
}

std::map<std::string, std::string> VitConfig::to_metadata() const {
  std::ostringstream eps, crop;
  eps.precision(9);
  crop.precision(9);
  eps << norm_eps;
  crop << crop_pct;
  return {{"vit.image_size", std::to_string(image_size)},
          {"vit.patch_size", std::to_string(patch)},
          {"vit.in_chans", std::to_string(in_chans)},
          {"vit.width", std::to_string(width)},
          {"vit.depth", std::to_string(depth)},
          {"vit.heads", std::to_string(heads)},
          {"vit.mlp_hidden", std::to_string(mlp_hidden)},
          {"vit.num_classes", std::to_string(num_classes)},
          {"vit.norm_eps", eps.str()},
          {"vit.crop_pct", crop.str()},
          {"vit.mean", float3_str(mean)},
          {"vit.std", float3_str(std)}};
}

VitConfig VitConfig::vit_b16() { return VitConfig{}; }

std::array<float, 3> parse_float3(const std::string& text, const std::string& what) {
  std::array<float, 3> out{};
  std::stringstream ss(text);
  std::string item;
  int n = 0;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (n >= 3 || item.empty() || *end != '\0' || !std::isfinite(v))
      throw InputError(cat(what, ": expected three comma-separated numbers, got '", text, "'"));
    out[n++] = static_cast<float>(v);
  }
  if (n != 3) throw InputError(cat(what, ": expected three comma-separated numbers, got '", text, "'"));
  return out;
}

std::optional<std::pair<int64_t, int64_t>> stored_linear_shape(const Checkpoint& ckpt, const std::string& name) {
  auto shape = [&](const std::string& suffix) -> std::optional<Shape> {
    if (!ckpt.has(name + suffix)) return std::nullopt;
    return ckpt.info(name + suffix).shape;
  };
  auto bad = [&](const std::string& suffix, const Shape& s) {
    return InputError(cat(ckpt.path(), ": tensor '", name, suffix, "' has unexpected shape ", shape_str(s)));
  };
  if (auto w = shape(".weight")) {
    if (w->size() != 2) throw bad(".weight", *w);
    return std::make_pair((*w)[0], (*w)[1]);
  }
  if (auto a = shape(".lowrank_A"), b = shape(".lowrank_B"); a && b) {
    if (a->size() != 2 || b->size() != 2) throw bad(".lowrank_A", *a);
    return std::make_pair((*b)[0], (*a)[1]);
  }
  if (auto r = shape(".monarch_R"), l = shape(".monarch_L"); r && l) {
    if (r->size() != 3 || l->size() != 3) throw bad(".monarch_R", *r);
    return std::make_pair((*l)[0] * (*l)[1], (*r)[0] * (*r)[2]);
  }
  if (auto u = shape(".blast_U"), v = shape(".blast_V"); u && v) {
    if (u->size() != 3 || v->size() != 3) throw bad(".blast_U", *u);
    return std::make_pair((*u)[0] * (*u)[1], (*v)[0] * (*v)[2]);
  }
  return std::nullopt;
}

namespace {

std::optional<std::string> meta(const Checkpoint& ckpt, const std::string& key) {
  auto it = ckpt.metadata().find(key);
  if (it == ckpt.metadata().end()) return std::nullopt;
  return it->second;
}

std::optional<int64_t> meta_int(const Checkpoint& ckpt, const std::string& key) {
  auto v = meta(ckpt, key);
  if (!v) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno != 0 || x < 1)
    throw InputError(cat(ckpt.path(), ": metadata ", key, " = '", *v, "' is not a positive integer"));
  return x;
}

std::optional<float> meta_float(const Checkpoint& ckpt, const std::string& key) {
  auto v = meta(ckpt, key);
  if (!v) return std::nullopt;
  char* end = nullptr;
  const double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0' || !std::isfinite(x))
    throw InputError(cat(ckpt.path(), ": metadata ", key, " = '", *v, "' is not a number"));
  return static_cast<float>(x);
}

// A metadata value that restates something the shapes already fix must agree with them.
void check_agrees(const Checkpoint& ckpt, const std::string& key, int64_t from_shapes, const std::string& source) {
  if (auto v = meta_int(ckpt, key); v && *v != from_shapes)
    throw InputError(cat(ckpt.path(), ": metadata ", key, " = ", *v, " but ", source, " gives ", from_shapes));
}

Shape require_shape(const Checkpoint& ckpt, const std::string& name, size_t rank) {
  if (!ckpt.has(name))
    throw InputError(cat(ckpt.path(), ": not a timm ViT checkpoint: tensor '", name, "' not found"));
  const Shape s = ckpt.info(name).shape;
  if (s.size() != rank)
    throw InputError(cat(ckpt.path(), ": tensor '", name, "': shape ", shape_str(s), ", expected ", rank, " dimensions"));
  return s;
}

}  // namespace

VitConfig infer_vit_config(const Checkpoint& ckpt, const VitConfigOverrides& ov) {
  const std::string& path = ckpt.path();
  // Variants of timm's VisionTransformer whose forward differs from the one implemented here: refuse
  // them by name rather than compute something else.
  const std::pair<const char*, const char*> unsupported[] = {
      {"reg_token", "register tokens"},
      {"fc_norm.weight", "average pooling with fc_norm (global_pool='avg')"},
      {"norm_pre.weight", "a pre-norm before the blocks (CLIP-style)"},
      {"blocks.0.ls1.gamma", "layer scale (DeiT III style)"},
      {"blocks.0.attn.q_norm.weight", "qk-norm"},
      {"attn_pool.latent", "attention pooling"},
      {"head.fc.weight", "a nested head"}};
  for (const auto& [key, what] : unsupported)
    if (ckpt.has(key))
      throw InputError(cat(path, ": this ViT uses ", what, " ('", key, "'), which the engine does not support; "
                           "only class-token timm ViTs (vit_*_patch*_*) are"));

  VitConfig c;
  const Shape pe = require_shape(ckpt, "patch_embed.proj.weight", 4);  // [D, C, p, p]
  if (pe[2] != pe[3])
    throw InputError(cat(path, ": tensor 'patch_embed.proj.weight': shape ", shape_str(pe), " has a non-square patch"));
  c.width = pe[0];
  c.in_chans = pe[1];
  c.patch = pe[2];
  if (!ckpt.has("cls_token"))
    throw InputError(cat(path, ": tensor 'cls_token' not found: only class-token ViTs are supported"));
  const Shape pos = require_shape(ckpt, "pos_embed", 3);  // [1, grid² + 1, D]
  if (pos[0] != 1 || pos[2] != c.width || pos[1] < 2)
    throw InputError(cat(path, ": tensor 'pos_embed': shape ", shape_str(pos), ", expected [1,grid*grid+1,", c.width, "]"));
  const int64_t patches = pos[1] - 1;
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(patches))));
  if (grid * grid != patches)
    throw InputError(cat(path, ": tensor 'pos_embed': shape ", shape_str(pos), " holds ", patches,
                         " patch positions, not a square grid (plus one class token)"));
  c.image_size = grid * c.patch;

  c.depth = 0;
  while (ckpt.has(cat("blocks.", c.depth, ".norm1.weight"))) ++c.depth;
  if (c.depth == 0) throw InputError(cat(path, ": not a timm ViT checkpoint: tensor 'blocks.0.norm1.weight' not found"));
  const auto fc1 = stored_linear_shape(ckpt, "blocks.0.mlp.fc1");
  if (!fc1) throw InputError(cat(path, ": tensor 'blocks.0.mlp.fc1.weight' not found (nor its BLR factors)"));
  c.mlp_hidden = fc1->first;
  const auto head = stored_linear_shape(ckpt, "head");
  if (!head)
    throw InputError(cat(path, ": tensor 'head.weight' not found (nor its BLR factors): the model has no classifier "
                           "head (num_classes=0?)"));
  c.num_classes = head->first;

  check_agrees(ckpt, "vit.image_size", c.image_size, "pos_embed");
  check_agrees(ckpt, "vit.patch_size", c.patch, "patch_embed.proj.weight");
  check_agrees(ckpt, "vit.in_chans", c.in_chans, "patch_embed.proj.weight");
  check_agrees(ckpt, "vit.width", c.width, "patch_embed.proj.weight");
  check_agrees(ckpt, "vit.depth", c.depth, "the blocks present");
  check_agrees(ckpt, "vit.mlp_hidden", c.mlp_hidden, "blocks.0.mlp.fc1");
  check_agrees(ckpt, "vit.num_classes", c.num_classes, "head");

  if (ov.heads) {
    c.heads = *ov.heads;
  } else if (auto h = meta_int(ckpt, "vit.heads")) {
    c.heads = *h;
  } else {
    if (c.width % 64 != 0)
      throw InputError(cat(path, ": cannot infer the number of heads: width ", c.width,
                           " is not a multiple of 64 (timm's head dim); give it (--heads N or metadata vit.heads)"));
    c.heads = c.width / 64;
  }
  if (auto v = meta_float(ckpt, "vit.norm_eps")) c.norm_eps = *v;
  if (ov.norm_eps) c.norm_eps = *ov.norm_eps;
  if (auto v = meta_float(ckpt, "vit.crop_pct")) c.crop_pct = *v;
  if (ov.crop_pct) c.crop_pct = *ov.crop_pct;
  if (auto v = meta(ckpt, "vit.mean")) c.mean = parse_float3(*v, cat(path, ": metadata vit.mean"));
  if (ov.mean) c.mean = *ov.mean;
  if (auto v = meta(ckpt, "vit.std")) c.std = parse_float3(*v, cat(path, ": metadata vit.std"));
  if (ov.std) c.std = *ov.std;
  try {
    c.validate();
  } catch (const InputError& e) {
    throw InputError(cat(path, ": ", e.what()));
  }
  return c;
}

}  // namespace blr
