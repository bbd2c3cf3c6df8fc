// RAII CUDA stream and event, and a timer that brackets work on a stream with two events.
#pragma once

#include <cuda_runtime_api.h>

namespace blr {

class CudaStream {
 public:
  CudaStream();  // non-blocking stream
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

class CudaEvent {
 public:
  CudaEvent();
  ~CudaEvent();
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  void record(cudaStream_t stream);
  void synchronize() const;
  bool ready() const;
  cudaEvent_t get() const { return event_; }
  // Milliseconds between two recorded events (both must have completed).
  static float elapsed_ms(const CudaEvent& start, const CudaEvent& end);

 private:
  cudaEvent_t event_ = nullptr;
};

// Times a region on a stream: start(); ...enqueue work...; stop(); later ms() waits and reads.
class GpuTimer {
 public:
  void start(cudaStream_t s) { begin_.record(s); }
  void stop(cudaStream_t s) { end_.record(s); }
  float ms() const;

 private:
  CudaEvent begin_, end_;
};

}  // namespace blr
