#include "engine/runtime/generation_task.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/cuda_check.h"
#include "engine/core/error.h"
#include "engine/models/dit/dit_model.h"
#include "engine/models/vae/vae_decoder.h"
#include "engine/runtime/generator.h"
#include "engine/runtime/latent_preview.h"
#include "engine/runtime/pixel_decoder.h"
#include "engine/runtime/session.h"

namespace blr {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kHistory = 600;

// The SD-VAE behind the Generator's decoder interface.
class VaeRef final : public LatentDecoder {
 public:
  explicit VaeRef(VaeDecoder& vae) : vae_(vae) {}
  void decode(Ops& ops, const Tensor& latent, Tensor& image) override { vae_.decode(ops, latent, image); }
  int64_t upscale() const override { return vae_.config().upscale(); }
  DType dtype() const override { return vae_.dtype(); }
  std::string name() const override { return "SD-VAE"; }

 private:
  VaeDecoder& vae_;
};

// Wraps a decoder and, on the CUDA backend, also converts its output to RGBA8 into a device buffer of
// its own: the image the studio hands to OpenGL without a trip through host memory. Its buffer is
// allocated on the first decode of a shape — the Generator's eager warm-up decode, which precedes the
// capture of its decode graph, so the graph's replays write the same buffer.
class DisplayDecoder final : public LatentDecoder {
 public:
  DisplayDecoder(LatentDecoder& inner, Arena& arena, std::string name)
      : inner_(inner), arena_(arena), name_(std::move(name)) {}
  void decode(Ops& ops, const Tensor& latent, Tensor& image) override {
    inner_.decode(ops, latent, image);
    if (ops.device() != Device::CUDA) return;
    const Shape shape{image.dim(0), image.dim(1), image.dim(2), 4};
    if (!rgba_.defined() || rgba_.shape() != shape)
      rgba_ = Tensor::empty(shape, DType::U8, arena_, MemCategory::Activations, "studio display rgba");
    ops.to_rgba8(image, rgba_);
  }
  int64_t upscale() const override { return inner_.upscale(); }
  int64_t channels() const override { return inner_.channels(); }
  DType dtype() const override { return inner_.dtype(); }
  std::string name() const override { return name_; }
  const Tensor& rgba() const { return rgba_; }

 private:
  LatentDecoder& inner_;
  Arena& arena_;
  std::string name_;
  Tensor rgba_;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

const char* generation_state_name(GenerationStatus::State s) {
  using S = GenerationStatus::State;
  switch (s) {
    case S::Idle: return "idle";
    case S::Running: return "running";
    case S::Finished: return "finished";
    case S::Cancelled: return "cancelled";
    case S::Failed: return "failed";
  }
  return "?";
}

std::pair<double, int> psnr_rgba(const Tensor& a, const Tensor& b) {
  BLR_CHECK(a.dtype() == DType::U8 && b.dtype() == DType::U8 && a.shape() == b.shape() && a.dim(-1) == 4,
            "psnr_rgba: two u8 RGBA images of one shape expected, got ", a.describe(), " and ", b.describe());
  const Tensor ac = a.is_contiguous() ? a : a.clone();
  const Tensor bc = b.is_contiguous() ? b : b.clone();
  const uint8_t* pa = ac.data_as<const uint8_t>();
  const uint8_t* pb = bc.data_as<const uint8_t>();
  const int64_t pixels = a.numel() / 4;
  double se = 0;
  int max_diff = 0;
  for (int64_t i = 0; i < pixels; ++i)
    for (int c = 0; c < 3; ++c) {
      const int d = static_cast<int>(pa[i * 4 + c]) - static_cast<int>(pb[i * 4 + c]);
      se += static_cast<double>(d) * d;
      max_diff = std::max(max_diff, std::abs(d));
    }
  const double mse = se / static_cast<double>(pixels * 3);
  const double psnr = mse == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(255.0 * 255.0 / mse);
  return {psnr, max_diff};
}

Tensor pixels_to_rgba(const Tensor& sample) {
  BLR_CHECK(sample.ndim() == 4 && sample.dim(3) == 3, "pixels_to_rgba: [B, H, W, 3] expected, got ",
            sample.describe());
  const Tensor s = sample.dtype() == DType::F32 && sample.is_contiguous() ? sample : sample.to_dtype(DType::F32);
  const int64_t pixels = s.numel() / 3;
  std::vector<uint8_t> bytes(static_cast<size_t>(pixels * 4));
  const float* p = s.data_as<const float>();
  for (int64_t i = 0; i < pixels; ++i) {
    for (int c = 0; c < 3; ++c) {
      const float v = std::clamp((p[i * 3 + c] + 1.0f) * 0.5f, 0.0f, 1.0f);
      bytes[static_cast<size_t>(i * 4 + c)] = static_cast<uint8_t>(std::lround(v * 255.0f));
    }
    bytes[static_cast<size_t>(i * 4 + 3)] = 255;
  }
  auto holder = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  return Tensor::from_blob(holder->data(), {s.dim(0), s.dim(1), s.dim(2), 4}, DType::U8, Device::CPU, holder);
}

struct GenerationTask::Cache {
  struct Entry {
    std::shared_ptr<LoadedModel> dit, vae;
    int vae_id = -1;
    bool graphs = true, previews = true;
    std::unique_ptr<Ops> ops;
    std::unique_ptr<LatentDecoder> inner;
    std::unique_ptr<DisplayDecoder> display;
    std::unique_ptr<Generator> generator;
    std::string decoder_name;
  };
  std::map<int, Entry> entries;
};

GenerationTask::GenerationTask(Session& session) : session_(session), cache_(std::make_unique<Cache>()) {
  worker_ = std::thread([this] { loop(); });
}

GenerationTask::~GenerationTask() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    pending_.reset();
  }
  cancel_ = true;
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void GenerationTask::start(const GenerationJob& job) {
  if (job.dit_ids.empty()) throw InputError("no DiT model loaded: load one in the Models tab first");
  if (job.classes.empty()) throw InputError("no class chosen");
  std::lock_guard<std::mutex> lock(mutex_);
  if (status_.state == GenerationStatus::State::Running || pending_)
    throw InputError("a generation is already running: cancel it first");
  cancel_ = false;
  pending_ = job;
  status_ = GenerationStatus{};
  status_.state = GenerationStatus::State::Running;
  status_.run = ++runs_;
  status_.job = job;
  status_.steps = job.steps;
  status_.message = "starting";
  cv_.notify_all();
}

void GenerationTask::cancel() { cancel_ = true; }

bool GenerationTask::busy() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_.state == GenerationStatus::State::Running || pending_.has_value();
}

GenerationStatus GenerationTask::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

std::map<int, GraphEffect> GenerationTask::graph_effects() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return effects_;
}

std::vector<float> GenerationTask::step_history() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return history_;
}

void GenerationTask::loop() {
  session_.configure_worker_thread();
  for (;;) {
    GenerationJob job;
    uint64_t run = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || pending_.has_value(); })) {
        lock.unlock();
        prune_cache();  // idle: let go of models the session has unloaded, so their memory is freed
        continue;
      }
      if (stopping_) break;
      job = *pending_;
      pending_.reset();
      run = status_.run;
    }
    try {
      run_job(job, run);
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      status_.state = GenerationStatus::State::Failed;
      status_.message = e.what();
    }
  }
  cache_.reset();  // generators synchronise their streams as they go
}

void GenerationTask::prune_cache() {
  for (auto it = cache_->entries.begin(); it != cache_->entries.end();) {
    const auto& e = it->second;
    // Gone from the session (unloaded), or its VAE was: the entry holds the last references.
    const bool gone = session_.acquire(it->first) != e.dit || (e.vae && session_.acquire(e.vae_id) != e.vae);
    if (gone) it = cache_->entries.erase(it);
    else ++it;
  }
}

void GenerationTask::run_job(const GenerationJob& job, uint64_t run) {
  (void)run;
  const auto t0 = Clock::now();
  // Models: keep them alive and exclusive for the whole job.
  std::vector<std::shared_ptr<LoadedModel>> dits;
  for (int id : job.dit_ids) {
    auto m = session_.acquire(id);
    if (!m || !m->dit) throw InputError(cat("model ", id, " is not a loaded DiT"));
    dits.push_back(m);
  }
  std::shared_ptr<LoadedModel> vae;
  if (job.vae_id >= 0) {
    vae = session_.acquire(job.vae_id);
    if (!vae || !vae->vae) throw InputError(cat("model ", job.vae_id, " is not a loaded VAE"));
  }
  std::vector<std::unique_lock<std::mutex>> locks;
  auto lock_model = [&](LoadedModel& m) {
    for (const auto& l : locks)
      if (l.mutex() == &m.use) return;  // the same model twice (compare against itself)
    std::unique_lock<std::mutex> l(m.use, std::try_to_lock);
    if (!l.owns_lock()) throw Error(cat(m.info.name, " is in use by another task"));
    locks.push_back(std::move(l));
  };
  for (auto& m : dits) lock_model(*m);
  if (vae) lock_model(*vae);

  prune_cache();

  std::vector<GenerationOutput> outputs;
  for (size_t i = 0; i < dits.size(); ++i) {
    LoadedModel& dm = *dits[i];
    const DitModel& dit = *dm.dit;
    const int64_t channels = dit.config().in_channels;
    auto& e = cache_->entries[dm.info.id];
    const bool want_previews = job.previews && channels == 4;
    if (!e.generator || e.vae_id != job.vae_id || e.graphs != job.use_graphs || e.previews != want_previews ||
        e.dit != dits[i]) {
      e.generator.reset();
      e.display.reset();
      e.inner.reset();
      if (!e.ops || e.dit != dits[i]) {
        e.ops.reset();
        if (session_.device() == Device::CUDA) e.ops = std::make_unique<CudaOps>(*dm.arena);
        else e.ops = std::make_unique<CpuOps>();
      }
      e.dit = dits[i];
      e.vae = vae;
      e.vae_id = job.vae_id;
      e.graphs = job.use_graphs;
      e.previews = want_previews;
      if (channels == 4 && vae) {
        e.inner = std::make_unique<VaeRef>(*vae->vae);
        e.decoder_name = "SD-VAE";
      } else if (channels == 4) {
        e.inner = std::make_unique<PreviewDecoder>(*dm.arena, dit.dtype());
        e.decoder_name = "latent preview map (no VAE loaded)";
      } else {
        // An identity decoder, so the image is converted to RGBA on the device and reaches GL through
        // CUDA–GL interop like a VAE's output.
        e.inner = std::make_unique<PixelDecoder>(dit.dtype());
        e.decoder_name = "pixel space (no decoder)";
      }
      if (e.inner) e.display = std::make_unique<DisplayDecoder>(*e.inner, *dm.arena, e.decoder_name);
      GeneratorOptions go;
      go.use_graphs = job.use_graphs;
      go.previews = want_previews;
      e.generator = std::make_unique<Generator>(*e.ops, dit, e.display.get(), *dm.arena, go);
    }

    GenerateRequest req;
    req.classes = job.classes;
    req.seed = job.seed;
    req.steps = job.steps;
    req.sampler = job.sampler;
    req.guidance = job.guidance;
    req.decode = e.display != nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      status_.current = static_cast<int>(i);
      status_.step = 0;
      status_.step_ms.clear();
      status_.message = cat("sampling with ", dm.info.name, " [", dm.info.mode, "]");
    }
    const int every = std::max(1, job.preview_every);
    const size_t runs = dits.size();
    auto callback = [&](const StepInfo& info) -> bool {
      std::lock_guard<std::mutex> lock(mutex_);
      status_.step = info.step + 1;
      status_.steps = info.steps;
      status_.step_ms.push_back(info.step_ms);
      status_.last_step_ms = info.step_ms;
      double sum = 0;
      for (double v : status_.step_ms) sum += v;
      status_.mean_step_ms = sum / static_cast<double>(status_.step_ms.size());
      status_.elapsed_s = std::chrono::duration<double>(Clock::now() - t0).count();
      const double left_here = static_cast<double>(info.steps - info.step - 1);
      const double left_runs = static_cast<double>(runs - i - 1) * info.steps;
      status_.eta_s = (left_here + left_runs) * status_.mean_step_ms / 1000.0;
      history_.push_back(static_cast<float>(info.step_ms));
      if (history_.size() > kHistory) history_.erase(history_.begin());
      if (info.preview && (info.step % every == 0 || info.step + 1 == info.steps)) {
        status_.preview = info.preview->clone();
        ++status_.preview_version;
      }
      return !cancel_;
    };
    GenerateResult res = e.generator->generate(req, callback);

    GenerationOutput out;
    out.dit_id = dm.info.id;
    out.name = dm.info.name;
    out.mode = dm.info.mode;
    out.variant = dm.info.variant;
    out.step_ms = res.step_ms;
    out.sampling_ms = res.sampling_ms;
    out.decode_ms = res.decode_ms;
    out.total_ms = res.total_ms;
    out.steps_done = res.steps_done;
    out.cancelled = res.cancelled;
    out.graphs = job.use_graphs && session_.device() == Device::CUDA;
    out.decoder = e.decoder_name;
    out.dit_memory = res.memory;
    if (vae) out.vae_memory = vae->arena->report();
    out.params = dm.info.params;
    out.weight_bytes = dm.info.weight_bytes;
    double sum = 0;
    for (double v : res.step_ms) sum += v;
    out.mean_step_ms = res.step_ms.empty() ? 0 : sum / static_cast<double>(res.step_ms.size());
    out.median_step_ms = median(res.step_ms);
    if (!res.cancelled) {
      if (res.rgba.defined()) out.rgba = res.rgba;
      else if (channels == 3) out.rgba = pixels_to_rgba(res.latent);
      if (e.display && e.display->rgba().defined()) {
        // A copy the next generation cannot overwrite while the UI still reads it.
        const Tensor& src = e.display->rgba();
        out.device_rgba = Tensor::empty(src.shape(), DType::U8, *dm.arena, MemCategory::Other, "studio display image");
        auto* cuda = static_cast<CudaOps*>(e.ops.get());
        BLR_CUDA_CHECK(cudaMemcpyAsync(out.device_rgba.data(), src.data(), src.nbytes(), cudaMemcpyDeviceToDevice,
                                       cuda->stream()));
        BLR_CUDA_CHECK(cudaStreamSynchronize(cuda->stream()));
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // Steady-state step time (the median skips the first steps, which plan and capture the graph).
      GraphEffect& g = effects_[dm.info.id];
      if (!res.cancelled && res.steps_done >= 3) (out.graphs ? g.with_graphs_ms : g.without_graphs_ms) = out.median_step_ms;
      status_.outputs.push_back(out);
    }
    outputs.push_back(std::move(out));
    if (res.cancelled) break;
  }

  std::lock_guard<std::mutex> lock(mutex_);
  status_.elapsed_s = std::chrono::duration<double>(Clock::now() - t0).count();
  status_.eta_s = 0;
  const bool cancelled = !outputs.empty() && outputs.back().cancelled;
  if (cancelled) {
    status_.state = GenerationStatus::State::Cancelled;
    status_.message = cat("cancelled after ", outputs.back().steps_done, " of ", job.steps, " steps");
    return;
  }
  if (outputs.size() == 2 && outputs[0].rgba.defined() && outputs[1].rgba.defined() &&
      outputs[0].rgba.shape() == outputs[1].rgba.shape()) {
    const auto [psnr, max_diff] = psnr_rgba(outputs[0].rgba, outputs[1].rgba);
    status_.psnr = psnr;
    status_.max_abs_diff = max_diff;
  }
  status_.state = GenerationStatus::State::Finished;
  status_.message = cat("finished in ", static_cast<int>(status_.elapsed_s * 1000), " ms");
}

}  // namespace blr
