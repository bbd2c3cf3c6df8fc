#include "engine/runtime/latent_preview.h"

#include "engine/core/error.h"

namespace blr {

Tensor latent_preview_weight() {
  // Rows: latent channels L1..L4; columns: R, G, B (SD 1.x latent RGB factors).
  static const float kFactors[4][3] = {{0.3512f, 0.2297f, 0.3227f},
                                       {0.3250f, 0.4974f, 0.2350f},
                                       {-0.2829f, 0.1762f, 0.2721f},
                                       {-0.2120f, -0.2616f, -0.7177f}};
  Tensor w = Tensor::zeros({3, 4}, DType::F32);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) w.data_as<float>()[r * 4 + c] = kFactors[c][r];
  return w;
}

PreviewDecoder::PreviewDecoder(Arena& arena, DType dtype) : arena_(arena), dtype_(dtype) {
  const Tensor w = latent_preview_weight();
  weight_ = (dtype == DType::F32 ? w : w.to_dtype(dtype)).to_device(arena, MemCategory::Weights, "latent preview map");
}

void PreviewDecoder::decode(Ops& ops, const Tensor& latent, Tensor& image) {
  BLR_CHECK(latent.ndim() == 4 && latent.dim(3) == 4, "preview decoder: latent must be [B,h,w,4], got ",
            latent.describe());
  const int64_t B = latent.dim(0), h = latent.dim(1), w = latent.dim(2);
  check_shape(image, {B, 8 * h, 8 * w, 3}, "preview decoder image");
  if (planned_ != latent.shape()) {
    auto mk = [&](int64_t f, const char* what) {
      return Tensor::empty({B, f * h, f * w, 3}, dtype_, arena_, MemCategory::Activations, what);
    };
    rgb_ = mk(1, "preview rgb");
    up2_ = mk(2, "preview x2");
    up4_ = mk(4, "preview x4");
    planned_ = latent.shape();
  }
  Tensor rgb2 = rgb_.reshape({B * h * w, 3});
  ops.linear(latent.reshape({B * h * w, 4}), weight_, nullptr, Act::None, rgb2);
  ops.upsample_nearest2x(rgb_, up2_);
  ops.upsample_nearest2x(up2_, up4_);
  ops.upsample_nearest2x(up4_, image);
}

}  // namespace blr
