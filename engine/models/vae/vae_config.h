// Configuration of a Stable-Diffusion-style VAE decoder (diffusers AutoencoderKL's decoder), inferred
// from the tensor shapes of a checkpoint so the real SD-VAE and tiny test models load the same way.
// What shapes cannot tell comes from safetensors metadata when present, else the SD defaults:
//   "vae.groups" (GroupNorm groups, 32), "vae.eps" (1e-6), "vae.scaling_factor" (0.18215),
//   "vae.attention_heads" (1: the SD VAE's mid-block attention is a single head over all channels).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace blr {

class Checkpoint;

struct VaeConfig {
  int latent_channels = 4;           // conv_in's input channels (4 for SD)
  int out_channels = 3;              // conv_out's output channels (RGB)
  int mid_channels = 512;            // conv_in output = mid block width
  std::vector<int> block_channels;   // output channels of each up block in decode order (512,512,256,128)
  std::vector<bool> block_upsample;  // whether up block i ends with nearest 2x upsample + 3x3 conv
  int resnets_per_block = 3;         // layers_per_block + 1 in diffusers terms
  int groups = 32;
  float eps = 1e-6f;
  float scaling_factor = 0.18215f;   // decode() divides the latent by this
  bool mid_attention = true;
  int attention_heads = 1;
  bool post_quant_conv = true;       // a 1x1 latent->latent conv before the decoder
  std::string key_prefix;            // e.g. "" or "vae." (everything before "decoder.conv_in.weight")
  bool legacy_attention_keys = false;  // query/key/value/proj_attn instead of to_q/to_k/to_v/to_out.0

  int upscale() const;               // 2^(number of upsampling blocks): 8 for SD
  // Multiply-adds ×2 of one decode of a [batch, h, w] latent: convolutions, the attention's projections
  // and both attention products (norms, adds and upsampling are not counted). SD at 32x32: ≈ 622 GFLOP.
  double decode_flops(int64_t batch, int64_t h, int64_t w) const;
  std::string describe() const;      // one line for logs
};

// Reads the decoder's structure from `ckpt`; throws InputError naming the file and the first tensor or
// metadata entry that does not fit.
VaeConfig infer_vae_config(const Checkpoint& ckpt);

}  // namespace blr
