// A ViT of any configuration with random weights, held in memory under timm's key names — with the
// qkv / fc1 / fc2 layers stored as BLR factors when a spec asks for it, built directly from random
// factors (compressing random matrices would be slow and pointless). `blr bench` uses it when no weight
// file is given, and the tests use it for full-size models. Scales follow timm's init (weights ~0.02) so
// activations stay in a realistic range through the whole depth.
#pragma once

#include <cstdint>

#include "engine/io/checkpoint.h"
#include "engine/models/vit/vit_config.h"
#include "engine/nn/linear.h"

namespace blr {

// `blr_spec` of kind Dense keeps every layer dense. The checkpoint carries the config as "vit.*"
// metadata and, for factored layers, the "blr.N.*" entries `blr compress` writes.
Checkpoint random_vit_checkpoint(const VitConfig& config, const LinearSpec& blr_spec, uint64_t seed);

}  // namespace blr
