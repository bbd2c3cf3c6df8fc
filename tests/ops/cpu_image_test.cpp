// CPU reference image ops: to_rgba8 at hand-picked values, the resize/crop rules of torchvision, and
// preprocess_image against (a) a second, independent bicubic evaluation in double on tiny images,
// (b) exact pixel copies when nothing is resized, and (c) OpenCV's own cv::resize(INTER_CUBIC) + crop
// where OpenCV is available.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/core/error.h"
#include "kernels/image_math.h"
#include "tests/common/test_util.h"
#include "tests/ops/cpu_ref_util.h"

#if defined(BLR_HAVE_OPENCV)
#include <opencv2/imgproc.hpp>
#endif

namespace blr {
namespace {

using test::expect_all_near;

Tensor random_frame(int h, int w, uint64_t seed) {
  Tensor f = Tensor::zeros({h, w, 3}, DType::U8);
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < f.numel(); ++i) f.data_as<uint8_t>()[i] = static_cast<uint8_t>(rng() & 255);
  return f;
}

// A smooth frame (gradients and a slow wave), closer to a photograph than noise.
Tensor smooth_frame(int h, int w) {
  Tensor f = Tensor::zeros({h, w, 3}, DType::U8);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        const double v = 128 + 100 * std::sin(0.05 * x * (c + 1) + 0.03 * y) * std::cos(0.02 * y);
        f.data_as<uint8_t>()[(y * w + x) * 3 + c] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
      }
  return f;
}

// Keys' cubic convolution kernel with a = −0.75 in its piecewise form (OpenCV's code uses a different,
// factored expression of the same polynomial).
double keys(double x) {
  const double a = -0.75, t = std::fabs(x);
  if (t <= 1) return (a + 2) * t * t * t - (a + 3) * t * t + 1;
  if (t < 2) return a * t * t * t - 5 * a * t * t + 8 * a * t - 4 * a;
  return 0;
}

// Pixel (ry, rx) of the frame resized to rh × rw, in double: Σ keys(f − i) · src[clamp(i)] over the
// taps within 2 of the source coordinate f = (r + 0.5)·in/out − 0.5, saturated to [0, 255].
double resized_pixel(const Tensor& frame, int rh, int rw, int ry, int rx, int c) {
  const int h = int(frame.dim(0)), w = int(frame.dim(1));
  const double fy = (ry + 0.5) * h / rh - 0.5, fx = (rx + 0.5) * w / rw - 0.5;
  double acc = 0;
  for (int iy = int(std::floor(fy)) - 1; iy <= int(std::floor(fy)) + 2; ++iy)
    for (int ix = int(std::floor(fx)) - 1; ix <= int(std::floor(fx)) + 2; ++ix) {
      const int cy = std::clamp(iy, 0, h - 1), cx = std::clamp(ix, 0, w - 1);
      acc += keys(fy - iy) * keys(fx - ix) * frame.at({cy, cx, c});
    }
  return std::clamp(acc, 0.0, 255.0);
}

PreprocessParams raw_params(int resize_short, int crop) {
  PreprocessParams p;
  p.resize_short = resize_short;
  p.crop = crop;
  for (int c = 0; c < 3; ++c) p.mean[c] = 0.0f, p.std[c] = 1.0f;
  p.bgr_to_rgb = false;
  return p;
}

TEST(CpuImage, ToRgba8RoundsClampsAndSetsAlpha) {
  CpuOps ops;
  // (x+1)/2·255 rounded half up: −1 -> 0, 1 -> 255, 0 -> 127.5 -> 128, −0.5 -> 63.75 -> 64,
  // out of range clamps, NaN -> 0.
  const Tensor img = Tensor::from_vector({1, 1, 3, 3}, {-1, 1, 0, -0.5f, -2, 2, NAN, 0.2f, 1e-3f});
  Tensor rgba = Tensor::zeros({1, 1, 3, 4}, DType::U8);
  ops.to_rgba8(img, rgba);
  // 0.2 -> 0.6·255 = 153; 1e-3 -> 0.5005·255 = 127.63 -> 128.
  const std::vector<int> want = {0, 255, 128, 255, 64, 0, 255, 255, 0, 153, 128, 255};
  for (int i = 0; i < 12; ++i) EXPECT_EQ(int(rgba.data_as<uint8_t>()[i]), want[i]) << "byte " << i;
  Tensor wrong = Tensor::zeros({1, 1, 3, 3}, DType::U8);
  EXPECT_THROW(ops.to_rgba8(img, wrong), Error);
}

TEST(CpuImage, TorchvisionResizeAndCropRules) {
  // Resize(248) of 640×480: the long side is int(248·640/480) = int(330.67) = 330.
  EXPECT_EQ(kern::resized_long_side(248, 640, 480), 330);
  EXPECT_EQ(kern::resized_long_side(248, 500, 333), 372);  // 372.37
  EXPECT_EQ(kern::resized_long_side(4, 12, 6), 8);         // exact
  // CenterCrop: int(round((size − crop)/2)) with round half to even.
  EXPECT_EQ(kern::centre_crop_offset(248, 224), 12);
  EXPECT_EQ(kern::centre_crop_offset(225, 224), 0);  // round(0.5) = 0
  EXPECT_EQ(kern::centre_crop_offset(227, 224), 2);  // round(1.5) = 2
  EXPECT_EQ(kern::centre_crop_offset(229, 224), 2);  // round(2.5) = 2
  EXPECT_EQ(kern::centre_crop_offset(231, 224), 4);  // round(3.5) = 4
  EXPECT_EQ(kern::centre_crop_offset(224, 224), 0);
}

TEST(CpuImage, CubicWeightsMatchKeysKernel) {
  for (float t : {0.0f, 0.125f, 0.25f, 0.5f, 0.7f, 0.999f}) {
    float w[4];
    kern::cubic_weights(t, w);
    for (int k = 0; k < 4; ++k) EXPECT_NEAR(w[k], keys(t + 1 - k), 1e-6) << "t " << t << " tap " << k;
  }
}

TEST(CpuImage, PreprocessWithoutResizeCopiesPixels) {
  CpuOps ops;
  // resize_short = the short side and crop = the whole image: every weight is (0, 1, 0, 0).
  const Tensor frame = random_frame(4, 4, 1);
  PreprocessParams p = raw_params(4, 4);
  Tensor dst = Tensor::zeros({4, 4, 3});
  ops.preprocess_image(frame, p, dst);
  std::vector<double> want;
  for (int64_t i = 0; i < 48; ++i) want.push_back(frame.data_as<uint8_t>()[i] / 255.0);
  expect_all_near(dst, want, 1e-7, "identity preprocess");

  // BGR -> RGB and normalisation: output channel c reads source channel 2 − c, then (v − mean) / std.
  p.bgr_to_rgb = true;
  const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
  for (int c = 0; c < 3; ++c) p.mean[c] = mean[c], p.std[c] = stdv[c];
  ops.preprocess_image(frame, p, dst);
  want.clear();
  for (int64_t px = 0; px < 16; ++px)
    for (int c = 0; c < 3; ++c) want.push_back((frame.data_as<uint8_t>()[px * 3 + 2 - c] / 255.0 - mean[c]) / stdv[c]);
  expect_all_near(dst, want, 1e-5, "bgr->rgb and normalised");
  // A centre crop without resizing is a window: 6×6 frame, crop 3 at offset round(1.5) = 2.
  const Tensor f6 = random_frame(6, 6, 2);
  PreprocessParams p6 = raw_params(6, 3);
  Tensor d3 = Tensor::zeros({3, 3, 3});
  ops.preprocess_image(f6, p6, d3);
  want.clear();
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t x = 0; x < 3; ++x)
      for (int64_t c = 0; c < 3; ++c) want.push_back(f6.at({y + 2, x + 2, c}) / 255.0);
  expect_all_near(d3, want, 1e-7, "crop window");
}

TEST(CpuImage, PreprocessMatchesDoubleBicubicOnTinyImages) {
  CpuOps ops;
  struct Case {
    int h, w, resize_short, crop;
  };
  // Landscape downscale 6×11 -> 4×7 with left = round(1.5) = 2; portrait upscale 5×3 -> 8×5 (rh = int(8·5/3) = 13);
  // a constant-ish gradient; a 1×1 frame.
  for (const Case& k : {Case{6, 11, 4, 4}, Case{5, 3, 5, 4}, Case{3, 5, 8, 6}, Case{1, 1, 3, 2}, Case{7, 7, 3, 3}}) {
    SCOPED_TRACE(std::to_string(k.h) + "x" + std::to_string(k.w) + " -> short " + std::to_string(k.resize_short) +
                 ", crop " + std::to_string(k.crop));
    const Tensor frame = random_frame(k.h, k.w, 7 + k.h * 31 + k.w);
    const int rh = k.h <= k.w ? k.resize_short : k.resize_short * k.h / k.w;
    const int rw = k.h <= k.w ? k.resize_short * k.w / k.h : k.resize_short;
    const int top = kern::centre_crop_offset(rh, k.crop), left = kern::centre_crop_offset(rw, k.crop);
    Tensor dst = Tensor::zeros({k.crop, k.crop, 3});
    ops.preprocess_image(frame, raw_params(k.resize_short, k.crop), dst);
    std::vector<double> want;
    for (int y = 0; y < k.crop; ++y)
      for (int x = 0; x < k.crop; ++x)
        for (int c = 0; c < 3; ++c) want.push_back(resized_pixel(frame, rh, rw, top + y, left + x, c) / 255.0);
    // fp32 weights, coordinates and sums on values up to 255 vs double: ~1e-4 of a level; 1e-3 levels
    // is a margin that still catches a wrong tap, offset or coefficient (those move values by whole levels).
    expect_all_near(dst, want, 1e-3 / 255, "preprocess");
  }
  const Tensor frame = random_frame(8, 8, 3);
  Tensor dst = Tensor::zeros({5, 5, 3});
  EXPECT_THROW(ops.preprocess_image(frame, raw_params(4, 5), dst), InputError);  // crop larger than the resize
}

#if defined(BLR_HAVE_OPENCV)
// OpenCV's u8 path quantises each weight to 1/2048 and rounds the result to an integer level; we keep
// exact float weights and no final rounding. The rounding alone is ≤ 0.5 level and the weight
// quantisation ≤ ~0.25 level (4 taps × 0.5/2048 per axis × 255), so the two agree within 1 level.
TEST(CpuImage, PreprocessMatchesOpenCvResizeAndCrop) {
  CpuOps ops;
  struct Case {
    int h, w, resize_short, crop;
    bool noise;
  };
  for (const Case& k : {Case{480, 640, 248, 224, false}, Case{480, 640, 248, 224, true}, Case{37, 53, 31, 24, true},
                        Case{20, 13, 32, 30, true}, Case{333, 500, 248, 224, false}, Case{600, 401, 248, 224, true}}) {
    SCOPED_TRACE(std::to_string(k.h) + "x" + std::to_string(k.w) + (k.noise ? " noise" : " smooth"));
    const Tensor frame = k.noise ? random_frame(k.h, k.w, 11 + k.h) : smooth_frame(k.h, k.w);
    const int rh = k.h <= k.w ? k.resize_short : kern::resized_long_side(k.resize_short, k.h, k.w);
    const int rw = k.h <= k.w ? kern::resized_long_side(k.resize_short, k.w, k.h) : k.resize_short;
    const cv::Mat src(k.h, k.w, CV_8UC3, frame.data());
    cv::Mat resized;
    cv::resize(src, resized, cv::Size(rw, rh), 0, 0, cv::INTER_CUBIC);
    const int top = kern::centre_crop_offset(rh, k.crop), left = kern::centre_crop_offset(rw, k.crop);
    Tensor dst = Tensor::zeros({k.crop, k.crop, 3});
    ops.preprocess_image(frame, raw_params(k.resize_short, k.crop), dst);
    double max_diff = 0, sum_diff = 0;
    for (int y = 0; y < k.crop; ++y)
      for (int x = 0; x < k.crop; ++x)
        for (int c = 0; c < 3; ++c) {
          const double ours = dst.at({y, x, c}) * 255.0;
          const double theirs = resized.at<cv::Vec3b>(top + y, left + x)[c];
          max_diff = std::max(max_diff, std::fabs(ours - theirs));
          sum_diff += std::fabs(ours - theirs);
        }
    EXPECT_LE(max_diff, 1.0) << "levels of 255";
    // Rounding to integers alone averages 0.25 level; anything systematic (a shifted tap) would be far more.
    EXPECT_LE(sum_diff / (k.crop * k.crop * 3), 0.35) << "mean difference in levels";
  }
}
#endif

}  // namespace
}  // namespace blr
