// Sampler step and timestep lookup (see sampler.h for the math and why it is shared with the CPU).
//
// Shape of the work: a latent is tiny (32·32·4 = 4096 values per image at 256 px), so this is one pass
// over B·H·W·C elements. One thread handles the four consecutive elements that share one Philox block,
// so each counter is hashed once. The step counter is read by every thread and incremented afterwards by
// a second one-thread kernel: incrementing inside the update kernel would race with blocks that have not
// read it yet, and stream order guarantees the increment runs after all of them.
#include "kernels/common.cuh"
#include "kernels/sampler.h"

namespace blr::kern {

namespace {

__device__ __forceinline__ int read_step(const int32_t* step, int steps) {
  int s = *step;
  return s < 0 ? 0 : (s >= steps ? steps - 1 : s);
}

template <typename TO, typename TI>
__global__ void sampler_step_kernel(SamplerStepParams p) {
  const int per_image = p.pixels * p.channels;
  const int groups = (per_image + 3) / 4;
  const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<long long>(p.batch) * groups) return;
  const int b = static_cast<int>(idx / groups);
  const int g = static_cast<int>(idx % groups);
  const int s = read_step(p.step, p.steps);
  float row[kSchedColumns];
#pragma unroll
  for (int c = 0; c < kSchedColumns; ++c) row[c] = __ldg(p.tables + static_cast<long long>(s) * kSchedColumns + c);

  float z[4] = {0.f, 0.f, 0.f, 0.f};
  const bool need_noise = p.mode == SamplerMode::DDPM;
  if (need_noise && !p.noise)
    blr::philox::normal4(static_cast<uint64_t>(p.seeds[b]), static_cast<uint32_t>(s),
                         blr::philox::kStreamStepNoise, static_cast<uint32_t>(g), z);

  const TO* mo = static_cast<const TO*>(p.model_out);
  TI* in = static_cast<TI*>(p.model_in);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const int e = g * 4 + k;
    if (e >= per_image) break;
    const int px = e / p.channels, c = e - px * p.channels;
    const long long cond = (static_cast<long long>(b) * p.pixels + px) * p.out_channels + c;
    float eps = to_f32(mo[cond]);
    if (p.guided && c < p.guided_channels) {
      const long long uncond = (static_cast<long long>(p.batch + b) * p.pixels + px) * p.out_channels + c;
      eps = guided_eps(eps, to_f32(mo[uncond]), p.guidance);
    }
    const float v = p.learned ? to_f32(mo[cond + p.channels]) : 0.0f;
    float noise = z[k];
    if (need_noise && p.noise)
      noise = p.noise[(static_cast<long long>(s) * p.batch + b) * per_image + e];
    const long long xi = static_cast<long long>(b) * per_image + e;
    const float xv = p.x[xi];
    const float x0 = predict_x0(row, xv, eps);
    if (p.pred_x0) p.pred_x0[xi] = x0;
    const float updated = sampler_update(p.mode, row, xv, x0, p.learned, v, noise);
    p.x[xi] = updated;
    if (in) {
      in[xi] = from_f32<TI>(updated);
      if (p.in_batch == 2 * p.batch) in[xi + static_cast<long long>(p.batch) * per_image] = from_f32<TI>(updated);
    }
  }
}

__global__ void increment_kernel(int32_t* step) { *step += 1; }

__global__ void timesteps_kernel(const float* tables, int steps, const int32_t* step, float* t, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) t[i] = tables[static_cast<long long>(read_step(step, steps)) * kSchedColumns + kSchedTimestep];
}

}  // namespace

cudaError_t launch_sampler_step(const SamplerStepParams& p, cudaStream_t stream) {
  if (p.batch <= 0 || p.pixels <= 0 || p.channels <= 0 || p.steps <= 0) return cudaErrorInvalidValue;
  const long long groups = (static_cast<long long>(p.pixels) * p.channels + 3) / 4;
  const long long threads = groups * p.batch;
  constexpr int kBlock = 256;
  // With no model_in the TI type is irrelevant; use the output's.
  const DT in_dt = p.model_in ? p.in_dt : p.out_dt;
  cudaError_t err = dispatch_dtype(p.out_dt, [&](auto out_tag) {
    using TO = decltype(out_tag);
    return dispatch_dtype(in_dt, [&](auto in_tag) {
      using TI = decltype(in_tag);
      sampler_step_kernel<TO, TI><<<ceil_div(threads, kBlock), kBlock, 0, stream>>>(p);
      return cudaGetLastError();
    });
  });
  if (err != cudaSuccess) return err;
  increment_kernel<<<1, 1, 0, stream>>>(p.step);
  return cudaGetLastError();
}

cudaError_t launch_sampler_timesteps(const float* tables, int steps, const int32_t* step, float* t, int n,
                                     cudaStream_t stream) {
  if (n <= 0 || steps <= 0) return cudaErrorInvalidValue;
  timesteps_kernel<<<ceil_div(n, 128), 128, 0, stream>>>(tables, steps, step, t, n);
  return cudaGetLastError();
}

}  // namespace blr::kern
