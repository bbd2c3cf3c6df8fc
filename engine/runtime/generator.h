// Generator: class-conditional image generation = DiT + diffusion sampler + latent decoder (SD-VAE).
//
// One request (classes, seed, steps, sampler, guidance) runs K denoising steps. Each step is one unit of
// work — timestep lookup, the DiT forward on [x; x] with labels [y; null] (one batch of 2B with guidance,
// B without), guidance on channels 0-2 and the sampler update, all through Ops — which GraphRunner
// captures once as a CUDA graph and replays K times: what changes per step (timestep, coefficients, the
// noise counter) is read on the device from the step table and a device step counter that the update
// increments. Every buffer is planned before the first step; nothing allocates or synchronises inside the
// step. After each step an event is recorded; the host waits for step s only after step s+1 is queued,
// then calls the step callback (progress, preview, cancel), so callbacks never stall the GPU nor break
// graph replay. The adaLN modulations of all steps can be precomputed in one GEMM before the first step
// (GeneratorOptions::precompute_conditioning); each step then only gathers its row. Previews map the predicted clean latent x0 to RGB with a fixed 4→3 linear map
// (latent_preview.h) outside the graph, double-buffered into pinned host memory.
// The decoder runs as a second CUDA graph (decode + RGBA8 conversion) over buffers kept per batch size
// across requests. It is warmed up before the first step of the first request of a batch size — one
// eager decode (the decoder plans its buffers, cuDNN picks its algorithms, kernel modules load) and the
// capture — so GenerateResult::decode_ms is a replay of a captured graph, and the one-time cost is
// reported apart as decode_warmup_ms.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/ops.h"
#include "engine/core/arena.h"
#include "engine/core/tensor.h"
#include "engine/models/dit/dit_model.h"

namespace blr {

// Anything that turns a model-space latent [B, h, w, C] into an image [B, f·h, f·w, 3] in ≈[−1, 1].
class LatentDecoder {
 public:
  virtual ~LatentDecoder() = default;
  virtual void decode(Ops& ops, const Tensor& latent, Tensor& image) = 0;
  virtual int64_t upscale() const { return 8; }
  virtual int64_t channels() const { return 4; }  // C of the latents it takes
  virtual DType dtype() const = 0;  // dtype of the latent and image tensors it takes
  virtual std::string name() const = 0;
};

// Adapts any decoder class with `void decode(Ops&, const Tensor&, Tensor&)` (engine/models/vae's
// VaeDecoder) without this header depending on it.
template <class Vae>
class DecoderRef final : public LatentDecoder {
 public:
  DecoderRef(Vae& vae, DType dtype, std::string name) : vae_(vae), dtype_(dtype), name_(std::move(name)) {}
  void decode(Ops& ops, const Tensor& latent, Tensor& image) override { vae_.decode(ops, latent, image); }
  DType dtype() const override { return dtype_; }
  std::string name() const override { return name_; }

 private:
  Vae& vae_;
  DType dtype_;
  std::string name_;
};

struct GenerateRequest {
  std::vector<int> classes;          // one image per entry
  uint64_t seed = 0;                 // image i uses seed + i (noise independent of batch position)
  int steps = 250;
  SamplerKind sampler = SamplerKind::DDPM;
  float guidance = 4.0f;             // 1.0 runs the conditional half only (batch B instead of 2B)
  int guided_channels = 3;           // DiT guides eps channels 0-2 only
  bool decode = true;                // run the decoder (else the result holds the latent only)
};

struct StepInfo {
  int step = 0;           // 0-based index of the step that just finished
  int steps = 0;          // K
  double step_ms = 0;     // device time of this step (CUDA events; host clock on the CPU backend)
  double elapsed_ms = 0;  // since the first step was queued
  const Tensor* preview = nullptr;  // host u8 [B, h, w, 4] of the predicted x0, when previews are on
};
// Return false to cancel: the generator stops after the steps already queued.
using StepCallback = std::function<bool(const StepInfo&)>;

struct GenerateResult {
  Tensor latent;              // host f32 [B, h, w, C] (model space)
  Tensor rgba;                // host u8 [B, H, W, 4], when decoded
  std::vector<double> step_ms;
  double sampling_ms = 0, decode_ms = 0, total_ms = 0;
  double conditioning_ms = 0;  // precomputing every step's modulation (part of sampling_ms); 0 when off
  // decode_ms: device time (CUDA events) of latent copy + decoder + RGBA8, a graph replay on the CUDA
  // backend with graphs on. decode_warmup_ms: host time of the decoder's one-time warm-up (eager planning
  // decode, algorithm search, capture) when this request did it; 0 otherwise. Part of total_ms only.
  double decode_warmup_ms = 0;
  int steps_done = 0;
  bool cancelled = false;
  MemoryReport memory;        // the arena after the run, peaks included
};

struct GeneratorOptions {
  bool use_graphs = true;     // CUDA backend: capture each step once and replay it
  bool previews = false;      // compute the x0 preview after each step for the callback
  // The adaLN modulations depend only on (timestep, label), all known before the first step: compute
  // them for every step in one GEMM at the start (DitModel::conditioning), and let each step gather its
  // row with one copy instead of running the memory-bound [Bm, H]·[H, depth·6H + 2H] GEMM. Used when the
  // table (K·Bm·(depth·6H + 2H) elements: 196 MB for DiT-XL/2, 1 image, 250 steps, bf16) fits the limit.
  bool precompute_conditioning = true;
  size_t precompute_limit_bytes = size_t{512} << 20;
};

class Generator {
 public:
  // `decoder` may be null (latents only). The models and the arena must outlive the generator.
  Generator(Ops& ops, const DitModel& dit, LatentDecoder* decoder, Arena& arena, GeneratorOptions options = {});
  ~Generator();
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // Validates the request (InputError for bad classes, steps, guidance) and runs it.
  GenerateResult generate(const GenerateRequest& request, const StepCallback& callback = {});
  // Throws InputError naming the problem; generate() calls it first.
  void validate(const GenerateRequest& request) const;

  // Test hooks. Initial latent host f32 [B, h, w, C] replaces the seeded x_T; noise host f32
  // [K, B, h, w, C] replaces the seeded step noise. Both apply to the next generate() only.
  void inject_initial_latent(Tensor host_latent);
  void inject_noise(Tensor host_noise);

  size_t graph_captures() const;  // how many CUDA graphs were captured (tests check one per shape)
  size_t decode_graph_captures() const;  // the same for the decoder's graph
  const DitModel& dit() const { return dit_; }

 private:
  struct Plan;
  struct DecodePlan;
  void prepare(const GenerateRequest& request);
  // Decoder buffers for B images (kept while B stays the same) and, the first time, the warm-up;
  // returns the warm-up's host milliseconds (0 when already warm).
  double prepare_decoder(int64_t B);
  void decode_work();
  void precompute_conditioning(const GenerateRequest& request);
  void run_step();
  void enqueue_preview(int slot);

  Ops& ops_;
  const DitModel& dit_;
  LatentDecoder* decoder_;
  Arena& arena_;
  GeneratorOptions options_;
  std::unique_ptr<Plan> plan_;
  std::unique_ptr<DecodePlan> decode_;
  Tensor injected_latent_, injected_noise_;
};

}  // namespace blr
