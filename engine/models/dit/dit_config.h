// DiT configuration (Peebles & Xie, "Scalable Diffusion Models with Transformers"): XL/2 by default, and
// any other size read from a checkpoint — metadata keys "dit.*" when present, otherwise inferred from
// tensor shapes (width, depth, patch, channels, MLP width, learned sigma, classes, latent size). Only the
// head count cannot be seen in any shape: it comes from "dit.heads", else the published DiT sizes
// (S 384→6, B 768→12, L 1024→16, XL 1152→16 heads), else 64-wide heads.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace blr {

class Checkpoint;

struct DitConfig {
  int64_t hidden = 1152;      // width H
  int64_t depth = 28;         // transformer blocks
  int64_t heads = 16;         // attention heads (head dim 72 for XL)
  int64_t patch = 2;          // p
  int64_t input_size = 32;    // latent height = width
  int64_t in_channels = 4;    // latent channels C
  int64_t mlp_hidden = 4608;  // MLP width (ratio 4)
  int64_t num_classes = 1000; // labels 0..num_classes−1; index num_classes is the null (unconditional) label
  bool learn_sigma = true;    // output 2C channels: noise + variance interpolation
  int64_t freq_dim = 256;     // sinusoidal timestep features
  float eps = 1e-6f;          // LayerNorm epsilon

  static DitConfig xl2() { return DitConfig{}; }
  int64_t out_channels() const { return learn_sigma ? 2 * in_channels : in_channels; }
  int64_t grid() const { return input_size / patch; }
  int64_t tokens() const { return grid() * grid(); }
  int64_t head_dim() const { return hidden / heads; }
  int64_t patch_features() const { return patch * patch * in_channels; }
  int64_t out_features() const { return patch * patch * out_channels(); }
  int64_t null_class() const { return num_classes; }
  int64_t adaln_width() const { return 6 * hidden; }  // per block: shift, scale, gate (msa), shift, scale, gate (mlp)
  std::string describe() const;  // "DiT hidden 1152, depth 28, 16 heads, patch 2, latent 32x32x4, ..."
  // "dit.hidden" = "1152", ... : what a converted or compressed checkpoint should carry.
  std::map<std::string, std::string> to_metadata() const;
  // Throws InputError when the numbers cannot describe a DiT (heads not dividing width, ...).
  void validate(const std::string& where) const;
};

// Reads the configuration of a checkpoint in original (facebookresearch) names — see dit_keymap.h for
// the diffusers layout. Throws InputError naming the file and the missing or inconsistent tensor.
DitConfig infer_dit_config(const Checkpoint& ckpt);

}  // namespace blr
