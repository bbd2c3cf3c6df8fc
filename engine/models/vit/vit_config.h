// ViT configuration: what the engine needs to know about a timm VisionTransformer (class-token pooling,
// pre-norm blocks, fused qkv, GELU-erf MLP), and how it is found for a checkpoint. timm files carry no
// config, so most of it comes from tensor shapes: width, input channels and patch from patch_embed, image
// size from pos_embed (grid² + 1 tokens), depth from the blocks present, MLP width from fc1, classes from
// the head. Heads cannot be seen in any shape; every timm ViT-Ti/S/B/L uses head dim 64, so heads =
// width / 64 unless the file's metadata ("vit.heads") or the caller says otherwise. Precedence for each
// field: caller override > metadata > shapes/defaults; a metadata or override value that contradicts a
// shape is an InputError naming both.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "engine/backend/ops.h"

namespace blr {

class Checkpoint;

struct VitConfig {
  int64_t image_size = 224;
  int64_t patch = 16;
  int64_t in_chans = 3;
  int64_t width = 768;
  int64_t depth = 12;
  int64_t heads = 12;
  int64_t mlp_hidden = 3072;
  int64_t num_classes = 1000;
  float norm_eps = 1e-6f;
  // timm's eval transform for the model: resize the shorter side to floor(image_size / crop_pct)
  // (bicubic), centre-crop image_size, normalise with mean/std (0.5 for the augreg ViT-B/16 weights).
  float crop_pct = 0.9f;
  std::array<float, 3> mean{0.5f, 0.5f, 0.5f};
  std::array<float, 3> std{0.5f, 0.5f, 0.5f};

  int64_t grid() const { return image_size / patch; }
  int64_t num_patches() const { return grid() * grid(); }
  int64_t tokens() const { return num_patches() + 1; }  // class token first
  int64_t head_dim() const { return width / heads; }
  int64_t patch_features() const { return patch * patch * in_chans; }
  int resize_short() const;
  PreprocessParams preprocess() const;  // BGR frames in, model input out
  // Throws InputError naming the first inconsistent field.
  void validate() const;
  std::string describe() const;  // "ViT 224px/16, width 768, depth 12, 12 heads, mlp 3072, 1000 classes"
  // The "vit.*" metadata entries that make a file self-describing (written by tools and tests).
  std::map<std::string, std::string> to_metadata() const;

  static VitConfig vit_b16();  // timm vit_base_patch16_224
};

// Caller-side overrides (CLI flags); unset fields fall back to metadata, then shapes/defaults.
struct VitConfigOverrides {
  std::optional<int64_t> heads;
  std::optional<float> norm_eps;
  std::optional<float> crop_pct;
  std::optional<std::array<float, 3>> mean;
  std::optional<std::array<float, 3>> std;
};

// Reads the configuration of the ViT in `ckpt` (timm key names, dense or BLR factor layers). Throws
// InputError for files that are not class-token timm ViTs or whose tensors disagree with each other.
VitConfig infer_vit_config(const Checkpoint& ckpt, const VitConfigOverrides& overrides = {});

// "0.485,0.456,0.406" -> {0.485, 0.456, 0.406}; InputError naming `what` otherwise.
std::array<float, 3> parse_float3(const std::string& text, const std::string& what);

// (out, in) of linear layer `name` whatever form it is stored in (dense weight, or low-rank / Monarch /
// BLAST factors); nullopt when the checkpoint has none of them.
std::optional<std::pair<int64_t, int64_t>> stored_linear_shape(const Checkpoint& ckpt, const std::string& name);

}  // namespace blr
