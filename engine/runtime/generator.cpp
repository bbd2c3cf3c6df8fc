#include "engine/runtime/generator.h"

#include <cuda_runtime_api.h>

#include <chrono>
#include <cmath>
#include <cstring>

#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/cuda_check.h"
#include "engine/core/error.h"
#include "engine/core/pinned.h"
#include "engine/core/stream.h"
#include "engine/diffusion/noise.h"
#include "engine/diffusion/schedule.h"
#include "engine/runtime/graph_runner.h"
#include "engine/runtime/latent_preview.h"

namespace blr {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}
}  // namespace

// Everything one request shape needs, allocated before the first step. A request with the same key
// reuses it (and its captured graph); another key frees it first, then plans anew, so memory never holds
// two plans.
struct Generator::Plan {
  std::string key;
  int64_t B = 0, Bm = 0;
  int K = 0;
  SamplerKind kind = SamplerKind::DDPM;
  float guidance = 1.0f;
  int guided_channels = 3;
  bool guided = false, injected_noise = false, previews = false, precomputed = false;
  DitWorkspace ws;
  Tensor x, x0, model_in, model_out, t, labels, seeds, tables, step, noise;
  Tensor mod_all;  // [K, Bm·R]: every step's modulation, when precomputed
  Tensor preview_w, preview_rgb, preview_rgba[2], preview_host[2];
  PinnedBuffer preview_pinned[2];
  std::vector<std::unique_ptr<CudaEvent>> events;  // K + 1 on the CUDA backend
  GraphRunner graphs;
};

// The decoder's buffers and graph for B images, independent of the sampling plan (steps, sampler, cfg),
// so a new request of the same batch size decodes warm.
struct Generator::DecodePlan {
  int64_t B = 0;
  bool warm = false;
  Tensor latent, image, rgba;  // decoder dtype [B, S, S, C], [B, fS, fS, 3]; u8 [B, fS, fS, 4]
  std::unique_ptr<CudaEvent> begin, end;
  GraphRunner graph;
  std::string key;
};

Generator::Generator(Ops& ops, const DitModel& dit, LatentDecoder* decoder, Arena& arena, GeneratorOptions options)
    : ops_(ops), dit_(dit), decoder_(decoder), arena_(arena), options_(options) {
  BLR_CHECK(arena.device() == ops.device(), "Generator: arena '", arena.name(), "' is on ",
            device_name(arena.device()), " but the backend is ", ops.name());
}

Generator::~Generator() {
  if (plan_ || decode_) {
    try {
      ops_.synchronize();
    } catch (...) {
    }
  }
}

size_t Generator::graph_captures() const { return plan_ ? plan_->graphs.captures() : 0; }
size_t Generator::decode_graph_captures() const { return decode_ ? decode_->graph.captures() : 0; }

void Generator::inject_initial_latent(Tensor host_latent) { injected_latent_ = std::move(host_latent); }
void Generator::inject_noise(Tensor host_noise) { injected_noise_ = std::move(host_noise); }

void Generator::validate(const GenerateRequest& r) const {
  const DitConfig& c = dit_.config();
  if (r.classes.empty()) throw InputError("no class given: at least one image (class) is needed");
  for (int k : r.classes)
    if (k < 0 || k >= c.num_classes)
      throw InputError(cat("class ", k, " is out of range: this model has classes 0..", c.num_classes - 1));
  if (r.steps < 1 || r.steps > 1000) throw InputError(cat("steps must be between 1 and 1000, got ", r.steps));
  if (!std::isfinite(r.guidance) || r.guidance < 0)
    throw InputError(cat("guidance scale must be a finite number >= 0, got ", r.guidance));
  if (r.guided_channels < 0 || r.guided_channels > c.in_channels)
    throw InputError(cat("guided channels must be between 0 and ", c.in_channels, ", got ", r.guided_channels));
  if (r.decode && decoder_ && c.in_channels != decoder_->channels())
    throw InputError(cat("the decoder (", decoder_->name(), ") takes ", decoder_->channels(),
                         "-channel latents; this DiT has ", c.in_channels));
}

void Generator::prepare(const GenerateRequest& r) {
  const DitConfig& c = dit_.config();
  const int64_t B = static_cast<int64_t>(r.classes.size());
  const bool guided = r.guidance != 1.0f;
  const bool previews = options_.previews && c.in_channels == 4;
  const bool inject = injected_noise_.defined();
  uint32_t gbits = 0;
  std::memcpy(&gbits, &r.guidance, 4);
  const std::string key = cat("dit/B=", B, guided ? "/cfg" : "", "/g=", gbits, "/gc=", r.guided_channels, "/",
                              sampler_name(r.sampler), "/K=", r.steps, inject ? "/noise" : "",
                              previews ? "/preview" : "",
                              options_.precompute_conditioning ? "/pre" : "");
  if (!plan_ || plan_->key != key) {
    if (plan_) {
      ops_.synchronize();
      plan_.reset();  // free first: never hold two plans
    }
    auto p = std::make_unique<Plan>();
    p->key = key;
    p->B = B;
    p->Bm = guided ? 2 * B : B;
    p->K = r.steps;
    p->kind = r.sampler;
    p->guidance = r.guidance;
    p->guided_channels = r.guided_channels;
    p->guided = guided;
    p->injected_noise = inject;
    p->previews = previews;
    p->graphs.set_enabled(options_.use_graphs && ops_.device() == Device::CUDA);
    // Others sharing these CudaOps (the VAE, a second generator) may regrow its scratch: re-capture then.
    if (auto* cu = dynamic_cast<CudaOps*>(&ops_)) p->graphs.set_epoch_source([cu] { return cu->scratch_epoch(); });
    const int64_t S = c.input_size, C = c.in_channels;
    const DType dt = dit_.dtype();
    auto mk = [&](const Shape& s, DType d, const char* what) {
      return Tensor::empty(s, d, arena_, MemCategory::Activations, cat("generator ", what));
    };
    p->ws = dit_.plan(p->Bm, arena_);
    const size_t table_bytes = static_cast<size_t>(r.steps) * static_cast<size_t>(p->Bm) *
                               static_cast<size_t>(dit_.modulation_width()) * dtype_size(dt);
    p->precomputed = options_.precompute_conditioning && table_bytes <= options_.precompute_limit_bytes;
    if (p->precomputed) {
      p->mod_all = mk({r.steps, p->Bm * dit_.modulation_width()}, dt, "modulations of every step");
      p->ws.mod_external = true;
    }
    p->x = mk({B, S, S, C}, DType::F32, "latent");
    p->x0 = mk({B, S, S, C}, DType::F32, "predicted x0");
    p->model_in = mk({p->Bm, S, S, C}, dt, "model input");
    p->model_out = mk({p->Bm, S, S, c.out_channels()}, dt, "model output");
    p->t = mk({p->Bm}, DType::F32, "timesteps");
    p->labels = mk({p->Bm}, DType::I32, "labels");
    p->seeds = mk({B}, DType::I64, "seeds");
    p->step = mk({1}, DType::I32, "step counter");
    p->tables = mk({r.steps, kScheduleColumns}, DType::F32, "step table");
    p->tables.copy_from(build_step_table(make_schedule(r.steps)));
    if (inject) p->noise = mk({r.steps, B, S, S, C}, DType::F32, "injected noise");
    if (previews) {
      p->preview_w = latent_preview_weight().to_device(arena_, MemCategory::Weights, "latent preview map");
      p->preview_rgb = mk({B, S, S, 3}, DType::F32, "preview rgb");
      for (int i = 0; i < 2; ++i) {
        p->preview_rgba[i] = mk({B, S, S, 4}, DType::U8, "preview rgba");
        const size_t bytes = static_cast<size_t>(B * S * S * 4);
        if (ops_.device() == Device::CUDA) {
          p->preview_pinned[i] = PinnedBuffer(bytes);
          p->preview_host[i] = Tensor::from_blob(p->preview_pinned[i].host(), {B, S, S, 4}, DType::U8, Device::CPU);
        } else {
          p->preview_host[i] = p->preview_rgba[i];
        }
      }
    }
    if (ops_.device() == Device::CUDA) {
      for (int i = 0; i <= r.steps; ++i) p->events.push_back(std::make_unique<CudaEvent>());
    }
    plan_ = std::move(p);
  }
  Plan& p = *plan_;
  // Per-request inputs, copied in before the first step (outside any graph).
  Tensor labels = Tensor::zeros({p.Bm}, DType::I32);
  for (int64_t b = 0; b < p.Bm; ++b)
    labels.data_as<int32_t>()[b] = b < p.B ? r.classes[b] : static_cast<int32_t>(c.null_class());
  p.labels.copy_from(labels);
  const std::vector<uint64_t> seeds = request_seeds(r.seed, static_cast<int>(p.B));
  Tensor seeds_t = Tensor::zeros({p.B}, DType::I64);
  for (int64_t b = 0; b < p.B; ++b) seeds_t.data_as<int64_t>()[b] = static_cast<int64_t>(seeds[b]);
  p.seeds.copy_from(seeds_t);
  Tensor zero = Tensor::zeros({1}, DType::I32);
  p.step.copy_from(zero);
  Tensor x_t = initial_latent(seeds, c.input_size, c.input_size, c.in_channels);
  if (injected_latent_.defined()) {
    check_shape(injected_latent_, p.x.shape(), "injected initial latent");
    x_t = injected_latent_.dtype() == DType::F32 ? injected_latent_ : injected_latent_.to_dtype(DType::F32);
    injected_latent_ = Tensor();
  }
  p.x.copy_from(x_t.is_contiguous() ? x_t : x_t.clone());
  if (inject) {
    check_shape(injected_noise_, p.noise.shape(), "injected noise");
    p.noise.copy_from(injected_noise_.is_contiguous() ? injected_noise_ : injected_noise_.clone());
    injected_noise_ = Tensor();
  }
  Tensor first = p.model_in.slice(0, 0, p.B);
  ops_.copy(p.x, first);
  if (p.guided) {
    Tensor second = p.model_in.slice(0, p.B, 2 * p.B);
    ops_.copy(p.x, second);
  }
}

void Generator::precompute_conditioning(const GenerateRequest& r) {
  Plan& p = *plan_;
  const int64_t M = static_cast<int64_t>(p.K) * p.Bm;
  const std::vector<int> timesteps = make_schedule(p.K).timesteps;  // ascending; step s uses index K−1−s
  Tensor t_host = Tensor::zeros({M}, DType::F32);
  Tensor y_host = Tensor::zeros({M}, DType::I32);
  for (int s = 0; s < p.K; ++s)
    for (int64_t b = 0; b < p.Bm; ++b) {
      t_host.data_as<float>()[s * p.Bm + b] = static_cast<float>(timesteps[p.K - 1 - s]);
      y_host.data_as<int32_t>()[s * p.Bm + b] =
          b < p.B ? r.classes[b] : static_cast<int32_t>(dit_.config().null_class());
    }
  DitWorkspace cws = dit_.plan_conditioning(M, arena_);
  const Tensor t = t_host.to_device(arena_, MemCategory::Activations, "conditioning timesteps");
  const Tensor y = y_host.to_device(arena_, MemCategory::Activations, "conditioning labels");
  dit_.conditioning(ops_, t, y, cws, p.Bm, p.mod_all);
  ops_.synchronize();  // the temporaries above are freed on return
}

double Generator::prepare_decoder(int64_t B) {
  const DitConfig& c = dit_.config();
  auto* cuda = ops_.device() == Device::CUDA ? dynamic_cast<CudaOps*>(&ops_) : nullptr;
  if (!decode_ || decode_->B != B) {
    if (decode_) {
      ops_.synchronize();
      decode_.reset();
    }
    auto d = std::make_unique<DecodePlan>();
    d->B = B;
    const int64_t f = decoder_->upscale(), S = c.input_size;
    auto mk = [&](const Shape& s, DType dt, const char* what) {
      return Tensor::empty(s, dt, arena_, MemCategory::Activations, cat("generator ", what));
    };
    d->latent = mk({B, S, S, c.in_channels}, decoder_->dtype(), "decoder latent");
    d->image = mk({B, f * S, f * S, 3}, decoder_->dtype(), "decoded image");
    d->rgba = mk({B, f * S, f * S, 4}, DType::U8, "rgba image");
    d->key = cat("decode/", decoder_->name(), "/B=", B);
    d->graph.set_enabled(options_.use_graphs && cuda);
    if (cuda) {
      d->graph.set_epoch_source([cuda] { return cuda->scratch_epoch(); });
      d->begin = std::make_unique<CudaEvent>();
      d->end = std::make_unique<CudaEvent>();
    }
    decode_ = std::move(d);
  }
  DecodePlan& d = *decode_;
  if (d.warm || !cuda) return 0.0;  // the CPU backend has nothing to warm up: no graphs, no algorithm search
  // One decode of a zero latent outside every timed region: the decoder plans its buffers, cuDNN chooses
  // its algorithms (and grows the scratch), lazily loaded kernel modules load; then the capture.
  const auto t0 = Clock::now();
  ops_.fill(d.latent, 0.0f);
  if (d.graph.enabled()) d.graph.prepare(d.key, cuda->stream(), [&] { decode_work(); });
  else decode_work();
  ops_.synchronize();
  d.warm = true;
  return ms_since(t0);
}

// Decoder + RGBA8 conversion of decode_->latent: the decoder's graph.
void Generator::decode_work() {
  DecodePlan& d = *decode_;
  decoder_->decode(ops_, d.latent, d.image);
  ops_.to_rgba8(d.image, d.rgba);
}

void Generator::run_step() {
  Plan& p = *plan_;
  if (p.precomputed) {
    Tensor row = p.ws.mod.reshape({1, p.ws.mod.numel()});
    ops_.embedding(p.mod_all, p.step, row);  // the step counter is the row index
  } else {
    ops_.sampler_timesteps(p.tables, p.step, p.t);  // the model's t is only needed for its conditioning
  }
  dit_.forward(ops_, p.model_in, p.t, p.labels, p.ws, p.model_out);
  SamplerStepArgs a;
  a.kind = p.kind;
  a.model_out = &p.model_out;
  a.x = &p.x;
  a.model_in = &p.model_in;
  a.tables = &p.tables;
  a.step = &p.step;
  a.seeds = &p.seeds;
  a.noise = p.injected_noise ? &p.noise : nullptr;
  a.pred_x0 = p.previews ? &p.x0 : nullptr;
  a.guidance = p.guidance;
  a.guided_channels = p.guided_channels;
  a.learned_sigma = dit_.config().learn_sigma;
  ops_.sampler_step(a);
}

void Generator::enqueue_preview(int slot) {
  Plan& p = *plan_;
  const int64_t rows = p.x0.numel() / 4;
  Tensor rgb2 = p.preview_rgb.reshape({rows, 3});
  ops_.linear(p.x0.reshape({rows, 4}), p.preview_w, nullptr, Act::None, rgb2);
  ops_.to_rgba8(p.preview_rgb, p.preview_rgba[slot]);
  if (ops_.device() == Device::CUDA) {
    auto* cuda = static_cast<CudaOps*>(&ops_);
    BLR_CUDA_CHECK(cudaMemcpyAsync(p.preview_host[slot].data(), p.preview_rgba[slot].data(),
                                   p.preview_rgba[slot].nbytes(), cudaMemcpyDeviceToHost, cuda->stream()));
  }
}

GenerateResult Generator::generate(const GenerateRequest& r, const StepCallback& callback) {
  validate(r);
  const auto t_start = Clock::now();
  arena_.reset_peaks();
  prepare(r);
  Plan& p = *plan_;
  GenerateResult res;
  // Before the first step, so the decoder's scratch growth (cuDNN workspace) precedes the step's capture.
  if (r.decode && decoder_) res.decode_warmup_ms = prepare_decoder(p.B);
  CudaOps* cuda = ops_.device() == Device::CUDA ? dynamic_cast<CudaOps*>(&ops_) : nullptr;
  BLR_CHECK(ops_.device() != Device::CUDA || cuda, "Generator: CUDA backend is not a CudaOps");
  cudaStream_t stream = cuda ? cuda->stream() : nullptr;

  res.step_ms.reserve(p.K);
  std::vector<double> host_ms(p.K, 0.0);
  // Reports step s (waits for it on the CUDA backend); false = cancel.
  auto report = [&](int s) -> bool {
    double ms = host_ms[s];
    if (cuda) {
      p.events[s + 1]->synchronize();
      ms = CudaEvent::elapsed_ms(*p.events[s], *p.events[s + 1]);
    }
    res.step_ms.push_back(ms);
    res.steps_done = s + 1;
    if (!callback) return true;
    StepInfo info;
    info.step = s;
    info.steps = p.K;
    info.step_ms = ms;
    info.elapsed_ms = ms_since(t_start);
    info.preview = p.previews ? &p.preview_host[s % 2] : nullptr;
    return callback(info);
  };

  const auto t_sampling = Clock::now();
  if (p.precomputed) {
    precompute_conditioning(r);
    res.conditioning_ms = ms_since(t_sampling);
  }
  if (cuda) p.events[0]->record(stream);
  int queued = 0;
  for (int s = 0; s < p.K && !res.cancelled; ++s) {
    const auto t0 = Clock::now();
    if (cuda) p.graphs.run(p.key, stream, [&] { run_step(); });
    else run_step();
    if (p.previews) enqueue_preview(s % 2);
    queued = s + 1;
    if (cuda) {
      p.events[s + 1]->record(stream);
      // One step of lookahead: step s is queued before the host waits for step s−1.
      if (s >= 1 && !report(s - 1)) res.cancelled = true;
    } else {
      host_ms[s] = ms_since(t0);
      if (!report(s)) res.cancelled = true;
    }
  }
  if (cuda) {
    if (!res.cancelled) {
      report(p.K - 1);  // nothing is left to cancel after the last step
    } else {
      ops_.synchronize();  // the step queued ahead still runs; account for it, without a callback
      res.step_ms.push_back(CudaEvent::elapsed_ms(*p.events[queued - 1], *p.events[queued]));
      res.steps_done = queued;
    }
  }
  ops_.synchronize();
  res.sampling_ms = ms_since(t_sampling);

  if (!res.cancelled && r.decode && decoder_) {
    DecodePlan& d = *decode_;
    // A scratch buffer that grew during sampling invalidates the captured decode: capture it again here,
    // untimed (capturing executes nothing).
    if (cuda && d.graph.enabled()) d.graph.prepare(d.key, stream, [&] { decode_work(); });
    const auto t0 = Clock::now();
    if (cuda) d.begin->record(stream);
    ops_.copy(p.x, d.latent);  // f32 sampler latent -> the decoder's dtype
    if (cuda) d.graph.run(d.key, stream, [&] { decode_work(); });
    else decode_work();
    if (cuda) {
      d.end->record(stream);
      d.end->synchronize();
      res.decode_ms = CudaEvent::elapsed_ms(*d.begin, *d.end);
    } else {
      res.decode_ms = ms_since(t0);
    }
    res.rgba = d.rgba.to_host();
  }
  res.latent = p.x.to_host();
  res.total_ms = ms_since(t_start);
  res.memory = arena_.report();
  return res;
}

}  // namespace blr
