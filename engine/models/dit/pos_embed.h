// DiT's fixed 2-D sin-cos positional embedding (from MAE), recomputed when a checkpoint lacks it.
// Tokens are row-major (h·g + w). The first H/2 channels encode the column index w, the last H/2 the row
// index h; each half is [sin(pos·ω_k), cos(pos·ω_k)] for k < H/4 with ω_k = 1/10000^(k/(H/4)). Computed
// in float64 like numpy, rounded to f32 once.
#pragma once

#include <cstdint>

#include "engine/core/tensor.h"

namespace blr {

// Host f32 [g·g, hidden]; hidden must be a multiple of 4.
Tensor sincos_pos_embed_2d(int64_t hidden, int64_t grid);

}  // namespace blr
