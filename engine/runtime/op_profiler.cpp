#include "engine/runtime/op_profiler.h"

#include "engine/core/cuda_check.h"
#include "engine/core/error.h"

namespace blr {

OpProfiler::OpProfiler(Ops& inner, cudaStream_t stream) : ForwardingOps(inner), stream_(stream) {}

OpProfiler::~OpProfiler() {
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
}

void OpProfiler::begin() {
  next_ = 0;
  labels_.clear();
  ops_.clear();
}

void OpProfiler::record() {
  if (next_ == events_.size()) {
    cudaEvent_t e = nullptr;
    BLR_CUDA_CHECK(cudaEventCreate(&e));
    events_.push_back(e);
  }
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  BLR_CUDA_CHECK(cudaStreamIsCapturing(stream_, &status));
  if (status == cudaStreamCaptureStatusActive)
    BLR_CUDA_CHECK(cudaEventRecordWithFlags(events_[next_], stream_, cudaEventRecordExternal));
  else
    BLR_CUDA_CHECK(cudaEventRecord(events_[next_], stream_));
  ++next_;
}

void OpProfiler::enter(const char* op, const std::vector<OpArg>& args) {
  record();
  ops_.push_back(op);
  labels_.push_back(cat(op, " ", describe_args(args)));
}

void OpProfiler::end() { record(); }

std::vector<double> OpProfiler::op_ms() const {
  BLR_CHECK(next_ == labels_.size() + 1, "OpProfiler: op_ms() needs a begin() ... end() recording");
  std::vector<double> ms(labels_.size());
  for (size_t i = 0; i < ms.size(); ++i) {
    float t = 0;
    BLR_CUDA_CHECK(cudaEventElapsedTime(&t, events_[i], events_[i + 1]));
    ms[i] = t;
  }
  return ms;
}

}  // namespace blr
