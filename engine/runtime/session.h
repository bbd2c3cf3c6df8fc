// Session: what the studio (and any other interactive front end) talks to. It picks the backend (CUDA
// when a device is usable, else the CPU reference backend), loads DiT, VAE and ViT models by path —
// dense, from BLR factors, or compressed on the way in by layer rules, with per-layer progress and
// relative error — and keeps each loaded model in its own Arena (optionally under a memory budget), so
// memory can be reported per model and per category. Loading and compression run on the session's job
// thread; the UI polls job() and drains events(). Generation and classification run in their own tasks
// (generation_task.h, classify_task.h), each on its own thread with its own stream.
//
// Several variants of one file may be loaded at once (e.g. dense and BLAST): that is what the Compare
// view runs side by side. A task holds a shared_ptr to the models it uses, so unloading one while it
// runs only drops the session's reference; the memory goes when the task lets go.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/arena.h"
#include "engine/core/device.h"
#include "engine/core/dtype.h"
#include "engine/io/checkpoint.h"
#include "engine/runtime/model_catalog.h"

namespace blr {

class DitModel;
class VaeDecoder;
struct VitModel;

struct SessionOptions {
  bool force_cpu = false;               // use the CPU backend even when a GPU is present
  std::optional<size_t> budget;         // per-model arena budget (bytes)
  bool gpu_compression = true;          // factorise on the GPU when there is one
  // CPU threads each worker (generation, classification, compression) may use for the CPU backend's
  // parallel loops; 0 = all cores but one, so the UI thread always has a core to draw on.
  int cpu_threads = 0;
};

struct BackendInfo {
  bool gpu = false;          // true: CUDA backend
  std::string device;        // GPU name, or "CPU"
  std::string reason;        // why the CPU backend is used ("no CUDA driver ...", "--cpu")
  DeviceInfo info;
  DType dtype = DType::F32;  // storage dtype models are loaded in (bf16 on the GPU, f32 on the CPU)
};

// One layer a rule compressed while loading.
struct CompressedLayer {
  std::string name;
  std::string spec;  // "blast:b=9,r=384"
  int64_t in = 0, out = 0;
  double rel_error = 0;
  double seconds = 0;
  bool on_gpu = false;
};

struct ModelInfo {
  int id = 0;
  ModelKind kind = ModelKind::Dit;
  std::string path;
  std::string name;     // file name without folders
  std::string mode;     // "dense", "blast", "monarch", "lowrank", "mixed", "custom", or the request's label
  std::string variant;  // what the layers are, e.g. "dense" or "blast:b=9,r=384 ×28, ..."
  std::string rules;    // the rules applied at load (text), empty when none
  std::string config;   // the model's describe()
  DType dtype = DType::F32;
  Device device = Device::CPU;
  int64_t params = 0;
  size_t weight_bytes = 0;
  MemoryReport memory;  // its arena now
  std::vector<CompressedLayer> compressed;
  double load_seconds = 0;
  int64_t num_classes = 0;             // DiT, ViT
  std::vector<std::string> labels;     // class names (model's own, ImageNet for 1000 classes, else empty)
  int64_t width = 0;                   // transformer width (DiT hidden, ViT width)
  int64_t latent_size = 0, latent_channels = 0;  // DiT
  int64_t image_size = 0;              // ViT input size
  std::vector<ModeCost> costs;         // what each named mode would cost for this file
  std::vector<ModeRules> mode_rules;   // the rules of each named mode for this file
  bool can_save = false;               // holds compressed tensors that save_compressed() can write
};

// A loaded model and what it needs. Tasks lock `use` while they run it (one task at a time per model).
struct LoadedModel {
  ModelInfo info;
  std::unique_ptr<Arena> arena;
  std::shared_ptr<DitModel> dit;
  std::shared_ptr<VaeDecoder> vae;
  std::shared_ptr<VitModel> vit;
  Checkpoint compressed;  // the in-memory checkpoint a compressed variant was loaded from (for saving)
  std::mutex use;
  ~LoadedModel();
};

struct LoadRequest {
  ModelKind kind = ModelKind::Dit;
  std::string path;
  std::string mode = "dense";  // a mode name (rules from mode_rules) or "custom" (rules_text)
  std::string rules_text;      // for "custom"
  // How the variant is named in the UI (ModelInfo::mode). Empty: the mode, or for "dense" what the
  // file's layers are ("blast" for a file of BLAST factors, "mixed" for several kinds).
  std::string label;
};

// Progress of the current (or last) load/compress job.
struct JobStatus {
  bool running = false;
  uint64_t id = 0;           // job id (0: none yet)
  std::string title;         // "Loading dit.safetensors", "Compressing ... (blast)"
  std::string stage;         // "opening", "compressing", "uploading", "done", "failed", "cancelled"
  double fraction = 0;       // 0..1 overall
  int layer = 0, layers = 0; // compression progress
  std::string layer_name;
  std::vector<CompressedLayer> done;
  std::string error;         // set when the job failed
  int result_id = -1;        // id of the model it loaded
  size_t queued = 0;         // jobs waiting behind it
};

// Something the UI should tell the user.
struct SessionEvent {
  enum class Level { Info, Warning, Error } level = Level::Info;
  std::string text;
  int model_id = -1;
};

class Session {
 public:
  explicit Session(SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const BackendInfo& backend() const { return backend_; }
  Device device() const { return backend_.gpu ? Device::CUDA : Device::CPU; }
  std::optional<size_t> budget() const;
  // Applies to every loaded model's arena and to later loads.
  void set_budget(std::optional<size_t> budget);
  bool gpu_compression() const { return options_.gpu_compression; }
  // Threads per worker for the CPU backend (SessionOptions::cpu_threads resolved), and the call each
  // worker thread makes first to apply it (OpenMP's thread count is per calling thread).
  int cpu_threads() const;
  void configure_worker_thread() const;

  // Loads synchronously on the calling thread (tests, the job thread). Throws InputError /
  // OutOfMemoryError / Error with a message naming the file and the problem.
  int load(const LoadRequest& request);

  // Queues a load on the job thread and returns its id.
  uint64_t submit(const LoadRequest& request);
  JobStatus job() const;
  void cancel_job();   // stops the running job between layers; drops queued ones
  bool busy() const;   // a job is running or queued
  std::vector<SessionEvent> take_events();

  std::vector<ModelInfo> models() const;  // snapshot, memory reports refreshed
  std::optional<ModelInfo> model(int id) const;
  std::shared_ptr<LoadedModel> acquire(int id) const;  // null when unknown
  // Ids of loaded models of a kind, in load order.
  std::vector<int> ids(ModelKind kind) const;
  void unload(int id);
  // Writes a compressed variant (factors + metadata) as safetensors; InputError if it has none.
  void save_compressed(int id, const std::string& path) const;

  // Models and rules of a file without loading it: layer shapes, mode rules, costs (Models panel).
  struct Inspection {
    ModelKind kind = ModelKind::Dit;
    std::string config;
    int64_t params = 0;
    int64_t width = 0;
    std::vector<LinearShape> layers;
    std::vector<ModeRules> modes;
    std::vector<ModeCost> costs;
  };
  Inspection inspect(ModelKind kind, const std::string& path) const;

 private:
  struct Job {
    uint64_t id = 0;
    LoadRequest request;
  };
  int load_impl(const LoadRequest& request, const std::function<void(const JobStatus&)>& progress);
  void job_loop();
  void push_event(SessionEvent::Level level, std::string text, int model_id = -1);

  SessionOptions options_;
  BackendInfo backend_;

  mutable std::mutex mutex_;  // models_, budget, events_
  std::map<int, std::shared_ptr<LoadedModel>> models_;
  int next_id_ = 1;
  std::deque<SessionEvent> events_;

  mutable std::mutex job_mutex_;
  std::condition_variable job_cv_;
  std::deque<Job> queue_;
  JobStatus status_;
  uint64_t next_job_ = 1;
  std::atomic<bool> cancel_{false};
  bool stopping_ = false;
  std::thread job_thread_;
};

}  // namespace blr
