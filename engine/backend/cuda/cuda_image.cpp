// CudaOps: image ops — classification preprocessing of a u8 frame (one kernel: bicubic resize of the
// shorter side, centre crop, BGR -> RGB, /255, mean/std) and float image -> RGBA8. Validates the tensors,
// computes the resize/crop geometry on the host and calls kernels/image.
//
// Geometry (torchvision's Resize(int) + CenterCrop, which timm's eval transform uses): the shorter side
// becomes resize_short, the longer int(resize_short · long / short) (truncated); the crop's top/left
// offset is int(round((resized − crop) / 2.0)) with Python's round-half-to-even. The CPU reference
// (engine/backend/cpu/cpu_image.cpp) must use the same rules.
#include <algorithm>
#include <cmath>

#include "engine/backend/cuda/cuda_ops.h"
#include "engine/backend/cuda/cuda_tensor_args.h"
#include "engine/core/cuda_check.h"
#include "engine/core/error.h"
#include "kernels/image.h"

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
  BLR_CHECK(H > 0 && W > 0 && H < (int64_t{1} << 24) && W < (int64_t{1} << 24), "cuda ", op, ": frame ",
            frame.describe(), " has an unusable size");
  BLR_CHECK(H == 1 || frame.stride(0) >= 3 * W, "cuda ", op, ": frame rows overlap (strides ",
            shape_str(frame.strides()), ")");
  BLR_CHECK(p.crop > 0 && p.resize_short >= p.crop, "cuda ", op, ": crop ", p.crop, " must be positive and fit in ",
            "the resized shorter side ", p.resize_short);
  for (int c = 0; c < 3; ++c)
    BLR_CHECK(std::isfinite(p.mean[c]) && std::isfinite(p.std[c]) && p.std[c] != 0.0f, "cuda ", op, ": mean/std[",
              c, "] = ", p.mean[c], "/", p.std[c], " is not a usable normalisation");
  const kern::DT dt = float_tensor(dst, op, "dst");
  const bool shape_ok = (dst.ndim() == 3 && dst.dim(0) == p.crop && dst.dim(1) == p.crop && dst.dim(2) == 3) ||
                        (dst.ndim() == 4 && dst.dim(0) == 1 && dst.dim(1) == p.crop && dst.dim(2) == p.crop &&
                         dst.dim(3) == 3);
  BLR_CHECK(shape_ok, "cuda ", op, ": dst ", dst.describe(), " must be [", p.crop, ", ", p.crop, ", 3]");
  require_contiguous(dst, op, "dst");

  const int64_t shorter = std::min(H, W), longer = std::max(H, W);
  const int64_t new_short = p.resize_short;
  const int64_t new_long = static_cast<int64_t>(static_cast<double>(p.resize_short) * longer / shorter);
  kern::PreprocessArgs a;
  a.frame = frame.data_as<const uint8_t>();
  a.row_stride = H == 1 ? 3 * W : frame.stride(0);
  a.src_h = static_cast<int>(H);
  a.src_w = static_cast<int>(W);
  a.resized_h = static_cast<int>(H <= W ? new_short : new_long);
  a.resized_w = static_cast<int>(H <= W ? new_long : new_short);
  a.crop = p.crop;
  a.crop_top = static_cast<int>(std::nearbyint((a.resized_h - p.crop) / 2.0));
  a.crop_left = static_cast<int>(std::nearbyint((a.resized_w - p.crop) / 2.0));
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
  BLR_CHECK(img.ndim() >= 1 && img.dim(-1) == 3, "cuda ", op, ": img ", img.describe(), " must be [B, H, W, 3]");
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
