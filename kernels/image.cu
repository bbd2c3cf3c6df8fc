// Image kernels: classification preprocessing (u8 BGR frame -> normalised crop) and float image -> RGBA8.
//
// preprocess_image does timm's eval transform (resize shorter side, centre crop, to [0,1], normalise,
// BGR -> RGB) in one kernel with one thread per output pixel. Only the crop window of the resized image is
// ever computed, straight from the frame: each output pixel maps to its position in the resized image
// (crop offset added), then to the frame with OpenCV's INTER_CUBIC convention, and reads a 4×4
// neighbourhood per channel (a 224² crop is ~50k threads of 48 byte loads from L1/L2: microseconds; the
// frame upload dominates).
//
// The pixel arithmetic (bicubic weights, source coordinates, resize and crop geometry, the u8 conversion
// of to_rgba8) is kernels/image_math.h, the same code the CPU reference runs. This file is compiled with
// --fmad=false (kernels/CMakeLists.txt) so nvcc does not fuse its multiplies and adds into FMAs the host
// compiler does not form: both backends then round identically and agree bit for bit in f32.
#include "kernels/image.h"

#include <algorithm>

#include "kernels/image_math.h"
#include "kernels/vec_util.cuh"

namespace blr::kern {
namespace {

template <typename TO>
__global__ void preprocess_kernel(PreprocessArgs a, float scale_y, float scale_x) {
  const int ox = blockIdx.x * blockDim.x + threadIdx.x;
  const int oy = blockIdx.y * blockDim.y + threadIdx.y;
  if (ox >= a.crop || oy >= a.crop) return;
  const float fy = resize_source_coord(a.crop_top + oy, scale_y);
  const float fx = resize_source_coord(a.crop_left + ox, scale_x);
  TO* out = static_cast<TO*>(a.dst) + (static_cast<int64_t>(oy) * a.crop + ox) * 3;
#pragma unroll
  for (int c = 0; c < 3; ++c) {
    const int src_c = a.bgr_to_rgb ? 2 - c : c;
    const float v = bicubic_sample_u8(a.frame, a.src_h, a.src_w, a.row_stride, 3, src_c, fy, fx);
    out[c] = from_f32<TO>((v / 255.0f - a.mean[c]) / a.std[c]);
  }
}

template <typename T, bool kAligned>
__global__ void to_rgba8_kernel(const T* __restrict__ img, int64_t pixels, uint8_t* __restrict__ rgba) {
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < pixels;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint8_t q[3];
#pragma unroll
    for (int c = 0; c < 3; ++c) q[c] = unit_to_u8(to_f32<T>(img[p * 3 + c]));
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
      a.row_stride < 3 * a.src_w || a.crop_top < 0 || a.crop_left < 0 || a.crop_top + a.crop > a.resized_h ||
      a.crop_left + a.crop > a.resized_w)
    return cudaErrorInvalidValue;
  // Source pixels per resized pixel, as the CPU reference computes them (float).
  const float scale_y = static_cast<float>(a.src_h) / static_cast<float>(a.resized_h);
  const float scale_x = static_cast<float>(a.src_w) / static_cast<float>(a.resized_w);
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
