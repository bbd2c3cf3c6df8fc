// Classifies camera frames / images with a loaded ViT on either backend. Owns everything a batch needs,
// planned before anything runs: the activation slab (vit_forward.h), a device buffer for the uploaded
// BGR8 frames and a pinned staging buffer for the upload. On the CUDA backend a batch is
//   upload (async copy from pinned memory) -> [ preprocess each frame (resize, crop, BGR->RGB, normalise)
//   -> network -> softmax top-k ]  -> copy of the k results back
// where the bracket is one CUDA graph, captured once per (batch, mode, dtype, frame sizes) and replayed
// (GraphRunner). On an integrated GPU (Jetson) the frames stay in mapped pinned memory that the
// preprocessing kernel reads directly: no upload at all. Stage times come from CUDA events, one of them
// recorded inside the graph. On the CPU backend the same sequence runs eagerly, timed by the host clock.
// Several classifiers may share one CudaOps: when another one's planning run regrows the ops' scratch
// buffers, graphs holding the old addresses are captured again (GraphRunner's epoch source).
#pragma once

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/core/pinned.h"
#include "engine/core/tensor.h"
#include "engine/models/vit/vit_forward.h"
#include "engine/models/vit/vit_model.h"

namespace blr {

class Ops;
class CudaOps;
class GraphRunner;

struct ClassifierOptions {
  int64_t batch = 1;       // images per forward pass (partial batches are allowed)
  int topk = 5;
  bool use_graphs = true;  // CUDA backend only
  // Run a batch whose shape is new once (and capture its graph) before the timed run, so reported
  // latencies are steady-state ones rather than first-run planning/capture costs.
  bool warm_up = true;
};

struct StageTimes {
  double upload_ms = 0;      // host -> device copy of the frames (0 on the CPU backend)
  double preprocess_ms = 0;  // resize + crop + normalise of every frame of the batch
  double network_ms = 0;     // forward pass + softmax top-k
  double total_ms = 0;       // wall-clock time of the whole call, as the caller sees it
};

struct Prediction {
  std::vector<int> classes;  // top-k class indices, most probable first
  std::vector<float> probs;  // their softmax probabilities
};

struct ClassifyResult {
  std::vector<Prediction> predictions;  // one per frame given
  StageTimes times;
  bool graph = false;  // true when the work ran as a CUDA graph replay
};

class VitClassifier {
 public:
  // `model` and `ops` must outlive the classifier; `arena` is where activations are accounted (the
  // device of `ops`).
  VitClassifier(const VitModel& model, Ops& ops, Arena& arena, const ClassifierOptions& options);
  ~VitClassifier();
  VitClassifier(const VitClassifier&) = delete;
  VitClassifier& operator=(const VitClassifier&) = delete;

  // Classifies 1..batch frames, each a host u8 [H, W, 3] BGR tensor (OpenCV's layout). Throws
  // InputError for an empty or oversized list or a frame of the wrong type or shape.
  ClassifyResult classify(const std::vector<Tensor>& frames);
  // Runs the network on input() as it is (filled by the caller: tests, benchmarks). A warm-up (first call
  // for a shape) runs the network more than once; a copy of the input, held only during this call, puts it
  // back before each run, so the result is that of the input as given.
  ClassifyResult classify_input();
  // Uploads and preprocesses frames into input() without running the network (tests compare backends'
  // preprocessing this way), then waits for it.
  void prepare_input(const std::vector<Tensor>& frames);

  // Planned buffers: input() is [batch, S, S, 3] in the model dtype on the model's device. Its memory is
  // reused by the network, so it holds the preprocessed batch only until the network runs; logits,
  // probs and indices in buffers() hold the last run's outputs.
  Tensor& input() { return buffers_.image; }
  const VitBuffers& buffers() const { return buffers_; }
  // Enqueues forward + top-k on input() without synchronising (what `blr bench` captures and times).
  void enqueue_network();
  bool on_cuda() const { return cuda_ != nullptr; }
  size_t graph_captures() const;
  const VitModel& model() const { return model_; }
  const ClassifierOptions& options() const { return options_; }

 private:
  struct Events;
  std::vector<Tensor> checked_frames(const std::vector<Tensor>& frames, std::string* sizes) const;
  ClassifyResult run(const std::string& key, size_t count, const std::vector<Tensor>* frames);
  void enqueue_preprocess(const std::vector<Tensor>& frames);
  void stage_frames(const std::vector<Tensor>& frames);
  void upload_frames();
  ClassifyResult collect(size_t count);

  const VitModel& model_;
  Ops& ops_;
  Arena& arena_;
  CudaOps* cuda_ = nullptr;
  ClassifierOptions options_;
  PreprocessParams preprocess_;
  VitBuffers buffers_;
  std::unique_ptr<GraphRunner> graphs_;
  std::unique_ptr<Events> events_;
  std::set<std::string> warmed_;
  // Uploaded frames: one device buffer, each frame at a 256-byte aligned offset, filled from a pinned
  // staging buffer; grown on demand (which drops captured graphs, since they hold the old address). On an
  // integrated GPU the staging buffer is mapped and read by the kernel directly (zero copy).
  bool zero_copy_ = false;
  Tensor frame_buffer_;
  PinnedBuffer staging_;
  std::shared_ptr<void> frame_accounting_;
  size_t staged_bytes_ = 0;
  std::vector<Tensor> device_frames_;
  PinnedBuffer results_;
  Tensor host_probs_, host_indices_;  // views of results_
};

}  // namespace blr
