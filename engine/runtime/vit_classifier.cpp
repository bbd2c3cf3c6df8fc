#include "engine/runtime/vit_classifier.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

#include "engine/backend/cuda/cuda_ops.h"
#include "engine/backend/ops.h"
#include "engine/core/cuda_check.h"
#include "engine/core/device.h"
#include "engine/core/error.h"
#include "engine/core/log.h"
#include "engine/core/stream.h"
#include "engine/runtime/graph_runner.h"

namespace blr {

namespace {

constexpr size_t kFrameAlign = 256;
// Each new frame-size signature is a graph; image folders of many sizes would otherwise pile them up.
constexpr size_t kMaxCachedGraphs = 16;

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Inside a capture the event becomes a graph node (timing the replay); outside it is an ordinary record.
void record_event(cudaEvent_t e, cudaStream_t s) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  BLR_CUDA_CHECK(cudaStreamIsCapturing(s, &status));
  if (status == cudaStreamCaptureStatusActive) BLR_CUDA_CHECK(cudaEventRecordWithFlags(e, s, cudaEventRecordExternal));
  else BLR_CUDA_CHECK(cudaEventRecord(e, s));
}

// Elapsed time, or -1 when the driver cannot time this pair (reported as "unknown", never fatal).
double elapsed(const CudaEvent& a, const CudaEvent& b) {
  float ms = 0;
  if (cudaEventElapsedTime(&ms, a.get(), b.get()) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  return ms;
}

}  // namespace

struct VitClassifier::Events {
  CudaEvent start, uploaded, preprocessed, done;
};

VitClassifier::VitClassifier(const VitModel& model, Ops& ops, Arena& arena, const ClassifierOptions& options)
    : model_(model), ops_(ops), arena_(arena), options_(options), preprocess_(model.config.preprocess()) {
  BLR_CHECK(ops.device() == model.device && arena.device() == model.device, "VitClassifier: model on ",
            device_name(model.device), ", ops '", ops.name(), "', arena '", arena.name(), "' on ",
            device_name(arena.device()));
  cuda_ = dynamic_cast<CudaOps*>(&ops);
  buffers_ = plan_vit_buffers(model.config, model.dtype, options.batch, options.topk, arena);
  // Rows of a partial batch keep whatever the input held; start from zeros so they are always finite.
  ops_.fill(buffers_.image, 0.0f);
  ops_.synchronize();
  graphs_ = std::make_unique<GraphRunner>();
  graphs_->set_enabled(options.use_graphs && cuda_ != nullptr);
  // Another user of the same CudaOps may regrow its scratch buffers; our graphs then capture again.
  if (cuda_) graphs_->set_epoch_source([ops = cuda_] { return ops->scratch_epoch(); });
  if (cuda_) {
    int device = 0;
    BLR_CUDA_CHECK(cudaGetDevice(&device));
    zero_copy_ = query_device(device).integrated;
    events_ = std::make_unique<Events>();
    // Results come back through pinned memory so their copy is a true async transfer.
    const size_t bytes = buffers_.probs.nbytes();
    results_ = PinnedBuffer(2 * bytes);
    host_probs_ = Tensor::from_blob(results_.host(), buffers_.probs.shape(), DType::F32, Device::CPU);
    host_indices_ = Tensor::from_blob(static_cast<char*>(results_.host()) + bytes, buffers_.indices.shape(),
                                      DType::I32, Device::CPU);
  }
}

VitClassifier::~VitClassifier() {
  if (cuda_) cudaStreamSynchronize(cuda_->stream());  // queued work still reads our buffers
}

size_t VitClassifier::graph_captures() const { return graphs_->captures(); }

void VitClassifier::enqueue_network() { vit_forward(ops_, model_, buffers_); }

void VitClassifier::enqueue_preprocess(const std::vector<Tensor>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    Tensor dst = buffers_.image.select(0, static_cast<int64_t>(i));
    ops_.preprocess_image(frames[i], preprocess_, dst);
  }
}

void VitClassifier::stage_frames(const std::vector<Tensor>& frames) {
  std::vector<size_t> offsets(frames.size());
  size_t total = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    offsets[i] = total;
    total += (frames[i].nbytes() + kFrameAlign - 1) / kFrameAlign * kFrameAlign;
  }
  const size_t have = staging_.size();
  if (total > have) {
    const size_t grown = std::max(total, have + have / 2);
    ops_.synchronize();
    // Captured graphs point into the old buffers: drop them before those go.
    graphs_->clear();
    warmed_.clear();
    frame_buffer_ = Tensor();
    frame_accounting_.reset();
    staging_ = PinnedBuffer();
    if (zero_copy_) {
      // Integrated GPU (Jetson): host and device share DRAM, so the kernel reads the mapped pinned buffer
      // and there is nothing to upload.
      staging_ = PinnedBuffer(grown, true);
      frame_accounting_ = arena_.account(grown, MemCategory::Activations, "vit input frames (mapped)");
    } else {
      frame_buffer_ = Tensor::empty({static_cast<int64_t>(grown)}, DType::U8, arena_, MemCategory::Activations,
                                    "vit input frames");
      staging_ = PinnedBuffer(grown);
    }
  }
  staged_bytes_ = total;
  device_frames_.clear();
  char* host = static_cast<char*>(staging_.host());
  char* dev = static_cast<char*>(zero_copy_ ? staging_.device() : frame_buffer_.data());
  for (size_t i = 0; i < frames.size(); ++i) {
    std::memcpy(host + offsets[i], frames[i].data(), frames[i].nbytes());
    device_frames_.push_back(Tensor::from_blob(dev + offsets[i], frames[i].shape(), DType::U8, Device::CUDA,
                                               zero_copy_ ? nullptr : frame_buffer_.holder()));
  }
}

void VitClassifier::upload_frames() {
  if (zero_copy_ || staged_bytes_ == 0) return;
  BLR_CUDA_CHECK(cudaMemcpyAsync(frame_buffer_.data(), staging_.host(), staged_bytes_, cudaMemcpyHostToDevice,
                                 cuda_->stream()));
}

std::vector<Tensor> VitClassifier::checked_frames(const std::vector<Tensor>& frames_in, std::string* sizes) const {
  if (frames_in.empty() || static_cast<int64_t>(frames_in.size()) > options_.batch)
    throw InputError(cat("classify: ", frames_in.size(), " frames for a batch of ", options_.batch));
  std::vector<Tensor> frames;
  for (size_t i = 0; i < frames_in.size(); ++i) {
    const Tensor& f = frames_in[i];
    if (!f.defined() || f.device() != Device::CPU || f.dtype() != DType::U8 || f.ndim() != 3 || f.dim(2) != 3 ||
        f.dim(0) < 1 || f.dim(1) < 1)
      throw InputError(cat("classify: frame ", i, ": expected a host u8 [H,W,3] BGR image, got ",
                           f.defined() ? f.describe() : std::string("nothing")));
    frames.push_back(f.is_contiguous() ? f : f.to_host());
    if (sizes) *sizes += cat(i ? "," : "", f.dim(1), "x", f.dim(0));
  }
  return frames;
}

ClassifyResult VitClassifier::classify(const std::vector<Tensor>& frames_in) {
  std::string sizes;
  const std::vector<Tensor> frames = checked_frames(frames_in, &sizes);
  return run(cat("frames/n=", frames.size(), "/", sizes), frames.size(), &frames);
}

void VitClassifier::prepare_input(const std::vector<Tensor>& frames_in) {
  const std::vector<Tensor> frames = checked_frames(frames_in, nullptr);
  if (!cuda_) {
    enqueue_preprocess(frames);
    return;
  }
  stage_frames(frames);
  upload_frames();
  enqueue_preprocess(device_frames_);
  ops_.synchronize();
}

ClassifyResult VitClassifier::classify_input() {
  return run("input", static_cast<size_t>(options_.batch), nullptr);
}

ClassifyResult VitClassifier::run(const std::string& what, size_t count, const std::vector<Tensor>* frames) {
  const auto t0 = Clock::now();
  if (!cuda_) {
    if (frames) enqueue_preprocess(*frames);
    const double pre = ms_since(t0);
    vit_forward(ops_, model_, buffers_);
    ClassifyResult out = collect(count);
    out.times.preprocess_ms = pre;
    out.times.total_ms = ms_since(t0);
    out.times.network_ms = out.times.total_ms - pre;
    return out;
  }

  const cudaStream_t stream = cuda_->stream();
  if (frames) stage_frames(*frames);
  const std::string key = cat("vit/", model_.mode_label(), "/", dtype_name(model_.dtype), "/b=", options_.batch,
                              "/", what);
  if (!graphs_->has_graph(key) && graphs_->graph_count() >= kMaxCachedGraphs) {
    graphs_->clear();
    warmed_.clear();
  }
  auto upload = [&] {
    if (frames) upload_frames();
  };
  auto work = [&] {
    if (frames) enqueue_preprocess(device_frames_);
    record_event(events_->preprocessed.get(), stream);
    vit_forward(ops_, model_, buffers_);
  };
  // A new graph needs its planning run and its capture before a replay can be timed; eager launches only
  // need the very first run out of the way (scratch sizing, library algorithm choice).
  const bool warm = options_.warm_up && (graphs_->enabled() ? !warmed_.count(key) : warmed_.empty());
  // The network overwrites input() (its memory is reused for activations). With frames every run
  // preprocesses them again, but an input given as it is must be put back before each further run:
  // without this the warm-up consumed it and the timed run classified leftover activations.
  Tensor kept_input;
  const Tensor& input = buffers_.image;
  auto restore_input = [&] {
    if (kept_input.defined())
      BLR_CUDA_CHECK(cudaMemcpyAsync(input.data(), kept_input.data(), input.nbytes(), cudaMemcpyDeviceToDevice, stream));
  };
  if (warm && !frames) {
    kept_input = Tensor::empty(input.shape(), input.dtype(), arena_, MemCategory::Activations,
                               "vit input kept across warm-up runs");
    BLR_CUDA_CHECK(cudaMemcpyAsync(kept_input.data(), input.data(), input.nbytes(), cudaMemcpyDeviceToDevice, stream));
  }
  if (warm) {
    upload();
    graphs_->run(key, stream, work);
    if (graphs_->enabled()) {
      restore_input();
      graphs_->run(key, stream, work);
    }
    restore_input();
    BLR_CUDA_CHECK(cudaStreamSynchronize(stream));
    warmed_.insert(key);
  }
  events_->start.record(stream);
  upload();
  events_->uploaded.record(stream);
  graphs_->run(key, stream, work);
  const bool graph = graphs_->enabled() && graphs_->has_graph(key);
  events_->done.record(stream);
  BLR_CUDA_CHECK(cudaMemcpyAsync(host_probs_.data(), buffers_.probs.data(), host_probs_.nbytes(),
                                 cudaMemcpyDeviceToHost, stream));
  BLR_CUDA_CHECK(cudaMemcpyAsync(host_indices_.data(), buffers_.indices.data(), host_indices_.nbytes(),
                                 cudaMemcpyDeviceToHost, stream));
  BLR_CUDA_CHECK(cudaStreamSynchronize(stream));
  ClassifyResult out = collect(count);
  out.graph = graph;
  out.times.upload_ms = frames ? elapsed(events_->start, events_->uploaded) : 0;
  out.times.preprocess_ms = frames ? elapsed(events_->uploaded, events_->preprocessed) : 0;
  out.times.network_ms = elapsed(events_->preprocessed, events_->done);
  out.times.total_ms = ms_since(t0);
  return out;
}

ClassifyResult VitClassifier::collect(size_t count) {
  const Tensor& probs = cuda_ ? host_probs_ : buffers_.probs;
  const Tensor& idx = cuda_ ? host_indices_ : buffers_.indices;
  const int k = buffers_.topk;
  ClassifyResult r;
  for (size_t i = 0; i < count; ++i) {
    Prediction p;
    for (int j = 0; j < k; ++j) {
      p.classes.push_back(idx.data_as<const int32_t>()[i * k + j]);
      p.probs.push_back(probs.data_as<const float>()[i * k + j]);
    }
    r.predictions.push_back(std::move(p));
  }
  return r;
}

}  // namespace blr
