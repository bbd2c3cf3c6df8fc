// Shared pieces of the VAE decoder tests: the tiny golden model (tests/data/vae_tiny, made by
// tools/make_vae_golden.py) and random weights in the full SD-VAE layout.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "engine/io/checkpoint.h"

namespace blr::test {

struct VaeGolden {
  Checkpoint model;  // diffusers key names, metadata vae.groups = 8
  Tensor latent;     // host f32 [2, 3, 5, 4] NHWC, model space
  Tensor image;      // host f32 [2, 24, 40, 3] NHWC, decoded by tools/reference_vae.py in float64
};
VaeGolden load_vae_golden();

// All tensors and metadata of a checkpoint, for building modified copies in memory.
std::map<std::string, Tensor> checkpoint_tensors(const Checkpoint& ckpt);
Checkpoint in_memory(std::map<std::string, Tensor> tensors, std::map<std::string, std::string> metadata = {},
                     const std::string& label = "memory");

// Random weights with the SD VAE decoder's structure (engine/models/vae/vae_random.h).
Checkpoint random_sd_vae(uint64_t seed);

// The decoder parameters of a checkpoint (everything under decoder.* and post_quant_conv.*).
int64_t decoder_parameter_count(const Checkpoint& ckpt);

}  // namespace blr::test
