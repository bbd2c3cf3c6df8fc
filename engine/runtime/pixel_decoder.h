// The "decoder" of a pixel-space DiT (in_channels 3, no VAE — the built-in demo model, docs/MODELS.md):
// the sampled x is already the picture in [−1, 1], so decoding is a copy at scale 1. It lets the Generator,
// `blr generate` and the studio treat pixel-space and latent-space DiTs alike.
#pragma once

#include "engine/runtime/generator.h"

namespace blr {

class PixelDecoder final : public LatentDecoder {
 public:
  explicit PixelDecoder(DType dtype) : dtype_(dtype) {}
  void decode(Ops& ops, const Tensor& latent, Tensor& image) override;
  int64_t upscale() const override { return 1; }
  int64_t channels() const override { return 3; }
  DType dtype() const override { return dtype_; }
  std::string name() const override { return "pixels"; }

 private:
  DType dtype_;
};

// True for a DiT that samples pictures directly (3 channels): it needs no VAE.
bool dit_is_pixel_space(const DitConfig& config);

}  // namespace blr
