// Cheap previews of SD-VAE latents without running the VAE: a fixed linear map from the 4 latent channels
// (model space, i.e. already scaled by 0.18215 — what DiT samples) to RGB in ≈[−1, 1], then nearest
// upsampling. The coefficients are the widely used SD 1.x "latent RGB factors" (published in ComfyUI's
// comfy/latent_formats.py, class SD15), which were fitted by least squares of decoded pixels on latents of
// the same VAE family DiT uses (sd-vae-ft-ema/-mse share the SD 1.x latent space). They are numbers, not
// code: a rough colour impression of the latent, good enough for a live preview, never for output.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/runtime/generator.h"

namespace blr {

// Host f32 [3, 4]: rgb = W · latent (row r = output channel r), as Ops::linear weights.
Tensor latent_preview_weight();

// A LatentDecoder that applies the preview map and upsamples by 8 (nearest): "decodes" in microseconds.
// Used by `blr generate --preview-decode` and by tests that need images without a VAE. Buffers are
// allocated on the first call for each shape.
class PreviewDecoder final : public LatentDecoder {
 public:
  PreviewDecoder(Arena& arena, DType dtype);
  void decode(Ops& ops, const Tensor& latent, Tensor& image) override;
  DType dtype() const override { return dtype_; }
  std::string name() const override { return "latent-preview"; }

 private:
  Arena& arena_;
  DType dtype_;
  Tensor weight_;
  Shape planned_;
  Tensor rgb_, up2_, up4_;
};

}  // namespace blr
