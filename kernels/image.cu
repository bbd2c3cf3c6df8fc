// Image kernels: classification preprocessing (u8 BGR frame -> normalised crop) and float image -> RGBA8.
//
// preprocess_image does timm's eval transform (resize shorter side, centre crop, to [0,1], normalise,
// BGR -> RGB) in one kernel with one thread per output pixel. Only the crop window of the resized image is
// ever computed, straight from the frame: each output pixel maps to its position in the resized image
// (crop offset added), then to the frame with OpenCV's INTER_CUBIC convention, and reads a 4×4 neighbourhood
// (about 50k pixels × 48 byte loads for a 224² crop, all from L1/L2 — the kernel takes microseconds, the
// frame upload dominates). The math is written to be reproducible on the CPU: the weight function and the
// accumulation order (each of the 4 rows filtered horizontally, taps left to right, then the 4 row results
// combined top to bottom) use explicitly rounded fp32 operations (no FMA contraction), so a CPU loop
// written in the same order gives the same bits.
//
// The bicubic weight formula below duplicates the CPU reference's (engine/backend/cpu, planned shared
// header bicubic.h); kernels/ cannot include engine headers. Keep the two in step.
#include "kernels/image.h"

#include <algorithm>

#include "kernels/vec_util.cuh"

namespace blr::kern {
namespace {

__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }

// Keys' cubic convolution kernel with a = −0.75 (OpenCV INTER_CUBIC) for the 4 taps at offsets −1, 0, 1, 2
// from floor(src), where t = src − floor(src) in [0, 1): distances 1 + t, t, 1 − t, 2 − t. The last weight
// is 1 minus the others so the four sum to one.
//   |d| <= 1:     (a + 2)|d|³ − (a + 3)|d|² + 1
//   1 < |d| < 2:  a|d|³ − 5a|d|² + 8a|d| − 4a
__device__ __forceinline__ void cubic_weights(float t, float (&w)[4]) {
  constexpr float A = -0.75f;
  const float d0 = add(t, 1.0f);
  w[0] = sub(mul(add(mul(sub(mul(A, d0), 5.0f * A), d0), 8.0f * A), d0), 4.0f * A);
  w[1] = add(mul(mul(sub(mul(A + 2.0f, t), A + 3.0f), t), t), 1.0f);
  const float d2 = sub(1.0f, t);
  w[2] = add(mul(mul(sub(mul(A + 2.0f, d2), A + 3.0f), d2), d2), 1.0f);
  w[3] = sub(sub(sub(1.0f, w[0]), w[1]), w[2]);
}

// OpenCV's source coordinate for destination index `dst`: fx = float((dst + 0.5)·scale − 0.5) in double,
// first tap floor(fx), fraction fx − floor(fx).
__device__ __forceinline__ void source_coord(int dst, double scale, int& first, float& frac) {
  const float f = static_cast<float>((dst + 0.5) * scale - 0.5);
  const float fl = floorf(f);
  first = static_cast<int>(fl) - 1;
  frac = sub(f, fl);
}

template <typename TO>
__global__ void preprocess_kernel(PreprocessArgs a, double scale_y, double scale_x) {
  const int ox = blockIdx.x * blockDim.x + threadIdx.x;
  const int oy = blockIdx.y * blockDim.y + threadIdx.y;
  if (ox >= a.crop || oy >= a.crop) return;
  int x0, y0;
  float tx, ty;
  source_coord(ox + a.crop_left, scale_x, x0, tx);
  source_coord(oy + a.crop_top, scale_y, y0, ty);
  float wx[4], wy[4];
  cubic_weights(tx, wx);
  cubic_weights(ty, wy);
  int xs[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) xs[i] = 3 * min(max(x0 + i, 0), a.src_w - 1);  // replicated border
  float acc[3] = {0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint8_t* row = a.frame + static_cast<int64_t>(min(max(y0 + j, 0), a.src_h - 1)) * a.row_stride;
    float h[3] = {0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int c = 0; c < 3; ++c) h[c] = add(h[c], mul(wx[i], static_cast<float>(row[xs[i] + c])));
#pragma unroll
    for (int c = 0; c < 3; ++c) acc[c] = add(acc[c], mul(wy[j], h[c]));
  }
  TO* out = static_cast<TO*>(a.dst) + (static_cast<int64_t>(oy) * a.crop + ox) * 3;
#pragma unroll
  for (int c = 0; c < 3; ++c) {
    const int src_c = a.bgr_to_rgb ? 2 - c : c;
    // What a u8 resize stores: round half to even, saturate to [0, 255].
    const float v8 = rintf(fminf(fmaxf(acc[src_c], 0.0f), 255.0f));
    out[c] = from_f32<TO>((v8 / 255.0f - a.mean[c]) / a.std[c]);
  }
}

template <typename T, bool kAligned>
__global__ void to_rgba8_kernel(const T* __restrict__ img, int64_t pixels, uint8_t* __restrict__ rgba) {
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < pixels;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint8_t q[3];
#pragma unroll
    for (int c = 0; c < 3; ++c) {
      const float v = fminf(fmaxf((to_f32<T>(img[p * 3 + c]) + 1.0f) * 0.5f, 0.0f), 1.0f);
      q[c] = static_cast<uint8_t>(roundf(v * 255.0f));
    }
    if (kAligned) {
      reinterpret_cast<uchar4*>(rgba)[p] = make_uchar4(q[0], q[1], q[2], 255);
    } else {
      rgba[p * 4 + 0] = q[0];
      rgba[p * 4 + 1] = q[1];
      rgba[p * 4 + 2] = q[2];
      rgba[p * 4 + 3] = 255;
    }
  }
}

}  // namespace

cudaError_t preprocess_image(const PreprocessArgs& a, DT dst_dt, cudaStream_t stream) {
  if (!a.frame || !a.dst || a.src_h <= 0 || a.src_w <= 0 || a.resized_h <= 0 || a.resized_w <= 0 || a.crop <= 0 ||
      a.row_stride < 3 * static_cast<int64_t>(a.src_w) || a.crop_top < 0 || a.crop_left < 0 ||
      a.crop_top + a.crop > a.resized_h || a.crop_left + a.crop > a.resized_w)
    return cudaErrorInvalidValue;
  // OpenCV: inv_scale = dst/src, scale = 1/inv_scale, both in double.
  const double scale_y = 1.0 / (static_cast<double>(a.resized_h) / a.src_h);
  const double scale_x = 1.0 / (static_cast<double>(a.resized_w) / a.src_w);
  const dim3 block(32, 8);
  const dim3 grid(ceil_div(a.crop, block.x), ceil_div(a.crop, block.y));
  return dispatch_dtype(dst_dt, [&](auto tag) {
    preprocess_kernel<decltype(tag)><<<grid, block, 0, stream>>>(a, scale_y, scale_x);
    return cudaGetLastError();
  });
}

cudaError_t to_rgba8(const void* img, int64_t pixels, uint8_t* rgba, DT dt, cudaStream_t stream) {
  if (pixels <= 0) return cudaSuccess;
  if (!img || !rgba) return cudaErrorInvalidValue;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(pixels, 256), int64_t{1} << 20));
  const bool aligned = aligned_to(rgba, 4);
  return dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    if (aligned)
      to_rgba8_kernel<T, true><<<blocks, 256, 0, stream>>>(static_cast<const T*>(img), pixels, rgba);
    else
      to_rgba8_kernel<T, false><<<blocks, 256, 0, stream>>>(static_cast<const T*>(img), pixels, rgba);
    return cudaGetLastError();
  });
}

}  // namespace blr::kern
