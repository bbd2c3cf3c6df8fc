#include "engine/diffusion/noise.h"

#include "engine/core/error.h"
#include "kernels/philox.h"

namespace blr {

static void fill_normals(uint64_t seed, uint32_t step, uint32_t stream, float* out, int64_t n) {
  BLR_CHECK(n <= (int64_t{1} << 32), "noise: ", n, " elements per image exceed the counter range");
  float z[4];
  for (int64_t g = 0; g * 4 < n; ++g) {
    philox::normal4(seed, step, stream, static_cast<uint32_t>(g), z);
    for (int64_t k = 0; k < 4 && g * 4 + k < n; ++k) out[g * 4 + k] = z[k];
  }
}

Tensor initial_latent(const std::vector<uint64_t>& seeds, int64_t H, int64_t W, int64_t C) {
  const int64_t B = static_cast<int64_t>(seeds.size()), per = H * W * C;
  Tensor t = Tensor::zeros({B, H, W, C}, DType::F32);
  for (int64_t b = 0; b < B; ++b)
    fill_normals(seeds[b], 0, philox::kStreamInitialLatent, t.data_as<float>() + b * per, per);
  return t;
}

std::vector<float> step_noise(uint64_t seed, int step, int64_t elements) {
  std::vector<float> v(static_cast<size_t>(elements));
  fill_normals(seed, static_cast<uint32_t>(step), philox::kStreamStepNoise, v.data(), elements);
  return v;
}

std::vector<uint64_t> request_seeds(uint64_t base, int count) {
  std::vector<uint64_t> s(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) s[i] = base + static_cast<uint64_t>(i);
  return s;
}

}  // namespace blr
