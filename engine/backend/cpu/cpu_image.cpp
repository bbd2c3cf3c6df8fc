// CpuOps: classification preprocessing (resize shorter side, centre crop, normalise) and the final
// image -> RGBA8 conversion. The per-pixel arithmetic lives in kernels/image_math.h, shared with the
// CUDA kernels, so both backends compute the same numbers in the same order.
#include "engine/backend/cpu/cpu_common.h"
#include "engine/backend/cpu/cpu_ops.h"
#include "kernels/image_math.h"

namespace blr {

using cpu::require_host;
using cpu::require_host_f32;

// Resize-then-crop computed directly: only the crop's pixels are interpolated. Output pixel (cy, cx)
// is pixel (top + cy, left + cx) of the frame resized to rh × rw (OpenCV INTER_CUBIC arithmetic), then
// v/255, optionally read from channel 2 − c (BGR -> RGB), then (v − mean[c]) / std[c].
void CpuOps::preprocess_image(const Tensor& frame, const PreprocessParams& p, Tensor& dst) {
  require_host(frame, DType::U8, "preprocess_image", "frame");
  require_host_f32(dst, "preprocess_image", "dst");
  BLR_CHECK(frame.ndim() == 3 && frame.dim(2) == 3 && frame.stride(2) == 1 && frame.stride(1) == 3,
            "cpu preprocess_image: frame ", frame.describe(), " must be [H, W, 3] with interleaved channels");
  if (p.crop < 1 || p.resize_short < p.crop)
    throw InputError(cat("preprocess: crop ", p.crop, " must be at least 1 and at most the resize size ", p.resize_short));
  for (int c = 0; c < 3; ++c)
    if (!(p.std[c] != 0.0f)) throw InputError(cat("preprocess: std[", c, "] is ", p.std[c], ", must be non-zero"));
  BLR_CHECK(dst.ndim() == 3 && dst.dim(0) == p.crop && dst.dim(1) == p.crop && dst.dim(2) == 3,
            "cpu preprocess_image: dst ", dst.describe(), " must be [", p.crop, ", ", p.crop, ", 3]");
  cpu::require_contiguous(dst, "preprocess_image", "dst");
  const int h = static_cast<int>(frame.dim(0)), w = static_cast<int>(frame.dim(1));
  if (h < 1 || w < 1) throw InputError(cat("preprocess: empty frame ", frame.describe()));

  // torchvision Resize(int): shorter side -> resize_short, longer side truncated.
  const int rh = h <= w ? p.resize_short : kern::resized_long_side(p.resize_short, h, w);
  const int rw = h <= w ? kern::resized_long_side(p.resize_short, w, h) : p.resize_short;
  const int top = kern::centre_crop_offset(rh, p.crop), left = kern::centre_crop_offset(rw, p.crop);
  const float scale_y = static_cast<float>(h) / static_cast<float>(rh);
  const float scale_x = static_cast<float>(w) / static_cast<float>(rw);
  const auto* src = frame.data_as<const unsigned char>();
  const int row_stride = static_cast<int>(frame.stride(0));
  float* out = dst.data_as<float>();

  BLR_OMP_PARALLEL_FOR
  for (int cy = 0; cy < p.crop; ++cy) {
    const float fy = kern::resize_source_coord(top + cy, scale_y);
    for (int cx = 0; cx < p.crop; ++cx) {
      const float fx = kern::resize_source_coord(left + cx, scale_x);
      for (int c = 0; c < 3; ++c) {
        const int sc = p.bgr_to_rgb ? 2 - c : c;
        const float v = kern::bicubic_sample_u8(src, h, w, row_stride, 3, sc, fy, fx);
        out[(static_cast<int64_t>(cy) * p.crop + cx) * 3 + c] = (v / 255.0f - p.mean[c]) / p.std[c];
      }
    }
  }
}

void CpuOps::to_rgba8(const Tensor& img, Tensor& rgba) {
  require_host_f32(img, "to_rgba8", "img");
  require_host(rgba, DType::U8, "to_rgba8", "rgba");
  cpu::require_contiguous(img, "to_rgba8", "img");
  cpu::require_contiguous(rgba, "to_rgba8", "rgba");
  BLR_CHECK(img.ndim() == 4 && img.dim(3) == 3 && rgba.ndim() == 4 && rgba.dim(3) == 4 && rgba.dim(0) == img.dim(0) &&
                rgba.dim(1) == img.dim(1) && rgba.dim(2) == img.dim(2),
            "cpu to_rgba8: img ", img.describe(), " must be [B, H, W, 3] and rgba ", rgba.describe(), " [B, H, W, 4]");
  const int64_t pixels = img.numel() / 3;
  const float* in = img.data_as<const float>();
  auto* out = rgba.data_as<unsigned char>();
  for (int64_t i = 0; i < pixels; ++i) {
    for (int c = 0; c < 3; ++c) out[i * 4 + c] = kern::unit_to_u8(in[i * 3 + c]);
    out[i * 4 + 3] = 255;
  }
}

}  // namespace blr
