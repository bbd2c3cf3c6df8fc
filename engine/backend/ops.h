// The Ops interface: every computation a model performs goes through it, so the same model code runs on
// the CPU reference backend (fp32, simple loops) and the CUDA backend (bf16/fp16/fp32 storage, fp32
// accumulation, fused kernels). tests/ops checks every op of the CUDA backend against the CPU backend over
// many shapes, after llama.cpp's test-backend-ops.
//
// Conventions (all backends):
// - Outputs are passed in, already allocated with the right shape and dtype: ops never allocate memory
//   visible to the caller, so a whole forward pass can be planned and captured into a CUDA graph.
// - Activations are row-major [rows, C] or [B, N, C] with C contiguous. Images are NHWC [B, H, W, C].
// - Linear weights are [out, in] (PyTorch nn.Linear). Conv weights are [Co, kh, kw, Ci] (KRSC); loaders
//   permute PyTorch's [Co, Ci, kh, kw] once at load time.
// - Per-sample vectors (adaLN shift/scale/gate) are [B, C] views whose rows may be strided (chunks of
//   one wide adaLN output), broadcast over the N tokens of each sample.
// - The CPU backend requires f32 tensors. The CUDA backend takes f32, f16 or bf16 activations and weights
//   (one dtype per op unless noted) and accumulates in fp32; norm and softmax statistics are fp32.
// - An op a backend does not implement throws NotImplementedError.
#pragma once

#include <cstdint>
#include <string>

#include "engine/core/tensor.h"

namespace blr {

enum class Act : uint8_t { None, GeluErf, GeluTanh, Silu };
const char* act_name(Act a);
Act parse_act(const std::string& name);  // "none", "gelu", "gelu_tanh", "silu"

// Factors of the block low-rank layers (see engine/nn/linear.h and docs/ARCHITECTURE.md for the math).
// All are stored "K-major" like nn.Linear weights: each output row is contiguous over its inputs, which
// is the layout the tensor-core kernels read without any transpose.
struct LowRankWeights {
  Tensor A;  // [r, i]      first:  t = x · Aᵀ
  Tensor B;  // [o, r]      second: y = t · Bᵀ
};
struct MonarchWeights {
  int64_t blocks = 0;  // b
  Tensor R;            // [b, r, i/b]   input block j -> r features; rows [k·r/b, (k+1)·r/b) go to output block k
  Tensor L;            // [b, o/b, r]   output block k reads u_k[j·r/b + q] = t_j[k·r/b + q]
};
struct BlastWeights {
  int64_t blocks = 0;  // b
  Tensor U;            // [b, o/b, r]   U_k, shared along block row k
  Tensor S;            // [b, b, r]     s_kj (row k = output block, column j = input block)
  Tensor V;            // [b, r, i/b]   V_jᵀ, shared along block column j
};

// Normalisation over the last dimension, followed by an optional affine (weight, bias: [C]) or adaLN
// modulation y·(1 + scale) + shift with per-sample shift/scale [B, C].
struct NormParams {
  float eps = 1e-6f;
  const Tensor* weight = nullptr;
  const Tensor* bias = nullptr;
  const Tensor* shift = nullptr;
  const Tensor* scale = nullptr;
};

struct Conv2dParams {
  int stride = 1;
  int pad = 0;
};

// Image preprocessing for classification (timm's eval transform): resize so the shorter side is
// `resize_short` and the longer int(resize_short · long / short) (torchvision Resize(int)), bicubic as
// OpenCV INTER_CUBIC computes it (A = -0.75, pixel centres aligned, border replicated, saturated to
// [0, 255]); centre-crop `crop`×`crop` at int(round((size − crop) / 2)) (torchvision CenterCrop); scale to
// [0, 1]; optionally swap BGR -> RGB; normalise (v − mean) / std per output channel. The shared pixel
// arithmetic is in kernels/image_math.h.
struct PreprocessParams {
  int resize_short = 248;
  int crop = 224;
  float mean[3] = {0.5f, 0.5f, 0.5f};
  float std[3] = {0.5f, 0.5f, 0.5f};
  bool bgr_to_rgb = true;
};

enum class SamplerKind : uint8_t { DDPM, DDIM };

// One denoising step, applied in place to the latent. Everything that changes from step to step is read
// from device-resident tables indexed by a device-resident step counter, so one captured graph serves
// every step (see engine/diffusion/schedule.h for the table columns and the math).
// Per element of image b: eps = model_out[b] (guided on channels [0, guided_channels) when Bm == 2B:
// eps_u + guidance·(eps_c − eps_u), the unconditional half in rows [B, 2B)); the other channels and the
// learned variance come from the conditional half. DDPM adds noise·exp(½·log σ²) unless the step's noise
// mask is 0; DDIM (η = 0) adds none. Noise is Philox (kernels/philox.h) keyed by (seeds[b], step, element
// index within the image in NHWC order), identical on every backend, unless `noise` injects it.
struct SamplerStepArgs {
  SamplerKind kind = SamplerKind::DDPM;
  const Tensor* model_out = nullptr;  // [Bm, H, W, Cm] NHWC; Bm = B, or 2B with guidance (conditional first)
  Tensor* x = nullptr;                // f32 [B, H, W, C] latent, updated in place
  Tensor* model_in = nullptr;         // optional [B or 2B, H, W, C], any float dtype: receives the updated
                                      // latent for the next forward (both halves when it has 2B rows)
  const Tensor* tables = nullptr;     // f32 [K, kScheduleColumns], row s = sampling step s
  Tensor* step = nullptr;             // i32 [1]: current step; the op increments it after reading
  const Tensor* seeds = nullptr;      // i64 [B]: per-image noise seed, so noise is independent of batch position
  const Tensor* noise = nullptr;      // test hook, optional f32 [K, B, H, W, C]: noise[step] replaces Philox
  Tensor* pred_x0 = nullptr;          // optional f32 [B, H, W, C]: receives the predicted clean latent (previews)
  float guidance = 1.0f;              // classifier-free guidance scale (used when Bm == 2B)
  int guided_channels = 3;            // guidance applies to channels [0, guided_channels)
  bool learned_sigma = true;          // Cm == 2C: last C channels interpolate the log-variance
};

class Ops {
 public:
  virtual ~Ops() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;
  // Waits until all queued work has finished (no-op on the CPU).
  virtual void synchronize() {}

  // ---- linear family: y[rows, o] = act(x[rows, i] · Wᵀ + bias), bias [o] optional ----
  virtual void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Act act, Tensor& y) = 0;
  virtual void lowrank_linear(const Tensor& x, const LowRankWeights& w, const Tensor* bias, Act act, Tensor& y) = 0;
  virtual void monarch_linear(const Tensor& x, const MonarchWeights& w, const Tensor* bias, Act act, Tensor& y) = 0;
  virtual void blast_linear(const Tensor& x, const BlastWeights& w, const Tensor* bias, Act act, Tensor& y) = 0;
  // Batched matrix product c[b] = alpha · a[b] · (trans_b ? b[b]ᵀ : b[b]); a [B, M, K], c [B, M, N].
  virtual void matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_b, float alpha) = 0;

  // ---- normalisation and elementwise ----
  // Fused residual + norm: if delta, x += (gate ? gate ⊙ delta : delta) in place; then
  // y = LayerNorm(x) with the affine or modulation in `p`. x, delta, y: [B, N, C]; gate [B, C].
  virtual void add_layer_norm(Tensor& x, const Tensor* delta, const Tensor* gate, const NormParams& p, Tensor& y) = 0;
  // y = x·(1 + scale) + shift; x, y [B, N, C]; shift, scale [B, C].
  virtual void modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, Tensor& y) = 0;
  // x += gate ⊙ delta (gate [B, C] broadcast over tokens) or x += delta when gate is null.
  virtual void gated_add(Tensor& x, const Tensor* gate, const Tensor& delta) = 0;
  virtual void activation(const Tensor& x, Act act, Tensor& y) = 0;
  // y = a + b; b is either a's shape or a suffix of it (broadcast over the leading dims).
  virtual void add(const Tensor& a, const Tensor& b, Tensor& y) = 0;
  // Softmax over the last dimension.
  virtual void softmax(const Tensor& x, Tensor& y) = 0;
  // Strided copy with dtype conversion (any rank up to 4, same shape): builds concatenations via views.
  virtual void copy(const Tensor& src, Tensor& dst) = 0;
  virtual void fill(Tensor& dst, float value) = 0;

  // ---- attention ----
  // Multi-head self-attention. qkv [B, N, 3·H·D] in the order (q|k|v, head, d) as produced by a fused
  // qkv projection; out [B, N, H·D]; softmax(q·kᵀ·scale)·v per head. Any N, any D.
  virtual void attention(const Tensor& qkv, int heads, float scale, Tensor& out) = 0;

  // ---- convolution family (NHWC) ----
  virtual void conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dParams& p, Tensor& y) = 0;
  // GroupNorm over (H, W, C/groups) per sample, affine per channel, then optional SiLU.
  virtual void group_norm(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias, float eps,
                          Act act, Tensor& y) = 0;
  virtual void upsample_nearest2x(const Tensor& x, Tensor& y) = 0;

  // ---- embeddings and layout ----
  // y[b] = table[ids[b]]; ids i32 [B] on this backend's device. The CPU backend throws InputError naming
  // an id outside the table and the table's size.
  virtual void embedding(const Tensor& table, const Tensor& ids, Tensor& y) = 0;
  // Sinusoidal timestep embedding [cos(t·f_i), sin(t·f_i)], f_i = exp(-ln(max_period)·i/(dim/2)), i < dim/2
  // (DiT's order, fp32 math); an odd dim gets a zero last column. t f32 [B], y [B, dim].
  virtual void timestep_embedding(const Tensor& t, float max_period, Tensor& y) = 0;
  // img [B, H, W, C] -> tokens [B, (H/p)·(W/p), p·p·C], token order row-major, features (p_row, p_col, c).
  virtual void patchify(const Tensor& img, int patch, Tensor& tokens) = 0;
  virtual void unpatchify(const Tensor& tokens, int patch, Tensor& img) = 0;

  // ---- classification, images, sampling ----
  // Top-k of softmax(logits) per row: probs f32 [B, k], indices i32 [B, k], descending by logit, equal
  // logits in increasing index order.
  virtual void softmax_topk(const Tensor& logits, Tensor& probs, Tensor& indices) = 0;
  // frame u8 [H, W, 3] (BGR unless params say otherwise) -> dst [crop, crop, 3] normalised (f32/bf16/f16).
  virtual void preprocess_image(const Tensor& frame, const PreprocessParams& p, Tensor& dst) = 0;
  // img [B, H, W, 3] in [-1, 1] -> rgba u8 [B, H, W, 4]: round(clamp((x+1)/2, 0, 1)·255), alpha 255.
  virtual void to_rgba8(const Tensor& img, Tensor& rgba) = 0;
  // Writes t[b] = tables[step, kColTimestep] for every b (the model's timestep input for this step).
  virtual void sampler_timesteps(const Tensor& tables, const Tensor& step, Tensor& t) = 0;
  virtual void sampler_step(const SamplerStepArgs& args) = 0;

  // ---- convenience built on the virtual ops ----
  void layer_norm(const Tensor& x, const NormParams& p, Tensor& y);
};

}  // namespace blr
