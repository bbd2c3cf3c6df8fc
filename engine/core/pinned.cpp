#include "engine/core/pinned.h"

#include <cuda_runtime_api.h>

#include <cstdlib>
#include <utility>

#include "engine/core/cuda_check.h"
#include "engine/core/device.h"
#include "engine/core/error.h"

namespace blr {

PinnedBuffer::PinnedBuffer(size_t bytes, bool mapped) : bytes_(bytes) {
  if (cuda_available()) {
    BLR_CUDA_CHECK(cudaHostAlloc(&host_, bytes ? bytes : 1, mapped ? cudaHostAllocMapped : cudaHostAllocDefault));
    pinned_ = true;
    if (mapped) BLR_CUDA_CHECK(cudaHostGetDevicePointer(&device_, host_, 0));
  } else {
    host_ = std::malloc(bytes ? bytes : 1);
    if (!host_) throw OutOfMemoryError(cat("out of host memory allocating a ", bytes, "-byte buffer"));
  }
}

PinnedBuffer::~PinnedBuffer() { release(); }

PinnedBuffer::PinnedBuffer(PinnedBuffer&& o) noexcept { *this = std::move(o); }

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    release();
    std::swap(host_, o.host_);
    std::swap(device_, o.device_);
    std::swap(bytes_, o.bytes_);
    std::swap(pinned_, o.pinned_);
  }
  return *this;
}

void PinnedBuffer::release() {
  if (host_) {
    if (pinned_) cudaFreeHost(host_);
    else std::free(host_);
  }
  host_ = device_ = nullptr;
  bytes_ = 0;
  pinned_ = false;
}

}  // namespace blr
