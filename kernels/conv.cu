// Direct NHWC convolution and channel-bias add: the pieces around cuDNN in the conv2d op.
//
// conv2d_direct is the correct-for-every-shape fallback, used when cuDNN offers no algorithm for a shape
// (e.g. bf16 NHWC with channel counts that are not multiples of 8 on some cuDNN versions) and as an
// independent cross-check in the parity tests. It is deliberately simple: one thread per output pixel
// and 8 output channels, fp32 accumulators in registers, the loop over (ky, kx, ci) reading the input
// pixel once for the 8 channels. Weight reads are the same address across a warp (a broadcast from L1),
// so the weights cost almost nothing; the input rows are re-read from L1/L2 by neighbouring threads.
// That is far from tensor-core speed, which is acceptable for the small odd-channel convolutions it is
// meant for (the VAE's conv_in 4→512 and conv_out 128→3) — the big ones go through cuDNN.
//
// add_channel_bias adds a per-channel bias in place after cuDNN's convolution (one pass over y).
#include "kernels/conv.h"

#include <algorithm>

#include "kernels/common.cuh"

namespace blr::kern {
namespace {

constexpr int kCoPerThread = 8;
constexpr int kConvThreads = 128;

template <typename T>
__global__ void __launch_bounds__(kConvThreads)
    conv2d_direct_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                         T* __restrict__ y, const Conv2dShape s) {
  const int64_t pixels = static_cast<int64_t>(s.batch) * s.out_height * s.out_width;
  const int64_t pix = static_cast<int64_t>(blockIdx.x) * kConvThreads + threadIdx.x;
  if (pix >= pixels) return;
  const int ox = static_cast<int>(pix % s.out_width);
  const int oy = static_cast<int>((pix / s.out_width) % s.out_height);
  const int n = static_cast<int>(pix / (static_cast<int64_t>(s.out_width) * s.out_height));
  const int co0 = blockIdx.y * kCoPerThread;
  const int64_t w_co_stride = static_cast<int64_t>(s.kernel_h) * s.kernel_w * s.in_channels;

  // Channels past out_channels read a valid row (the last one) and are simply not stored.
  const T* w_rows[kCoPerThread];
  float acc[kCoPerThread];
#pragma unroll
  for (int j = 0; j < kCoPerThread; ++j) {
    const int co = min(co0 + j, s.out_channels - 1);
    w_rows[j] = w + co * w_co_stride;
    acc[j] = bias ? to_f32(bias[co]) : 0.0f;
  }
  for (int ky = 0; ky < s.kernel_h; ++ky) {
    const int iy = oy * s.stride - s.pad + ky;
    if (iy < 0 || iy >= s.height) continue;
    for (int kx = 0; kx < s.kernel_w; ++kx) {
      const int ix = ox * s.stride - s.pad + kx;
      if (ix < 0 || ix >= s.width) continue;
      const T* xp = x + ((static_cast<int64_t>(n) * s.height + iy) * s.width + ix) * s.in_channels;
      const int64_t w_off = (static_cast<int64_t>(ky) * s.kernel_w + kx) * s.in_channels;
      for (int ci = 0; ci < s.in_channels; ++ci) {
        const float xv = to_f32(xp[ci]);
#pragma unroll
        for (int j = 0; j < kCoPerThread; ++j) acc[j] = fmaf(xv, to_f32(w_rows[j][w_off + ci]), acc[j]);
      }
    }
  }
  T* yp = y + pix * s.out_channels;
#pragma unroll
  for (int j = 0; j < kCoPerThread; ++j)
    if (co0 + j < s.out_channels) yp[co0 + j] = from_f32<T>(acc[j]);
}

template <typename T>
__global__ void add_channel_bias_kernel(T* __restrict__ y, const T* __restrict__ bias, int64_t total,
                                        int channels) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = from_f32<T>(to_f32(y[i]) + to_f32(bias[i % channels]));
}

}  // namespace

cudaError_t conv2d_direct(DT dt, const Conv2dShape& s, const void* x, const void* w, const void* bias, void* y,
                          cudaStream_t stream) {
  if (s.batch <= 0 || s.out_height <= 0 || s.out_width <= 0 || s.out_channels <= 0) return cudaSuccess;
  if (s.in_channels <= 0 || s.kernel_h <= 0 || s.kernel_w <= 0 || s.stride <= 0 || s.pad < 0)
    return cudaErrorInvalidValue;
  const int64_t pixels = static_cast<int64_t>(s.batch) * s.out_height * s.out_width;
  const int64_t co_blocks = (s.out_channels + kCoPerThread - 1) / kCoPerThread;
  if (co_blocks > 65535 || (pixels + kConvThreads - 1) / kConvThreads > 0x7fffffffLL) return cudaErrorInvalidValue;
  const dim3 grid(ceil_div(pixels, kConvThreads), static_cast<unsigned>(co_blocks));
  return dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    conv2d_direct_kernel<T><<<grid, kConvThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias), static_cast<T*>(y), s);
    return cudaGetLastError();
  });
}

cudaError_t add_channel_bias(DT dt, void* y, const void* bias, int64_t pixels, int channels, cudaStream_t stream) {
  const int64_t total = pixels * channels;
  if (total <= 0) return cudaSuccess;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, 65536);
  return dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    add_channel_bias_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        static_cast<T*>(y), static_cast<const T*>(bias), total, channels);
    return cudaGetLastError();
  });
}

}  // namespace blr::kern
