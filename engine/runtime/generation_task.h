// Image generation for the studio: a Generator (DiT + sampler + decoder) run on the task's own worker
// thread, with its own Ops (its own CUDA stream) per DiT, reporting progress after every step (step,
// ms/step, ETA, a preview of the predicted clean image every few steps) and cancellable within one step.
// A job may name two DiT variants (e.g. dense and BLAST): both run the identical request one after the
// other, and the status then carries both results and the PSNR between them (the Compare view).
//
// Decoding: the SD-VAE when one is loaded; a 4-channel DiT without a VAE gets the cheap latent preview
// map (a 4→3 linear map and 8× nearest upsampling, marked as such); a 3-channel DiT works in pixel space
// and its sample is the image. On the CUDA backend the decoded RGBA also stays on the device
// (GenerationOutput::device_rgba) so the studio can hand it to OpenGL through CUDA–GL interop.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/backend/ops.h"
#include "engine/core/arena.h"
#include "engine/core/tensor.h"

namespace blr {

class Session;

struct GenerationJob {
  std::vector<int> dit_ids;  // one DiT, or two to compare (same request on each, in this order)
  int vae_id = -1;           // -1: no VAE (latent preview decode, or pixel space)
  std::vector<int> classes;  // one image per entry
  uint64_t seed = 0;
  int steps = 50;
  SamplerKind sampler = SamplerKind::DDIM;
  float guidance = 4.0f;
  bool previews = true;
  int preview_every = 5;     // steps between preview updates
  bool use_graphs = true;
};

struct GenerationOutput {
  int dit_id = -1;
  std::string name, mode, variant;
  Tensor rgba;         // host u8 [B, H, W, 4]
  Tensor device_rgba;  // the same on the device (CUDA backend only), for CUDA–GL interop
  std::vector<double> step_ms;
  double sampling_ms = 0, decode_ms = 0, total_ms = 0;
  double mean_step_ms = 0, median_step_ms = 0;
  int steps_done = 0;
  bool cancelled = false;
  bool graphs = false;
  std::string decoder;           // "SD-VAE", "latent preview (no VAE loaded)", "pixel space"
  MemoryReport dit_memory;       // the DiT's arena after the run (peaks of this run)
  MemoryReport vae_memory;       // the VAE's arena (empty without a VAE)
  int64_t params = 0;
  size_t weight_bytes = 0;
};

struct GenerationStatus {
  enum class State { Idle, Running, Finished, Cancelled, Failed };
  State state = State::Idle;
  std::string message;
  uint64_t run = 0;
  GenerationJob job;
  int current = 0;                // which of job.dit_ids is running
  int step = 0, steps = 0;        // steps finished of the current model
  double last_step_ms = 0, mean_step_ms = 0;
  double elapsed_s = 0, eta_s = 0;
  std::vector<double> step_ms;    // the current model's steps so far
  Tensor preview;                 // host u8 [B, h, w, 4] of the predicted x0 (latent preview map)
  uint64_t preview_version = 0;
  std::vector<GenerationOutput> outputs;
  std::optional<double> psnr;     // dB between outputs[0] and outputs[1] (compare jobs)
  double max_abs_diff = 0;        // largest |a − b| over RGB, 0..255
};
const char* generation_state_name(GenerationStatus::State s);

// PSNR (dB, peak 255) and largest absolute difference over the RGB channels of two host u8 RGBA images
// of one shape; infinity when identical.
std::pair<double, int> psnr_rgba(const Tensor& a, const Tensor& b);
// Host u8 [B, H, W, 4] from a host f32 [B, H, W, 3] sample in [−1, 1] (pixel-space DiT).
Tensor pixels_to_rgba(const Tensor& sample);

// What CUDA graphs bought for a DiT: mean step time with and without them (0 = not measured yet).
struct GraphEffect {
  double with_graphs_ms = 0, without_graphs_ms = 0;
};

class GenerationTask {
 public:
  explicit GenerationTask(Session& session);
  ~GenerationTask();
  GenerationTask(const GenerationTask&) = delete;
  GenerationTask& operator=(const GenerationTask&) = delete;

  // Starts a job on the worker (InputError when one is running or the job names no DiT).
  void start(const GenerationJob& job);
  void cancel();  // takes effect after the step in flight
  bool busy() const;
  GenerationStatus status() const;
  std::map<int, GraphEffect> graph_effects() const;  // by DiT id
  std::vector<float> step_history() const;            // recent step times over all runs (overlay plot)

 private:
  struct Cache;
  void loop();
  void run_job(const GenerationJob& job, uint64_t run);
  void prune_cache();  // worker thread only

  Session& session_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  GenerationStatus status_;
  std::optional<GenerationJob> pending_;
  std::map<int, GraphEffect> effects_;
  std::vector<float> history_;
  std::atomic<bool> cancel_{false};
  bool stopping_ = false;
  uint64_t runs_ = 0;
  std::unique_ptr<Cache> cache_;  // worker-thread only
  std::thread worker_;
};

}  // namespace blr
