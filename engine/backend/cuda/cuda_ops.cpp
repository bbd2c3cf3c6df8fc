#include "engine/backend/cuda/cuda_ops.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cudnn.h>

#include "engine/core/cuda_check.h"
#include "engine/core/error.h"

namespace blr {

CudaOps::CudaOps(Arena& arena, cudaStream_t stream) : arena_(arena), stream_(stream) {
  BLR_CHECK(arena.device() == Device::CUDA, "CudaOps needs a CUDA arena, got '", arena.name(), "'");
  if (!stream_) {
    BLR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    own_stream_ = true;
  }
}

CudaOps::~CudaOps() {
  family_states_.clear();
  if (cudnn_) cudnnDestroy(cudnn_);
  if (cublaslt_) cublasLtDestroy(cublaslt_);
  if (cublas_) cublasDestroy(cublas_);
  if (own_stream_) cudaStreamDestroy(stream_);
}

void CudaOps::synchronize() { BLR_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

cublasContext* CudaOps::cublas() {
  if (!cublas_) {
    BLR_CUBLAS_CHECK(cublasCreate(&cublas_));
    BLR_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    // A fixed workspace keeps cuBLAS from allocating inside graph capture.
    size_t bytes = 0;
    void* ws = cublaslt_workspace(&bytes);
    BLR_CUBLAS_CHECK(cublasSetWorkspace(cublas_, ws, bytes));
  }
  return cublas_;
}

cublasLtContext* CudaOps::cublaslt() {
  if (!cublaslt_) BLR_CUBLAS_CHECK(cublasLtCreate(&cublaslt_));
  return cublaslt_;
}

cudnnContext* CudaOps::cudnn() {
  if (!cudnn_) {
    BLR_CUDNN_CHECK(cudnnCreate(&cudnn_));
    BLR_CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
  }
  return cudnn_;
}

bool CudaOps::capturing() const {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  BLR_CUDA_CHECK(cudaStreamIsCapturing(stream_, &status));
  return status != cudaStreamCaptureStatusNone;
}

void* CudaOps::scratch(size_t bytes, int slot) {
  BLR_CHECK(slot >= 0 && slot < kScratchSlots, "scratch slot ", slot, " out of range");
  Tensor& buf = scratch_[slot];
  if (buf.defined() && buf.nbytes() >= bytes) return buf.data();
  if (capturing())
    throw Error(cat("scratch slot ", slot, " needs ", format_bytes(bytes), " during graph capture but holds ",
                    format_bytes(buf.defined() ? buf.nbytes() : 0),
                    "; run the pass once eagerly before capturing it"));
  // Grow geometrically so a sequence of slightly larger requests does not reallocate each time.
  const size_t grown = std::max(bytes, buf.defined() ? buf.nbytes() + buf.nbytes() / 2 : bytes);
  if (buf.defined()) synchronize();  // the old buffer may still be in use by queued work
  buf = Tensor();
  buf = Tensor::empty({static_cast<int64_t>(grown)}, DType::U8, arena_, MemCategory::Workspace,
                      cat("cuda scratch slot ", slot));
  ++scratch_epoch_;
  return buf.data();
}

void* CudaOps::cublaslt_workspace(size_t* bytes) {
  // 8 MiB covers the split-K algorithms cuBLASLt picks for our shapes while keeping the ViT memory target.
  constexpr size_t kBytes = 8u << 20;
  if (!lt_workspace_.defined())
    lt_workspace_ = Tensor::empty({static_cast<int64_t>(kBytes)}, DType::U8, arena_, MemCategory::Workspace,
                                  "cuBLASLt workspace");
  *bytes = kBytes;
  return lt_workspace_.data();
}

}  // namespace blr
