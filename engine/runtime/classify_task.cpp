#include "engine/runtime/classify_task.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/error.h"
#include "engine/io/frame_source.h"
#include "engine/runtime/session.h"

namespace blr {

namespace {
using Clock = std::chrono::steady_clock;
double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
constexpr size_t kHistory = 240;
constexpr size_t kFrameRecords = 10000;

template <typename T>
void push_capped(std::vector<T>& v, T value, size_t cap) {
  v.push_back(value);
  if (v.size() > cap) v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() - cap));
}

std::vector<std::string> split_paths(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ';')) {
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::unique_ptr<FrameSource> open_source(const SourceSpec& s) {
  if (s.factory) {
    auto source = s.factory();
    if (!source) throw InputError(cat(s.describe(), ": the source could not be opened"));
    return source;
  }
  switch (s.kind) {
    case SourceSpec::Kind::Camera: {
      if (s.text.empty()) throw InputError("no camera index given");
      for (char c : s.text)
        if (c < '0' || c > '9') throw InputError(cat("camera '", s.text, "': a camera index is a number (0, 1, ...)"));
      return FrameSource::camera(s.text);
    }
    case SourceSpec::Kind::Pipeline:
      if (s.text.empty()) throw InputError("no GStreamer pipeline given");
      return FrameSource::camera(s.text);
    case SourceSpec::Kind::Video:
      if (s.text.empty()) throw InputError("no video file given");
      return FrameSource::video(s.text);
    case SourceSpec::Kind::Images: {
      const auto paths = split_paths(s.text);
      if (paths.empty()) throw InputError("no image file given");
      return FrameSource::images(paths);
    }
  }
  throw InputError("unknown source");
}

}  // namespace

std::string SourceSpec::describe() const {
  if (factory) return text.empty() ? std::string("custom source") : text;
  switch (kind) {
    case Kind::Camera: return cat("camera ", text);
    case Kind::Pipeline: return cat("pipeline \"", text, "\"");
    case Kind::Video: return cat("video ", text);
    case Kind::Images: return cat("images ", text);
  }
  return text;
}

const char* source_kind_name(SourceSpec::Kind k) {
  switch (k) {
    case SourceSpec::Kind::Camera: return "camera";
    case SourceSpec::Kind::Video: return "video";
    case SourceSpec::Kind::Images: return "images";
    case SourceSpec::Kind::Pipeline: return "pipeline";
  }
  return "?";
}

SourceSpec::Kind parse_source_kind(const std::string& name) {
  if (name == "camera") return SourceSpec::Kind::Camera;
  if (name == "video") return SourceSpec::Kind::Video;
  if (name == "images" || name == "image") return SourceSpec::Kind::Images;
  if (name == "pipeline" || name == "gstreamer") return SourceSpec::Kind::Pipeline;
  throw InputError(cat("unknown source kind '", name, "' (expected camera, video, images or pipeline)"));
}

const char* classify_state_name(ClassifyStatus::State s) {
  using S = ClassifyStatus::State;
  switch (s) {
    case S::Idle: return "idle";
    case S::Opening: return "opening";
    case S::Running: return "running";
    case S::Lost: return "lost";
    case S::Finished: return "finished";
    case S::Stopped: return "stopped";
    case S::Failed: return "failed";
  }
  return "?";
}

// State shared by the two threads of one run and the task; the threads hold it by shared_ptr, so a
// capture thread left behind by stop() stays valid.
struct ClassifyTask::Run {
  explicit Run(ClassifyJob j) : job(std::move(j)) {}
  ClassifyJob job;
  mutable std::mutex m;
  std::condition_variable cv;
  ClassifyStatus st;
  std::atomic<bool> stop{false};
  std::optional<Frame> slot;
  bool source_done = false;
  bool lost = false;
  Clock::time_point last_frame = Clock::now();
  std::deque<Clock::time_point> recent;
  std::deque<ClassifiedFrame> frames;  // per-frame records (the most recent kFrameRecords)
  std::thread capture, inference;
  std::promise<void> capture_exit, inference_exit;
  std::shared_future<void> capture_exited = capture_exit.get_future().share();
  std::shared_future<void> inference_exited = inference_exit.get_future().share();
  // Inference threads of earlier runs that may still hold the models: this run starts after them.
  std::vector<std::shared_future<void>> after;
  Clock::time_point stopped_at;

  bool ended() const {
    using S = ClassifyStatus::State;
    return st.state == S::Failed || st.state == S::Finished || st.state == S::Stopped || st.state == S::Lost;
  }
  void fail(const std::string& message) {
    std::lock_guard<std::mutex> lock(m);
    if (st.state != ClassifyStatus::State::Stopped) {
      st.state = ClassifyStatus::State::Failed;
      st.message = message;
    }
    source_done = true;
    stop = true;
    cv.notify_all();
  }
};

namespace {

void capture_loop(const std::shared_ptr<ClassifyTask::Run>& r);
void inference_loop(const std::shared_ptr<ClassifyTask::Run>& r, Session& session);

}  // namespace

ClassifyTask::ClassifyTask(Session& session) : session_(session) {}

ClassifyTask::~ClassifyTask() {
  stop();
  reap(true);
}

void ClassifyTask::start(const ClassifyJob& job) {
  stop();
  last_job_ = job;
  auto r = std::make_shared<Run>(job);
  r->st.state = ClassifyStatus::State::Opening;
  r->st.run = ++runs_;
  r->st.source = job.source.describe();
  r->st.live = job.source.kind == SourceSpec::Kind::Camera || job.source.kind == SourceSpec::Kind::Pipeline;
  r->st.message = cat("opening ", r->st.source);
  for (const auto& old : retired_) r->after.push_back(old->inference_exited);
  run_ = r;
  r->inference = std::thread([r, this] { inference_loop(r, session_); });
  r->capture = std::thread([r] { capture_loop(r); });
}

void ClassifyTask::retry() { start(last_job_); }

void ClassifyTask::stop() {
  if (!run_) return;
  auto r = run_;
  {
    std::lock_guard<std::mutex> lock(r->m);
    if (!r->ended()) {
      r->st.state = ClassifyStatus::State::Stopped;
      r->st.message = "stopped";
    }
    r->stop = true;
    r->stopped_at = Clock::now();
    r->cv.notify_all();
  }
  // Never wait here (this is the UI thread): the threads finish their current frame in the background
  // and are joined by reap(); the next run waits for the old inference thread itself.
  if (std::find(retired_.begin(), retired_.end(), r) == retired_.end()) retired_.push_back(r);
  reap(false);
}

void ClassifyTask::reap(bool block) const {
  using std::chrono::milliseconds;
  for (auto it = retired_.begin(); it != retired_.end();) {
    Run& r = **it;
    if (r.inference.joinable() && (block || r.inference_exited.wait_for(milliseconds(0)) == std::future_status::ready))
      r.inference.join();
    if (r.capture.joinable()) {
      const bool done = r.capture_exited.wait_for(block ? milliseconds(1500) : milliseconds(0)) == std::future_status::ready;
      if (done) r.capture.join();
      // A camera driver call can hang (unplugged device): leave that thread behind; it owns what it uses.
      else if (block || Clock::now() - r.stopped_at > std::chrono::seconds(3)) r.capture.detach();
    }
    if (!r.inference.joinable() && !r.capture.joinable()) it = retired_.erase(it);
    else ++it;
  }
}

bool ClassifyTask::active() const {
  if (!run_) return false;
  // Stopped or failed: over at once. Otherwise (running, or the source just ended or was lost) until the
  // inference thread has classified what it took and exited, so the last frames are in status().
  if (run_->stop) return false;
  return run_->inference_exited.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready;
}

ClassifyStatus ClassifyTask::status(bool with_frames) const {
  if (!retired_.empty()) reap(false);
  if (!run_) return {};
  std::lock_guard<std::mutex> lock(run_->m);
  ClassifyStatus s = run_->st;  // st.frames stays empty: the records live in run_->frames
  if (with_frames) s.frames.assign(run_->frames.begin(), run_->frames.end());
  s.seconds_since_frame = ms_between(run_->last_frame, Clock::now()) / 1000.0;
  if (s.state == ClassifyStatus::State::Running && s.live && s.seconds_since_frame > 3.0)
    s.message = cat("no frame from ", s.source, " for ", static_cast<int>(s.seconds_since_frame), " s");
  return s;
}

namespace {

void capture_loop(const std::shared_ptr<ClassifyTask::Run>& r) {
  struct Exit {
    ClassifyTask::Run& run;
    ~Exit() { run.capture_exit.set_value(); }
  } on_exit{*r};
  std::unique_ptr<FrameSource> source;
  try {
    source = open_source(r->job.source);
  } catch (const std::exception& e) {
    r->fail(e.what());
    return;
  }
  const bool live = source->live();
  {
    std::lock_guard<std::mutex> lock(r->m);
    r->st.live = live;
    if (r->st.state == ClassifyStatus::State::Opening) {
      r->st.state = ClassifyStatus::State::Running;
      r->st.message.clear();
    }
    r->last_frame = Clock::now();
  }
  int64_t count = 0;
  while (!r->stop) {
    if (r->job.max_frames >= 0 && count >= r->job.max_frames) break;
    Frame f;
    const auto t0 = Clock::now();
    bool ok = false;
    try {
      ok = source->next(f);
    } catch (const std::exception& e) {
      if (!live) {
        r->fail(e.what());
        return;
      }
      ok = false;
    }
    const double read_ms = ms_between(t0, Clock::now());
    if (!ok) {
      if (live) {
        std::lock_guard<std::mutex> lock(r->m);
        if (!r->stop) {
          r->lost = true;
          r->st.state = ClassifyStatus::State::Lost;
          r->st.message = cat(r->st.source, " stopped delivering frames (disconnected or in use?)");
        }
        r->source_done = true;
        r->cv.notify_all();
        return;
      }
      if (r->job.source.loop && count > 0) {
        try {
          source = open_source(r->job.source);
          continue;
        } catch (const std::exception& e) {
          r->fail(e.what());
          return;
        }
      }
      break;
    }
    ++count;
    std::unique_lock<std::mutex> lock(r->m);
    if (!live) r->cv.wait(lock, [&] { return r->stop || !r->slot.has_value(); });  // files: every frame
    if (r->stop) break;
    if (r->slot.has_value()) ++r->st.dropped;  // live: newest wins
    r->slot = std::move(f);
    ++r->st.captured;
    r->st.capture_ms = read_ms;
    r->last_frame = Clock::now();
    r->cv.notify_all();
  }
  std::lock_guard<std::mutex> lock(r->m);
  r->source_done = true;
  r->cv.notify_all();
}

struct Worker {
  std::shared_ptr<LoadedModel> model;
  std::unique_lock<std::mutex> lock;
  std::unique_ptr<Ops> ops;
  std::unique_ptr<VitClassifier> classifier;
};

void inference_loop(const std::shared_ptr<ClassifyTask::Run>& r, Session& session) {
  struct Exit {
    ClassifyTask::Run& run;
    ~Exit() { run.inference_exit.set_value(); }
  } on_exit{*r};
  for (const auto& f : r->after) f.wait();  // an earlier run may still be finishing a frame
  session.configure_worker_thread();
  std::vector<Worker> workers;
  try {
    if (r->job.model_ids.empty()) throw InputError("no ViT model loaded: load one in the Models tab first");
    for (int id : r->job.model_ids) {
      Worker w;
      w.model = session.acquire(id);
      if (!w.model || !w.model->vit) throw InputError(cat("model ", id, " is not a loaded ViT"));
      w.lock = std::unique_lock<std::mutex>(w.model->use, std::try_to_lock);
      if (!w.lock.owns_lock()) throw Error(cat(w.model->info.name, " is in use by another task"));
      if (session.device() == Device::CUDA) w.ops = std::make_unique<CudaOps>(*w.model->arena);
      else w.ops = std::make_unique<CpuOps>();
      ClassifierOptions o;
      o.batch = 1;
      o.topk = std::max(1, std::min<int>(r->job.topk, static_cast<int>(w.model->vit->config.num_classes)));
      o.use_graphs = r->job.use_graphs;
      w.classifier = std::make_unique<VitClassifier>(*w.model->vit, *w.ops, *w.model->arena, o);
      workers.push_back(std::move(w));
    }
    std::lock_guard<std::mutex> lock(r->m);
    for (const auto& w : workers) {
      ClassifyModelStats s;
      s.model_id = w.model->info.id;
      s.name = w.model->info.name;
      s.variant = w.model->info.variant;
      r->st.models.push_back(s);
    }
  } catch (const std::exception& e) {
    r->fail(e.what());
    return;
  }

  for (;;) {
    Frame frame;
    {
      std::unique_lock<std::mutex> lock(r->m);
      r->cv.wait(lock, [&] { return r->stop || r->slot.has_value() || r->source_done; });
      if (r->stop) return;
      if (!r->slot.has_value()) {  // the source ended and every frame was classified
        if (!r->lost && r->st.state == ClassifyStatus::State::Running) {
          r->st.state = ClassifyStatus::State::Finished;
          r->st.message = cat("finished: ", r->st.classified, " frames");
        } else if (!r->lost && r->st.state == ClassifyStatus::State::Opening) {
          r->st.state = ClassifyStatus::State::Finished;
        }
        return;
      }
      frame = std::move(*r->slot);
      r->slot.reset();
      r->cv.notify_all();
    }
    ClassifiedFrame rec;
    rec.index = frame.index;
    std::vector<ClassifyResult> results;
    try {
      for (auto& w : workers) results.push_back(w.classifier->classify({frame.bgr}));
    } catch (const std::exception& e) {
      r->fail(cat("classification failed: ", e.what()));
      return;
    }
    const auto now = Clock::now();
    std::lock_guard<std::mutex> lock(r->m);
    rec.capture_ms = r->st.capture_ms;
    ++r->st.classified;
    // Running means and the latency history leave out the first frame: it plans buffers and (on the
    // GPU) captures the graph, which says nothing about steady-state latency. Its times stay in `frames`.
    const bool steady = r->st.classified >= 2;
    const double n = static_cast<double>(r->st.classified - 1);
    for (size_t i = 0; i < results.size(); ++i) {
      ClassifyModelStats& s = r->st.models[i];
      const ClassifyResult& res = results[i];
      s.last = res.predictions.front();
      s.last_times = res.times;
      s.graph = res.graph;
      if (steady) {
        s.mean_preprocess_ms += (res.times.preprocess_ms + res.times.upload_ms - s.mean_preprocess_ms) / n;
        s.mean_network_ms += (res.times.network_ms - s.mean_network_ms) / n;
        s.mean_total_ms += (res.times.total_ms - s.mean_total_ms) / n;
        push_capped(s.total_ms_history, static_cast<float>(res.times.total_ms), kHistory);
      }
      rec.predictions.push_back(res.predictions.front());
      rec.times.push_back(res.times);
    }
    if (results.size() >= 2) {
      ++r->st.compared;
      const auto& a = results[0].predictions.front().classes;
      const auto& b = results[1].predictions.front().classes;
      if (!a.empty() && !b.empty() && a.front() == b.front()) ++r->st.agreed;
    }
    r->recent.push_back(now);
    while (r->recent.size() > 30) r->recent.pop_front();
    if (r->recent.size() >= 2) {
      const double span = ms_between(r->recent.front(), r->recent.back()) / 1000.0;
      if (span > 0) r->st.fps = static_cast<double>(r->recent.size() - 1) / span;
    } else {
      double ms = 0;
      for (const auto& res : results) ms += res.times.total_ms;
      r->st.fps = ms > 0 ? 1000.0 / ms : 0.0;
    }
    push_capped(r->st.fps_history, static_cast<float>(r->st.fps), kHistory);
    r->st.frame = frame.bgr;
    ++r->st.frame_version;
    r->frames.push_back(std::move(rec));
    while (r->frames.size() > kFrameRecords) r->frames.pop_front();
  }
}

}  // namespace

}  // namespace blr
