// CudaOps: image ops — classification preprocessing of a u8 frame (one kernel: bicubic resize of the
// shorter side, centre crop, BGR -> RGB, /255, mean/std) and float image -> RGBA8. Validates the tensors,
// computes the resize/crop geometry with the helpers the CPU reference uses (kernels/image_math.h:
// torchvision's Resize(int) and CenterCrop rules) and calls kernels/image.
#include <cstdint>

#include "engine/backend/cuda/cuda_ops.h"
#include "engine/backend/cuda/cuda_tensor_args.h"
#include "engine/core/cuda_check.h"
#include "engine/core/error.h"
#include "kernels/image.h"
#include "kernels/image_math.h"

namespace blr {

using namespace cuda_args;

void CudaOps::preprocess_image(const Tensor& frame, const PreprocessParams& p, Tensor& dst) {
  const char* op = "preprocess_image";
  require_cuda(frame, op, "frame");
  require_dtype(frame, DType::U8, op, "frame");
  BLR_CHECK(frame.ndim() == 3 && frame.dim(2) == 3 && frame.stride(2) == 1 && frame.stride(1) == 3, "cuda ", op,
            ": frame ", frame.describe(), " must be [H, W, 3] with interleaved channels (strides ",
            shape_str(frame.strides()), ")");
  const int64_t H = frame.dim(0), W = frame.dim(1);
  if (H < 1 || W < 1) throw InputError(cat("preprocess: empty frame ", frame.describe()));
  const int64_t row_stride = H == 1 ? 3 * W : frame.stride(0);
  BLR_CHECK(row_stride >= 3 * W && row_stride * H < (int64_t{1} << 31), "cuda ", op, ": frame ", frame.describe(),
            " with strides ", shape_str(frame.strides()), " is too large or has overlapping rows");
  // The same checks and messages as the CPU reference: these are user settings.
  if (p.crop < 1 || p.resize_short < p.crop)
    throw InputError(cat("preprocess: crop ", p.crop, " must be at least 1 and at most the resize size ", p.resize_short));
  for (int c = 0; c < 3; ++c)
    if (!(p.std[c] != 0.0f)) throw InputError(cat("preprocess: std[", c, "] is ", p.std[c], ", must be non-zero"));
  const kern::DT dt = float_tensor(dst, op, "dst");
  require_shape(dst, {p.crop, p.crop, 3}, op, "dst");
  require_contiguous(dst, op, "dst");

  kern::PreprocessArgs a;
  a.frame = frame.data_as<const uint8_t>();
  a.row_stride = static_cast<int>(row_stride);
  a.src_h = static_cast<int>(H);
  a.src_w = static_cast<int>(W);
  a.resized_h = H <= W ? p.resize_short : kern::resized_long_side(p.resize_short, a.src_h, a.src_w);
  a.resized_w = H <= W ? kern::resized_long_side(p.resize_short, a.src_w, a.src_h) : p.resize_short;
  a.crop = p.crop;
  a.crop_top = kern::centre_crop_offset(a.resized_h, p.crop);
  a.crop_left = kern::centre_crop_offset(a.resized_w, p.crop);
  for (int c = 0; c < 3; ++c) {
    a.mean[c] = p.mean[c];
    a.std[c] = p.std[c];
  }
  a.bgr_to_rgb = p.bgr_to_rgb;
  a.dst = dst.data();
  BLR_CUDA_CHECK(kern::preprocess_image(a, dt, stream()));
}

void CudaOps::to_rgba8(const Tensor& img, Tensor& rgba) {
  const char* op = "to_rgba8";
  const kern::DT dt = float_tensor(img, op, "img");
  BLR_CHECK(img.ndim() == 4 && img.dim(3) == 3, "cuda ", op, ": img ", img.describe(), " must be [B, H, W, 3]");
  require_contiguous(img, op, "img");
  require_cuda(rgba, op, "rgba");
  require_dtype(rgba, DType::U8, op, "rgba");
  Shape expected = img.shape();
  expected.back() = 4;
  require_shape(rgba, expected, op, "rgba");
  require_contiguous(rgba, op, "rgba");
  BLR_CUDA_CHECK(kern::to_rgba8(img.data(), img.numel() / 3, rgba.data_as<uint8_t>(), dt, stream()));
}

}  // namespace blr
