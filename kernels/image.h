// Launchers for image kernels (see image.cu): classification preprocessing of a u8 camera frame in one
// kernel, and float images to RGBA8 for display / PNG.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_types.h"

namespace blr::kern {

// The frame (u8, 3 interleaved channels, rows `row_stride` bytes apart) is resized to resized_h × resized_w
// with OpenCV's INTER_CUBIC arithmetic (kernels/image_math.h: A = −0.75, src = (dst + 0.5)·scale − 0.5,
// replicated border, saturated to [0, 255], kept as a float); the crop × crop window at (crop_top,
// crop_left) of that image is scaled to [0, 1], normalised per output channel with mean/std and written to
// dst [crop, crop, 3] (contiguous). Output channel c reads source channel 2 − c when bgr_to_rgb, else c.
// Only the cropped window is ever computed. Sizes and offsets come from image_math.h's resized_long_side
// and centre_crop_offset.
struct PreprocessArgs {
  const uint8_t* frame = nullptr;
  int row_stride = 0;  // bytes
  int src_h = 0, src_w = 0;
  int resized_h = 0, resized_w = 0;
  int crop_top = 0, crop_left = 0, crop = 0;
  float mean[3] = {0, 0, 0};
  float std[3] = {1, 1, 1};
  bool bgr_to_rgb = true;
  void* dst = nullptr;
};
cudaError_t preprocess_image(const PreprocessArgs& a, DT dst_dt, cudaStream_t stream);

// rgba[p] = (unit_to_u8(x) for the 3 channels, 255) for `pixels` contiguous pixels of a 3-channel image:
// round-half-up of clamp((x + 1)/2, 0, 1)·255, NaN -> 0 (kernels/image_math.h).
cudaError_t to_rgba8(const void* img, int64_t pixels, uint8_t* rgba, DT dt, cudaStream_t stream);

}  // namespace blr::kern
