#include "engine/core/stream.h"

#include "engine/core/cuda_check.h"

namespace blr {

CudaStream::CudaStream() { BLR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
CudaStream::~CudaStream() {
  if (stream_) cudaStreamDestroy(stream_);
}
void CudaStream::synchronize() const { BLR_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

CudaEvent::CudaEvent() { BLR_CUDA_CHECK(cudaEventCreate(&event_)); }
CudaEvent::~CudaEvent() {
  if (event_) cudaEventDestroy(event_);
}
void CudaEvent::record(cudaStream_t stream) { BLR_CUDA_CHECK(cudaEventRecord(event_, stream)); }
void CudaEvent::synchronize() const { BLR_CUDA_CHECK(cudaEventSynchronize(event_)); }
bool CudaEvent::ready() const { return cudaEventQuery(event_) == cudaSuccess; }
float CudaEvent::elapsed_ms(const CudaEvent& start, const CudaEvent& end) {
  float ms = 0;
  BLR_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, end.event_));
  return ms;
}

float GpuTimer::ms() const {
  end_.synchronize();
  return CudaEvent::elapsed_ms(begin_, end_);
}

}  // namespace blr
