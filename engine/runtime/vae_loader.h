// The SD-VAE decoder (engine/models/vae) behind the Generator's LatentDecoder interface, so the CLI,
// the benchmark and the studio load it the same way. Built against whatever VaeDecoder header the vae
// module provides; without it, vae_decoder_available() is false and loading throws a clear error.
#pragma once

#include <memory>

#include "engine/io/checkpoint.h"
#include "engine/runtime/generator.h"

namespace blr {

bool vae_decoder_available();
// Loads the decoder weights (sd-vae-ft-ema / -mse layouts) in `dtype` onto the arena's device.
std::unique_ptr<LatentDecoder> load_vae_decoder(const Checkpoint& ckpt, DType dtype, Arena& arena);

}  // namespace blr
