#include "engine/runtime/pixel_decoder.h"

#include "engine/core/error.h"

namespace blr {

void PixelDecoder::decode(Ops& ops, const Tensor& latent, Tensor& image) {
  BLR_CHECK(latent.ndim() == 4 && latent.dim(3) == 3, "pixel decoder: input must be [B,h,w,3], got ",
            latent.describe());
  check_shape(image, latent.shape(), "pixel decoder image");
  ops.copy(latent, image);
}

bool dit_is_pixel_space(const DitConfig& config) { return config.in_channels == 3; }

}  // namespace blr
