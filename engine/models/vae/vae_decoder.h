// The Stable Diffusion VAE decoder (diffusers AutoencoderKL: post_quant_conv + decoder), running on any
// Ops backend: latent [B, h, w, 4] NHWC in model space -> image [B, 8h, 8w, 3] in about [-1, 1].
//
// Structure (REFERENCE.md §4): post_quant_conv 1x1 -> conv_in 3x3 -> mid block (resnet, single-head
// self-attention over all h·w positions, resnet) -> up blocks of resnets, all but the last ending in
// nearest 2x upsample + 3x3 conv -> GroupNorm + SiLU -> conv_out 3x3.
//
// Loading: diffusers key names (both attention styles: to_q/to_k/to_v/to_out.0 and the older
// query/key/value/proj_attn, with [C,C] or [C,C,1,1] weights). Conv weights are permuted once to KRSC
// ([Co, kh, kw, Ci], the layout conv2d takes); q, k, v are packed into one [3C, C] linear so attention
// reads packed qkv; 1/scaling_factor is folded into post_quant_conv's weights (or conv_in's when there
// is no post_quant_conv), so decode() needs no separate scaling pass.
//
// Memory: decode() plans its activation buffers for a (batch, h, w, dtypes) shape on the first call —
// two ping-pong buffers for the running activation and three temporaries, each sized to the largest
// use over the whole decoder — allocates them once from the arena (MemCategory::Activations) and reuses
// them on every later call of that shape, so later calls allocate nothing and can be captured in a CUDA
// graph. The nearest upsample runs as its own op (not fused into the following conv).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "engine/backend/ops.h"
#include "engine/core/tensor.h"
#include "engine/models/vae/vae_config.h"

namespace blr {

class Checkpoint;
namespace vae_detail {
class Pass;
}

class VaeDecoder {
 public:
  // Weights in `dtype` on the arena's device, accounted as MemCategory::Weights. A null arena keeps
  // host f32 weights for the CPU backend (dtype is then ignored). Throws InputError for a checkpoint
  // that is not a VAE decoder or has a missing or wrongly shaped tensor (naming it and both shapes).
  static std::unique_ptr<VaeDecoder> load(const Checkpoint& ckpt, DType dtype, Arena* arena);
  ~VaeDecoder();
  VaeDecoder(const VaeDecoder&) = delete;
  VaeDecoder& operator=(const VaeDecoder&) = delete;

  const VaeConfig& config() const { return config_; }
  DType dtype() const { return dtype_; }
  int64_t parameter_count() const;
  size_t weight_bytes() const;
  // Image shape decode() produces for a latent of `latent_shape` ([B, h, w, C]).
  Shape image_shape(const Shape& latent_shape) const;

  // latent [B, h, w, latent_channels] (any float dtype the backend takes; converted if it differs from
  // the model's), image [B, h·upscale, w·upscale, out_channels] on the same device. Allocates activation
  // buffers only on the first call for a shape; no allocation, sync or host copy afterwards.
  void decode(Ops& ops, const Tensor& latent, Tensor& image);

  // Bytes of activation buffers a decode of `latent_shape` would allocate (latent and image of the given
  // dtypes, contiguous), without allocating: for memory budgets before anything runs.
  size_t planned_activation_bytes(const Shape& latent_shape, DType latent_dtype, DType image_dtype) const;
  // Bytes of activation buffers held for all shapes decoded so far; and their release (graphs captured
  // over them must be dropped first).
  size_t activation_bytes() const;
  void release_buffers();

  struct Weights;  // defined in vae_decoder.cpp

 private:
  VaeDecoder() = default;
  // The whole decoder as a sequence of ops over planned buffers (or, while planning, over shapes only).
  void run(vae_detail::Pass& pass, const Tensor& latent, Tensor& image) const;

  // One planned shape: flat buffers per role (see vae_decoder.cpp).
  struct Buffers {
    std::vector<Tensor> flat;
  };
  // B, h, w, then dtype·2 + contiguous for the latent and the image (each decides whether a copy is needed)
  using PlanKey = std::tuple<int64_t, int64_t, int64_t, int, int>;

  VaeConfig config_;
  DType dtype_ = DType::F32;
  Arena* arena_ = nullptr;
  std::unique_ptr<Weights> w_;
  std::map<PlanKey, Buffers> plans_;
};

}  // namespace blr
