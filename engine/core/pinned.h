// Page-locked host memory for fast uploads (camera frames, downloads of results). On integrated GPUs
// (Jetson) a mapped buffer is visible to kernels directly, so frames need no copy at all. Without a
// CUDA device this falls back to ordinary memory, so callers need no special case.
#pragma once

#include <cstddef>

namespace blr {

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes, bool mapped = false);
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& other) noexcept;
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void* host() const { return host_; }
  void* device() const { return device_; }  // non-null only for mapped buffers on a device
  size_t size() const { return bytes_; }
  bool pinned() const { return pinned_; }

 private:
  void release();
  void* host_ = nullptr;
  void* device_ = nullptr;
  size_t bytes_ = 0;
  bool pinned_ = false;
};

}  // namespace blr
