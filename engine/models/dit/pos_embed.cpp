#include "engine/models/dit/pos_embed.h"

#include <cmath>

#include "engine/core/error.h"

namespace blr {

Tensor sincos_pos_embed_2d(int64_t hidden, int64_t grid) {
  BLR_CHECK(hidden % 4 == 0 && grid > 0, "pos embed: width ", hidden, " must be a multiple of 4 and grid ", grid,
            " positive");
  const int64_t quarter = hidden / 4, half = hidden / 2;
  Tensor t = Tensor::zeros({grid * grid, hidden}, DType::F32);
  float* p = t.data_as<float>();
  for (int64_t h = 0; h < grid; ++h)
    for (int64_t w = 0; w < grid; ++w) {
      float* row = p + (h * grid + w) * hidden;
      for (int64_t k = 0; k < quarter; ++k) {
        const double omega = 1.0 / std::pow(10000.0, static_cast<double>(k) / static_cast<double>(quarter));
        const double aw = static_cast<double>(w) * omega, ah = static_cast<double>(h) * omega;
        row[k] = static_cast<float>(std::sin(aw));
        row[quarter + k] = static_cast<float>(std::cos(aw));
        row[half + k] = static_cast<float>(std::sin(ah));
        row[half + quarter + k] = static_cast<float>(std::cos(ah));
      }
    }
  return t;
}

}  // namespace blr
