// Tensor: a typed, strided view of memory on one device, with shared ownership of that memory.
// Views (slice, select, transpose, reshape) share memory; nothing is copied unless a function says so.
// Element strides are in elements, not bytes. Ops take tensors whose memory was planned beforehand, so
// nothing here allocates behind the caller's back.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/arena.h"
#include "engine/core/dtype.h"
#include "engine/core/error.h"

namespace blr {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "[2,197,768]"
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);

class Tensor {
 public:
  Tensor() = default;

  // Host tensor from the heap (not accounted), zero-filled.
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  // Accounted allocation on the arena's device (contents undefined).
  static Tensor empty(const Shape& shape, DType dtype, Arena& arena, MemCategory category,
                      const std::string& what);
  // Wraps existing memory; `holder` keeps it alive (may be null for memory owned elsewhere).
  static Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device,
                          std::shared_ptr<void> holder = nullptr, Shape strides = {});
  // Host f32 tensor from values (row-major).
  static Tensor from_vector(const Shape& shape, const std::vector<float>& values);

  bool defined() const { return data_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool on_cuda() const { return device_ == Device::CUDA; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;     // negative counts from the end
  int64_t stride(int i) const;  // likewise
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool is_contiguous() const;
  // Rows of a 2-D-like view: all dims but the last are contiguous among themselves, the last has stride 1.
  bool rows_are_dense() const;

  void* data() const { return data_; }
  template <typename T>
  T* data_as() const { return static_cast<T*>(data_); }
  const std::shared_ptr<void>& holder() const { return holder_; }

  // --- views (share memory) ---
  Tensor reshape(const Shape& shape) const;  // contiguous tensors only; one -1 allowed
  Tensor slice(int dim, int64_t start, int64_t end) const;
  Tensor select(int dim, int64_t index) const;  // removes `dim`
  Tensor transpose(int d0, int d1) const;
  Tensor unsqueeze(int dim) const;
  Tensor flatten_rows() const;  // [..., C] -> [rows, C]; needs dense rows

  // --- copies ---
  // Device transfers use cudaMemcpy on the default stream and complete before they return. They are not
  // ordered with work queued on other streams (CudaOps uses a non-blocking stream of its own): synchronize
  // that stream (ops.synchronize()) before reading a result it produced, or overwriting memory it reads.
  Tensor clone() const;                 // contiguous copy on the same device (host, or device via cudaMemcpy)
  Tensor to_host() const;               // contiguous host copy (synchronous)
  Tensor to_dtype(DType dtype) const;   // host only: converted contiguous copy
  Tensor to_device(Arena& arena, MemCategory category, const std::string& what) const;  // contiguous
  void copy_from(const Tensor& src);    // same shape and dtype; host<->device or host<->host, contiguous

  // Host-only element access for tests and tools (any dtype, converts through double).
  double at(std::initializer_list<int64_t> index) const;
  double flat(int64_t i) const;  // i-th element in row-major order of the view
  std::vector<float> to_vector() const;  // host or device, any float dtype, row-major

  std::string describe() const;  // "bf16[2,197,768] cuda"

 private:
  std::shared_ptr<void> holder_;
  void* data_ = nullptr;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
  Shape shape_;
  Shape strides_;
};

// Throws blr::Error naming `what` unless t has the expected shape (-1 = any size).
void check_shape(const Tensor& t, const Shape& expected, const std::string& what);
void check_dtype(const Tensor& t, DType expected, const std::string& what);

}  // namespace blr
