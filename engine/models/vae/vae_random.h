// A VAE decoder of any structure with random weights, held in memory under diffusers AutoencoderKL key
// names: `blr bench-vae` (and the DiT benchmark's decode timing) use it when no weight file is given, and
// the tests use it for the full-size SD structure. Conv weights ~ N(0, 1/fan_in) and GroupNorm affine
// near identity keep activations O(1) through the whole depth.
#pragma once

#include <cstdint>

#include "engine/io/checkpoint.h"
#include "engine/models/vae/vae_config.h"

namespace blr {

// The SD VAE decoder's structure: latent 4, mid 512 with single-head attention, up blocks
// 512, 512, 256, 128 of 3 resnets (the first three upsampling), GroupNorm(32), RGB out.
VaeConfig sd_vae_config();

// Random weights for `config` (post_quant_conv, mid attention and groups as the config says; groups
// other than 32 and a scaling factor other than 0.18215 are recorded as "vae.*" metadata).
Checkpoint random_vae_checkpoint(const VaeConfig& config, uint64_t seed);

}  // namespace blr
