// Random DiT checkpoints of any configuration, held in memory: dense weights, or block-low-rank factors
// for layers matching rules (so a benchmark of BLAST or Monarch needs no factorisation at load). Values
// are uniform with the variance that keeps activations O(1) (1/fan-in per stage), drawn from a counter-
// based hash so the same seed gives the same checkpoint in any thread order. For benchmarks and tests at
// the real size (DiT-XL/2: 675 M parameters) when no checkpoint file is at hand.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/io/checkpoint.h"
#include "engine/models/dit/dit_config.h"
#include "engine/nn/linear.h"

namespace blr {

// Original-layout tensor names, config metadata ("dit.*") and, for factored layers, "blr.<layer>.*".
Checkpoint random_dit_checkpoint(const DitConfig& cfg, uint64_t seed, DType dtype = DType::F32,
                                 const std::vector<LayerRule>& factor_rules = {});

}  // namespace blr
