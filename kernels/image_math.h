// Pixel arithmetic shared by the CPU reference (engine/backend/cpu/cpu_image.cpp) and the CUDA image
// kernels, so both compute the same numbers in the same order: the bicubic resize of OpenCV's
// INTER_CUBIC, torchvision's resize-shorter-side and centre-crop rules, and the float -> u8 conversion of
// to_rgba8. Plain C++ (usable from .cpp and .cu alike): no engine types, no CUDA headers.
//
// OpenCV facts this follows (imgproc/resize.cpp, resizeGeneric with INTER_CUBIC):
// - the cubic convolution kernel of Keys with A = -0.75 (not -0.5), coefficients from interpolateCubic;
// - pixel centres aligned: src = (dst + 0.5) · (src_size / dst_size) − 0.5, split into floor and fraction;
// - source indices outside the image are clamped to the border (replicate), even for A's overshoot taps;
// - no antialiasing when shrinking; the result is saturated to [0, 255] (u8 output).
// OpenCV's u8 path quantises the weights to 11 fractional bits and rounds the result to an integer; we
// keep the exact float value (clamped to [0, 255]), which differs from cv::resize by < 1 level.
#pragma once

#if defined(__CUDACC__)
#define BLR_HD __host__ __device__ __forceinline__
#else
#define BLR_HD inline
#endif

namespace blr::kern {

// The four weights of the taps at offsets −1, 0, +1, +2 from floor(src) for fraction t in [0, 1).
BLR_HD void cubic_weights(float t, float w[4]) {
  const float A = -0.75f;
  w[0] = ((A * (t + 1.0f) - 5.0f * A) * (t + 1.0f) + 8.0f * A) * (t + 1.0f) - 4.0f * A;
  w[1] = ((A + 2.0f) * t - (A + 3.0f)) * t * t + 1.0f;
  w[2] = ((A + 2.0f) * (1.0f - t) - (A + 3.0f)) * (1.0f - t) * (1.0f - t) + 1.0f;
  w[3] = 1.0f - w[0] - w[1] - w[2];
}

// Source coordinate of destination pixel `dst` when resizing by `scale` = src_size / dst_size.
BLR_HD float resize_source_coord(int dst, float scale) { return (static_cast<float>(dst) + 0.5f) * scale - 0.5f; }

BLR_HD int clamp_index(int i, int size) { return i < 0 ? 0 : (i >= size ? size - 1 : i); }

// floor() for the small coordinates of an image, without <cmath> (same on host and device).
BLR_HD int floor_to_int(float v) {
  const int i = static_cast<int>(v);
  return (static_cast<float>(i) > v) ? i - 1 : i;
}

// Channel `c` of the bicubically resized u8 image (h × w, `channels` interleaved, rows `row_stride`
// bytes apart) at source coordinates (fy, fx), saturated to [0, 255]. Rows are interpolated along x
// first, then the four row values along y, as OpenCV does.
BLR_HD float bicubic_sample_u8(const unsigned char* src, int h, int w, int row_stride, int channels, int c,
                               float fy, float fx) {
  const int sy = floor_to_int(fy), sx = floor_to_int(fx);
  float wy[4], wx[4];
  cubic_weights(fy - static_cast<float>(sy), wy);
  cubic_weights(fx - static_cast<float>(sx), wx);
  int xs[4];
  for (int j = 0; j < 4; ++j) xs[j] = clamp_index(sx - 1 + j, w) * channels + c;
  float acc = 0.0f;
  for (int i = 0; i < 4; ++i) {
    const unsigned char* row = src + static_cast<long long>(clamp_index(sy - 1 + i, h)) * row_stride;
    float r = 0.0f;
    for (int j = 0; j < 4; ++j) r += wx[j] * static_cast<float>(row[xs[j]]);
    acc += wy[i] * r;
  }
  return acc < 0.0f ? 0.0f : (acc > 255.0f ? 255.0f : acc);
}

// torchvision Resize(int): the shorter side becomes `target`, the longer int(target · long / short).
BLR_HD int resized_long_side(int target, int long_side, int short_side) {
  return static_cast<int>(static_cast<long long>(target) * long_side / short_side);
}

// torchvision CenterCrop offset: int(round((size − crop) / 2.0)) with Python's round half to even,
// so a difference of 1 gives 0, of 3 gives 2, of 5 gives 2.
BLR_HD int centre_crop_offset(int size, int crop) {
  const int d = size - crop;
  const int half = d / 2;
  if (d % 2 == 0) return half;
  return (half % 2 == 0) ? half : half + 1;
}

// to_rgba8's conversion of an image value in [-1, 1]: round half up of clamp((x + 1) / 2, 0, 1) · 255.
// NaN maps to 0 (the comparison fails), so the result is always defined.
BLR_HD unsigned char unit_to_u8(float x) {
  float v = (x + 1.0f) * 0.5f;
  v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
  return static_cast<unsigned char>(v * 255.0f + 0.5f);
}

}  // namespace blr::kern
