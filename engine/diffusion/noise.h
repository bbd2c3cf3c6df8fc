// Seeded Gaussian noise for sampling, the same on every backend (kernels/philox.h has the generator).
// Image b of a request with seed S uses seed S + b, so its noise — the starting latent and every step's
// noise — does not depend on its position in the batch or on the batch size. Within an image, element e
// is the NHWC flat index ((h·W + w)·C + c); the starting latent is stream 1, step 0; the noise added by
// sampling step s is stream 0, step s.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/core/tensor.h"

namespace blr {

// Host f32 [B, H, W, C]: the starting latent x_T of each image (seeds[b] per image).
Tensor initial_latent(const std::vector<uint64_t>& seeds, int64_t H, int64_t W, int64_t C);
// Host f32 [H·W·C]: the noise sampling step `step` adds to an image with this seed.
std::vector<float> step_noise(uint64_t seed, int step, int64_t elements);
// Per-image seeds of a request: base, base + 1, ...
std::vector<uint64_t> request_seeds(uint64_t base, int count);

}  // namespace blr
