// Live classification for the studio: frames from a camera, a GStreamer pipeline, a video or image
// files, classified by one ViT — or by two (dense and BLR) on exactly the same frames, with the running
// top-1 agreement. Two threads per run:
//   capture   reads frames into a one-frame slot. A live source (camera, pipeline) overwrites an
//             unconsumed frame (newest wins; the drop is counted), so latency never grows. A file source
//             waits for the slot instead, so every frame of a video is classified.
//   inference owns the classifiers (each with its own Ops, i.e. its own CUDA stream) and runs every
//             model on each frame it takes from the slot.
// A camera that cannot be opened, or stops delivering frames, sets the state to Failed / Lost with a
// message; retry() starts the same job again. Nothing here blocks the caller: stop() only signals; the
// threads finish in the background (a new run's inference waits for the old one to let go of the
// models), are joined when done, and a capture thread stuck in a driver call is left behind.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/arena.h"
#include "engine/core/tensor.h"
#include "engine/runtime/vit_classifier.h"

namespace blr {

class Session;
class FrameSource;

struct SourceSpec {
  enum class Kind { Camera, Video, Images, Pipeline };
  Kind kind = Kind::Camera;
  std::string text;   // camera index, video path, image paths (separated by ';'), or a GStreamer pipeline
  bool loop = false;  // files: start again at the end (a demo that keeps running)
  // When set, opens the source instead of kind/text: an embedder's own frame source, or a test's.
  std::function<std::unique_ptr<FrameSource>()> factory;
  std::string describe() const;
};
const char* source_kind_name(SourceSpec::Kind k);      // "camera", "video", "images", "pipeline"
SourceSpec::Kind parse_source_kind(const std::string& name);  // InputError for another name

struct ClassifyJob {
  SourceSpec source;
  std::vector<int> model_ids;  // one ViT, or two to compare (the first is the reference, e.g. dense)
  int topk = 5;
  bool use_graphs = true;
  int64_t max_frames = -1;     // stop after this many frames (-1: until the source ends or stop())
};

// Per-model statistics of a run.
struct ClassifyModelStats {
  int model_id = -1;
  std::string name, variant;
  Prediction last;                  // top-k of the latest frame
  StageTimes last_times;
  // Running means over every frame but the first (which plans buffers / captures graphs); 0 until frame 2.
  double mean_preprocess_ms = 0, mean_network_ms = 0, mean_total_ms = 0;
  std::vector<float> total_ms_history;  // latest frames but the first, oldest first (at most 240)
  bool graph = false;
};

struct ClassifiedFrame {
  int64_t index = 0;                     // frame number within the source
  double capture_ms = 0;
  std::vector<Prediction> predictions;   // one per model
  std::vector<StageTimes> times;
};

struct ClassifyStatus {
  enum class State { Idle, Opening, Running, Lost, Finished, Stopped, Failed };
  State state = State::Idle;
  std::string message;           // why it failed / was lost, or what it is doing
  uint64_t run = 0;              // increments with every start()
  std::string source;
  bool live = false;
  int64_t captured = 0, classified = 0, dropped = 0;
  double fps = 0;                // classified frames per second (recent)
  double capture_ms = 0;         // last frame's read + decode time
  double seconds_since_frame = 0;
  Tensor frame;                  // host u8 [H, W, 3] BGR: the latest classified frame
  uint64_t frame_version = 0;    // increments with every classified frame
  std::vector<ClassifyModelStats> models;
  int64_t compared = 0, agreed = 0;  // frames both models classified, and those with the same top-1
  std::vector<float> fps_history;
  std::vector<ClassifiedFrame> frames;  // every classified frame of the run (the most recent 10000)
  double agreement() const { return compared ? static_cast<double>(agreed) / static_cast<double>(compared) : 0.0; }
};
const char* classify_state_name(ClassifyStatus::State s);

class ClassifyTask {
 public:
  explicit ClassifyTask(Session& session);
  ~ClassifyTask();
  ClassifyTask(const ClassifyTask&) = delete;
  ClassifyTask& operator=(const ClassifyTask&) = delete;

  // Stops a previous run, then starts this one (threads start at once; failures show in status()).
  void start(const ClassifyJob& job);
  void stop();
  void retry();  // starts the last job again
  bool active() const;  // opening, running, or finishing the last frames of a source that ended
  // A snapshot; `with_frames` copies the per-frame records too (large).
  ClassifyStatus status(bool with_frames = false) const;

  struct Run;  // one run's shared state (opaque; public so the thread functions can name it)

 private:
  // Joins threads of stopped runs that have finished (all of them, waiting, when `block`).
  void reap(bool block) const;

  Session& session_;
  std::shared_ptr<Run> run_;
  mutable std::vector<std::shared_ptr<Run>> retired_;  // stopped runs whose threads may still run
  ClassifyJob last_job_;
  uint64_t runs_ = 0;
};

}  // namespace blr
