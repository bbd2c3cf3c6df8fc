#include "engine/runtime/session.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/compress/compress.h"
#include "engine/core/error.h"
#include "engine/io/safetensors.h"
#include "engine/models/dit/dit_config.h"
#include "engine/models/dit/dit_keymap.h"
#include "engine/models/dit/dit_model.h"
#include "engine/models/vae/vae_config.h"
#include "engine/models/vae/vae_decoder.h"
#include "engine/models/vit/vit_config.h"
#include "engine/models/vit/vit_model.h"

namespace blr {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Thrown when the user cancels a job: between layers, and from the factorisation's progress callback so
// a long BLAST run stops within an iteration. Deliberately not a blr::Error, which compress_weight would
// take for a GPU failure and retry on the CPU.
struct JobCancelled {};

std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

// The checkpoint in the names the model loaders and rules use (DiT: original facebookresearch names).
Checkpoint canonical_view(ModelKind kind, const Checkpoint& file) {
  return kind == ModelKind::Dit ? dit_original_view(file) : file;
}

int64_t model_width(ModelKind kind, const Checkpoint& ck) {
  if (kind == ModelKind::Dit) return infer_dit_config(ck).hidden;
  if (kind == ModelKind::Vit) return infer_vit_config(ck).width;
  return 0;
}

// What a file holds: "dense", the one BLR kind its factored layers use, or "mixed".
std::string stored_mode(const std::vector<LinearShape>& layers) {
  std::string mode = "dense";
  for (const auto& l : layers) {
    if (l.kind == LinearKind::Dense) continue;
    const std::string k = linear_kind_name(l.kind);
    if (mode == "dense") mode = k;
    else if (mode != k) return "mixed";
  }
  return mode;
}

int64_t checkpoint_params(const Checkpoint& ck) {
  int64_t n = 0;
  for (const auto& name : ck.names()) n += shape_numel(ck.info(name).shape);
  return n;
}

std::vector<ModeRules> all_mode_rules(ModelKind kind, const std::vector<LinearShape>& layers, int64_t width) {
  std::vector<ModeRules> out;
  for (const auto& mode : mode_names(kind)) out.push_back(mode_rules(kind, mode, layers, width));
  return out;
}

std::vector<ModeCost> all_mode_costs(const std::vector<ModeRules>& modes, const std::vector<LinearShape>& layers,
                                     int64_t total_params, DType dtype) {
  int64_t linear_params = 0;
  for (const auto& l : layers) linear_params += l.params;
  std::vector<ModeCost> out;
  for (const auto& m : modes) out.push_back(mode_cost(m.mode, m.rules, layers, total_params - linear_params, dtype));
  return out;
}

}  // namespace

LoadedModel::~LoadedModel() = default;

int Session::cpu_threads() const {
  if (options_.cpu_threads > 0) return options_.cpu_threads;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, cores - 1);
}

void Session::configure_worker_thread() const {
#ifdef _OPENMP
  // With every core busy in a parallel loop the UI thread (and OpenMP's own barriers, which spin before
  // they sleep) starve: on a loaded 2-core machine a 0.6 ms step took 500 ms. One core stays free.
  omp_set_num_threads(cpu_threads());
#endif
}

Session::Session(SessionOptions options) : options_(std::move(options)) {
  backend_.info = query_device(0);
  backend_.gpu = backend_.info.available && !options_.force_cpu;
  if (backend_.gpu) {
    backend_.device = backend_.info.name;
    backend_.dtype = DType::BF16;
  } else {
    backend_.device = "CPU";
    backend_.reason = options_.force_cpu ? "CPU backend requested (--cpu)" : backend_.info.reason;
    backend_.dtype = DType::F32;
  }
  job_thread_ = std::thread([this] { job_loop(); });
}

Session::~Session() {
  {
    std::lock_guard<std::mutex> lock(job_mutex_);
    stopping_ = true;
    queue_.clear();
  }
  cancel_ = true;
  job_cv_.notify_all();
  if (job_thread_.joinable()) job_thread_.join();
}

std::optional<size_t> Session::budget() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return options_.budget;
}

void Session::set_budget(std::optional<size_t> budget) {
  std::lock_guard<std::mutex> lock(mutex_);
  options_.budget = budget;
  for (auto& [id, m] : models_) m->arena->set_budget(budget);
}

void Session::push_event(SessionEvent::Level level, std::string text, int model_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  events_.push_back({level, std::move(text), model_id});
  while (events_.size() > 200) events_.pop_front();
}

std::vector<SessionEvent> Session::take_events() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<SessionEvent> out(events_.begin(), events_.end());
  events_.clear();
  return out;
}

int Session::load(const LoadRequest& request) {
  try {
    return load_impl(request, {});
  } catch (const JobCancelled&) {
    throw Error(cat(request.path, ": loading cancelled"));
  }
}

int Session::load_impl(const LoadRequest& req, const std::function<void(const JobStatus&)>& progress) {
  const auto t0 = Clock::now();
  JobStatus st;
  st.running = true;
  st.title = cat("Loading ", file_name(req.path), req.mode == "dense" ? "" : cat(" (", req.mode, ")"));
  auto report = [&](const std::string& stage, double fraction) {
    st.stage = stage;
    st.fraction = fraction;
    if (progress) progress(st);
  };
  if (req.path.empty()) throw InputError(cat("no ", model_kind_name(req.kind), " file given"));
  if (!std::filesystem::exists(req.path)) throw InputError(cat(req.path, ": no such file"));
  report("opening", 0.0);
  const Checkpoint file = Checkpoint::open(req.path);
  const Checkpoint ck = canonical_view(req.kind, file);
  const std::vector<LinearShape> layers = req.kind == ModelKind::Vae ? std::vector<LinearShape>{} : linear_layers(ck);
  const int64_t width = model_width(req.kind, ck);

  std::vector<LayerRule> rules;
  if (req.mode == "custom") {
    rules = parse_rules_text(req.rules_text);
  } else {
    ModeRules mr = mode_rules(req.kind, req.mode, layers, width);
    rules = std::move(mr.rules);
    if (mr.scaled) push_event(SessionEvent::Level::Info, cat(file_name(req.path), ": ", mr.note));
  }

  // Compression first, layer by layer, so the user sees progress and each layer's error; the model then
  // loads the factors from an in-memory checkpoint like any compressed file.
  auto m = std::make_shared<LoadedModel>();
  Checkpoint source = ck;
  if (!rules.empty()) {
    std::vector<std::pair<const LinearShape*, LinearSpec>> targets;
    for (const LinearShape& l : layers) {
      if (l.kind != LinearKind::Dense) continue;
      const auto spec = match_rules(rules, l.name);
      if (!spec || spec->kind == LinearKind::Dense) continue;
      validate_spec(*spec, l.in, l.out, l.name);
      targets.emplace_back(&l, *spec);
    }
    if (targets.empty())
      throw InputError(cat(req.path, ": no layer matches the rules (", rules_to_text(rules), ")"));
    std::map<std::string, Tensor> tensors;
    for (const auto& name : ck.names()) tensors[name] = ck.get(name);
    std::map<std::string, std::string> meta = ck.metadata();
    st.layers = static_cast<int>(targets.size());
    st.title = cat("Compressing ", file_name(req.path), " (", req.mode, ")");
    const bool gpu = backend_.gpu && options_.gpu_compression;
    for (size_t i = 0; i < targets.size(); ++i) {
      if (cancel_) throw JobCancelled();
      const auto& [layer, spec] = targets[i];
      st.layer = static_cast<int>(i);
      st.layer_name = layer->name;
      report("compressing", 0.9 * static_cast<double>(i) / static_cast<double>(targets.size()));
      CompressOptions co;
      co.use_gpu = gpu;
      co.progress = [&](int done, int total) {
        if (cancel_) throw JobCancelled();
        if (total <= 0) return;
        const double within = static_cast<double>(done) / static_cast<double>(total);
        st.fraction = 0.9 * (static_cast<double>(i) + within) / static_cast<double>(targets.size());
        if (progress) progress(st);
      };
      const Tensor W = ck.get_as(layer->name + ".weight", DType::F32);
      CompressResult r = compress_weight(W, spec, co);
      r.layer.name = layer->name;
      tensors.erase(layer->name + ".weight");
      for (auto& [key, t] : r.layer.named_tensors()) tensors[key] = t;
      for (auto& [key, value] : r.layer.metadata()) meta[key] = value;
      CompressedLayer c;
      c.name = layer->name;
      c.spec = spec.describe();
      c.in = layer->in;
      c.out = layer->out;
      c.rel_error = r.rel_error;
      c.seconds = r.seconds;
      c.on_gpu = r.on_gpu;
      st.done.push_back(c);
      m->info.compressed.push_back(c);
    }
    meta["blr.studio.rules"] = rules_to_text(rules);
    source = Checkpoint(std::make_shared<TensorMapReader>(cat(req.path, " [", req.mode, "]"), std::move(tensors), meta));
    m->compressed = source;
    m->info.can_save = true;
  }
  if (cancel_) throw JobCancelled();

  report("uploading weights", 0.92);
  m->arena = std::make_unique<Arena>(device(), cat(model_kind_name(req.kind), " ", file_name(req.path),
                                                   req.mode == "dense" ? "" : cat(" [", req.mode, "]")),
                                     budget());
  ModelInfo& info = m->info;
  info.kind = req.kind;
  info.path = req.path;
  info.name = file_name(req.path);
  info.mode = !req.label.empty() ? req.label : req.mode == "dense" ? stored_mode(layers) : req.mode;
  info.rules = rules_to_text(rules);
  info.dtype = backend_.dtype;
  info.device = device();
  info.width = width;
  switch (req.kind) {
    case ModelKind::Dit: {
      DitLoadOptions o;
      o.dtype = backend_.dtype;
      o.arena = m->arena.get();
      o.use_gpu_compression = backend_.gpu && options_.gpu_compression;
      m->dit = std::make_shared<DitModel>(DitModel::load(source, o));
      const DitConfig& c = m->dit->config();
      info.config = c.describe();
      info.variant = m->dit->describe_layers();
      info.params = m->dit->parameter_count();
      info.weight_bytes = m->dit->weight_bytes();
      info.num_classes = c.num_classes;
      info.latent_size = c.input_size;
      info.latent_channels = c.in_channels;
      info.labels = class_labels(file, c.num_classes);
      break;
    }
    case ModelKind::Vae: {
      m->vae = VaeDecoder::load(source, backend_.dtype, m->arena.get());
      info.config = m->vae->config().describe();
      info.variant = "dense (convolutions)";
      info.params = m->vae->parameter_count();
      info.weight_bytes = m->vae->weight_bytes();
      break;
    }
    case ModelKind::Vit: {
      VitLoadOptions o;
      o.dtype = backend_.dtype;
      o.arena = m->arena.get();
      o.use_gpu_compression = backend_.gpu && options_.gpu_compression;
      m->vit = std::make_shared<VitModel>(load_vit(source, o));
      const VitConfig& c = m->vit->config;
      info.config = c.describe();
      info.variant = m->vit->mode_label();
      info.params = m->vit->parameter_count();
      info.weight_bytes = m->vit->weight_bytes();
      info.num_classes = c.num_classes;
      info.image_size = c.image_size;
      info.labels = class_labels(file, c.num_classes);
      break;
    }
  }
  if (req.kind != ModelKind::Vae) {
    info.mode_rules = all_mode_rules(req.kind, linear_layers(ck), width);
    info.costs = all_mode_costs(info.mode_rules, linear_layers(ck), checkpoint_params(ck), backend_.dtype);
  } else {
    info.costs.push_back({"dense", info.params, info.weight_bytes, 1.0, 0, ""});
  }
  info.load_seconds = seconds_since(t0);
  info.memory = m->arena->report();

  int id = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    id = next_id_++;
    info.id = id;
    models_[id] = m;
  }
  st.result_id = id;
  report("done", 1.0);
  return id;
}

uint64_t Session::submit(const LoadRequest& request) {
  std::lock_guard<std::mutex> lock(job_mutex_);
  const uint64_t id = next_job_++;
  queue_.push_back({id, request});
  status_.queued = queue_.size();
  job_cv_.notify_all();
  return id;
}

void Session::job_loop() {
  configure_worker_thread();
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(job_mutex_);
      job_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      cancel_ = false;
      status_ = JobStatus{};
      status_.running = true;
      status_.id = job.id;
      status_.title = cat("Loading ", file_name(job.request.path));
      status_.stage = "queued";
      status_.queued = queue_.size();
    }
    auto progress = [&](const JobStatus& s) {
      std::lock_guard<std::mutex> lock(job_mutex_);
      const size_t queued = queue_.size();
      status_ = s;
      status_.running = true;
      status_.id = job.id;
      status_.queued = queued;
    };
    int id = -1;
    std::string error;
    bool cancelled = false;
    try {
      id = load_impl(job.request, progress);
    } catch (const JobCancelled&) {
      cancelled = true;
    } catch (const std::exception& e) {
      error = e.what();
    }
    // The event goes out before the job stops counting as running, so whoever waits for !busy() finds it.
    const std::string what = cat(model_kind_name(job.request.kind), " ", file_name(job.request.path),
                                 job.request.mode == "dense" ? "" : cat(" [", job.request.mode, "]"));
    if (cancelled) {
      push_event(SessionEvent::Level::Warning, cat(what, ": cancelled"));
    } else if (!error.empty()) {
      push_event(SessionEvent::Level::Error, cat("Could not load ", what, ": ", error));
    } else {
      const auto info = model(id);
      push_event(SessionEvent::Level::Info,
                 cat("Loaded ", what, info ? cat(": ", info->variant, ", ", format_bytes(info->weight_bytes)) : ""),
                 id);
    }
    {
      std::lock_guard<std::mutex> lock(job_mutex_);
      status_.running = false;
      status_.queued = queue_.size();
      if (cancelled) {
        status_.stage = "cancelled";
      } else if (!error.empty()) {
        status_.stage = "failed";
        status_.error = error;
      } else {
        status_.stage = "done";
        status_.fraction = 1.0;
        status_.result_id = id;
      }
    }
  }
}

JobStatus Session::job() const {
  std::lock_guard<std::mutex> lock(job_mutex_);
  return status_;
}

void Session::cancel_job() {
  std::lock_guard<std::mutex> lock(job_mutex_);
  queue_.clear();
  status_.queued = 0;
  cancel_ = true;
}

bool Session::busy() const {
  std::lock_guard<std::mutex> lock(job_mutex_);
  return status_.running || !queue_.empty();
}

std::vector<ModelInfo> Session::models() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ModelInfo> out;
  for (const auto& [id, m] : models_) {
    out.push_back(m->info);
    out.back().memory = m->arena->report();
  }
  return out;
}

std::optional<ModelInfo> Session::model(int id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = models_.find(id);
  if (it == models_.end()) return std::nullopt;
  ModelInfo info = it->second->info;
  info.memory = it->second->arena->report();
  return info;
}

std::shared_ptr<LoadedModel> Session::acquire(int id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = models_.find(id);
  return it == models_.end() ? nullptr : it->second;
}

std::vector<int> Session::ids(ModelKind kind) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int> out;
  for (const auto& [id, m] : models_)
    if (m->info.kind == kind) out.push_back(id);
  return out;
}

void Session::unload(int id) {
  std::shared_ptr<LoadedModel> gone;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = models_.find(id);
    if (it == models_.end()) return;
    gone = std::move(it->second);
    models_.erase(it);
  }
  push_event(SessionEvent::Level::Info, cat("Unloaded ", model_kind_name(gone->info.kind), " ", gone->info.name,
                                            gone->info.mode == "dense" ? "" : cat(" [", gone->info.mode, "]")));
}

void Session::save_compressed(int id, const std::string& path) const {
  const auto m = acquire(id);
  if (!m) throw InputError(cat("no model with id ", id));
  if (!m->compressed.is_open())
    throw InputError(cat(m->info.name, " was not compressed in this session: its file already is what it holds"));
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& name : m->compressed.names()) tensors.emplace_back(name, m->compressed.get(name));
  write_safetensors(path, tensors, m->compressed.metadata());
}

Session::Inspection Session::inspect(ModelKind kind, const std::string& path) const {
  if (!std::filesystem::exists(path)) throw InputError(cat(path, ": no such file"));
  const Checkpoint file = Checkpoint::open(path);
  const Checkpoint ck = canonical_view(kind, file);
  Inspection out;
  out.kind = kind;
  out.params = checkpoint_params(ck);
  if (kind == ModelKind::Vae) {
    out.config = infer_vae_config(ck).describe();
    out.costs.push_back({"dense", out.params, static_cast<size_t>(out.params) * dtype_size(backend_.dtype), 1.0, 0, ""});
    return out;
  }
  out.width = model_width(kind, ck);
  out.config = kind == ModelKind::Dit ? infer_dit_config(ck).describe() : infer_vit_config(ck).describe();
  out.layers = linear_layers(ck);
  out.modes = all_mode_rules(kind, out.layers, out.width);
  out.costs = all_mode_costs(out.modes, out.layers, out.params, backend_.dtype);
  return out;
}

}  // namespace blr
