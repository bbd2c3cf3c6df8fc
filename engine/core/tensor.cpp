#include "engine/core/tensor.h"

#include <cuda_runtime_api.h>

#include <cstring>
#include <numeric>

#include "engine/core/cuda_check.h"
#include "engine/core/error.h"

namespace blr {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  for (int64_t d : shape) BLR_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  std::shared_ptr<void> mem(std::calloc(bytes ? bytes : 1, 1), std::free);
  if (!mem) throw OutOfMemoryError(cat("out of host memory allocating ", format_bytes(bytes)));
  return from_blob(mem.get(), shape, dtype, Device::CPU, mem);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Arena& arena, MemCategory category,
                     const std::string& what) {
  for (int64_t d : shape) BLR_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape), " for ", what);
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  auto mem = arena.allocate(bytes, category, what);
  return from_blob(mem.get(), shape, dtype, arena.device(), mem);
}

Tensor Tensor::from_blob(void* data, const Shape& shape, DType dtype, Device device,
                         std::shared_ptr<void> holder, Shape strides) {
  Tensor t;
  t.holder_ = std::move(holder);
  t.data_ = data;
  t.dtype_ = dtype;
  t.device_ = device;
  t.shape_ = shape;
  t.strides_ = strides.empty() ? contiguous_strides(shape) : std::move(strides);
  BLR_CHECK(t.strides_.size() == shape.size(), "strides rank differs from shape rank");
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& values) {
  BLR_CHECK(shape_numel(shape) == static_cast<int64_t>(values.size()), "from_vector: ", values.size(),
            " values for shape ", shape_str(shape));
  Tensor t = zeros(shape, DType::F32);
  if (!values.empty()) std::memcpy(t.data(), values.data(), values.size() * sizeof(float));
  return t;
}

static int norm_dim(int d, int n) {
  const int r = d < 0 ? d + n : d;
  BLR_CHECK(r >= 0 && r < n, "dimension ", d, " out of range for a ", n, "-d tensor");
  return r;
}

int64_t Tensor::dim(int i) const { return shape_[norm_dim(i, ndim())]; }
int64_t Tensor::stride(int i) const { return strides_[norm_dim(i, ndim())]; }

bool Tensor::is_contiguous() const {
  int64_t acc = 1;
  for (int i = ndim() - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != acc) return false;
    acc *= shape_[i];
  }
  return true;
}

bool Tensor::rows_are_dense() const {
  if (ndim() == 0) return true;
  if (shape_.back() != 1 && strides_.back() != 1) return false;
  int64_t acc = strides_.size() >= 2 ? strides_[ndim() - 2] : 0;
  for (int i = ndim() - 2; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != acc) return false;
    acc *= shape_[i];
  }
  return true;
}

Tensor Tensor::reshape(const Shape& shape) const {
  BLR_CHECK(is_contiguous(), "reshape of a non-contiguous tensor ", describe());
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      BLR_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    BLR_CHECK(known > 0 && numel() % known == 0, "reshape ", describe(), " to ", shape_str(shape));
    s[infer] = numel() / known;
  }
  BLR_CHECK(shape_numel(s) == numel(), "reshape ", describe(), " to ", shape_str(shape), ": sizes differ");
  return from_blob(data_, s, dtype_, device_, holder_);
}

Tensor Tensor::slice(int d, int64_t start, int64_t end) const {
  d = norm_dim(d, ndim());
  BLR_CHECK(0 <= start && start <= end && end <= shape_[d], "slice [", start, ",", end, ") out of range for dim ",
            d, " of ", describe());
  Tensor t = *this;
  t.shape_[d] = end - start;
  t.data_ = static_cast<char*>(data_) + start * strides_[d] * static_cast<int64_t>(dtype_size(dtype_));
  return t;
}

Tensor Tensor::select(int d, int64_t index) const {
  d = norm_dim(d, ndim());
  BLR_CHECK(0 <= index && index < shape_[d], "select index ", index, " out of range for dim ", d, " of ", describe());
  Tensor t = slice(d, index, index + 1);
  t.shape_.erase(t.shape_.begin() + d);
  t.strides_.erase(t.strides_.begin() + d);
  return t;
}

Tensor Tensor::transpose(int d0, int d1) const {
  d0 = norm_dim(d0, ndim());
  d1 = norm_dim(d1, ndim());
  Tensor t = *this;
  std::swap(t.shape_[d0], t.shape_[d1]);
  std::swap(t.strides_[d0], t.strides_[d1]);
  return t;
}

Tensor Tensor::unsqueeze(int d) const {
  BLR_CHECK(d >= 0 && d <= ndim(), "unsqueeze dim ", d, " for ", describe());
  Tensor t = *this;
  const int64_t st = d < ndim() ? strides_[d] * shape_[d] : 1;
  t.shape_.insert(t.shape_.begin() + d, 1);
  t.strides_.insert(t.strides_.begin() + d, st);
  return t;
}

Tensor Tensor::flatten_rows() const {
  BLR_CHECK(ndim() >= 1 && rows_are_dense(), "flatten_rows needs dense rows: ", describe());
  const int64_t cols = shape_.back();
  const int64_t rows = cols ? numel() / cols : 0;
  const int64_t row_stride = ndim() >= 2 ? strides_[ndim() - 2] : cols;
  return from_blob(data_, {rows, cols}, dtype_, device_, holder_, {row_stride, 1});
}

// cudaMemcpy runs on the default stream, which CudaOps' non-blocking streams do not wait for, and returns
// before a copy into device memory has landed (pageable host -> device: once the data is staged;
// device -> device: at once). Waiting for the default stream makes such a copy complete before the call
// returns, so work enqueued afterwards on any stream reads the new bytes. (Only the default stream is
// waited for: other threads' graph captures on non-blocking streams are unaffected.)
static void wait_for_default_stream() { BLR_CUDA_CHECK(cudaStreamSynchronize(nullptr)); }

// Copies a strided host view into contiguous memory, element by element (bytes of dtype size).
static void gather_host(const Tensor& src, void* dst) {
  const size_t es = dtype_size(src.dtype());
  const int nd = src.ndim();
  const int64_t n = src.numel();
  std::vector<int64_t> idx(nd, 0);
  const char* base = static_cast<const char*>(src.data());
  char* out = static_cast<char*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (int d = 0; d < nd; ++d) off += idx[d] * src.strides()[d];
    std::memcpy(out + i * es, base + off * static_cast<int64_t>(es), es);
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[d] < src.shape()[d]) break;
      idx[d] = 0;
    }
  }
}

Tensor Tensor::clone() const {
  if (device_ == Device::CPU) return to_host();
  BLR_CHECK(is_contiguous(), "clone of a non-contiguous device tensor ", describe());
  void* ptr = nullptr;
  BLR_CUDA_CHECK(cudaMalloc(&ptr, nbytes() ? nbytes() : 1));
  std::shared_ptr<void> mem(ptr, [](void* p) { cudaFree(p); });
  BLR_CUDA_CHECK(cudaMemcpy(ptr, data_, nbytes(), cudaMemcpyDeviceToDevice));
  wait_for_default_stream();  // a device-to-device cudaMemcpy returns before it has run
  return from_blob(ptr, shape_, dtype_, Device::CUDA, mem);
}

Tensor Tensor::to_host() const {
  Tensor out = zeros(shape_, dtype_);
  if (numel() == 0) return out;
  if (device_ == Device::CUDA) {
    BLR_CHECK(is_contiguous(), "to_host of a non-contiguous device tensor ", describe());
    BLR_CUDA_CHECK(cudaMemcpy(out.data(), data_, nbytes(), cudaMemcpyDeviceToHost));
  } else if (is_contiguous()) {
    std::memcpy(out.data(), data_, nbytes());
  } else {
    gather_host(*this, out.data());
  }
  return out;
}

Tensor Tensor::to_dtype(DType dtype) const {
  BLR_CHECK(device_ == Device::CPU, "to_dtype works on host tensors: ", describe());
  Tensor src = is_contiguous() ? *this : to_host();
  if (dtype == dtype_) return src.clone();
  Tensor out = zeros(shape_, dtype);
  const int64_t n = numel();
  if (dtype_ == DType::F32 && dtype == DType::BF16) {
    const float* s = src.data_as<float>();
    uint16_t* d = out.data_as<uint16_t>();
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16_bits(s[i]);
  } else if (dtype_ == DType::BF16 && dtype == DType::F32) {
    const uint16_t* s = src.data_as<uint16_t>();
    float* d = out.data_as<float>();
    for (int64_t i = 0; i < n; ++i) d[i] = bf16_bits_to_f32(s[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) store_from_double(out.data(), dtype, i, load_as_double(src.data(), dtype_, i));
  }
  return out;
}

Tensor Tensor::to_device(Arena& arena, MemCategory category, const std::string& what) const {
  Tensor src = (device_ == Device::CPU && !is_contiguous()) ? to_host() : *this;
  Tensor out = empty(shape_, dtype_, arena, category, what);
  out.copy_from(src);
  return out;
}

void Tensor::copy_from(const Tensor& src) {
  BLR_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_, "copy_from: ", src.describe(), " into ", describe());
  BLR_CHECK(is_contiguous() && src.is_contiguous(), "copy_from needs contiguous tensors: ", src.describe(),
            " into ", describe());
  if (numel() == 0) return;
  if (device_ == Device::CPU && src.device_ == Device::CPU) {
    std::memcpy(data_, src.data_, nbytes());
    return;
  }
  BLR_CUDA_CHECK(cudaMemcpy(data_, src.data_, nbytes(), cudaMemcpyDefault));
  if (device_ == Device::CUDA) wait_for_default_stream();
}

double Tensor::at(std::initializer_list<int64_t> index) const {
  BLR_CHECK(device_ == Device::CPU, "at() on a device tensor");
  BLR_CHECK(static_cast<int>(index.size()) == ndim(), "at(): ", index.size(), " indices for ", describe());
  int64_t off = 0;
  int d = 0;
  for (int64_t i : index) {
    BLR_CHECK(i >= 0 && i < shape_[d], "at(): index ", i, " out of range in dim ", d, " of ", describe());
    off += i * strides_[d++];
  }
  return load_as_double(data_, dtype_, static_cast<size_t>(off));
}

double Tensor::flat(int64_t i) const {
  BLR_CHECK(device_ == Device::CPU, "flat() on a device tensor");
  int64_t off = 0;
  for (int d = ndim() - 1; d >= 0; --d) {
    off += (i % shape_[d]) * strides_[d];
    i /= shape_[d];
  }
  return load_as_double(data_, dtype_, static_cast<size_t>(off));
}

std::vector<float> Tensor::to_vector() const {
  Tensor h = (device_ == Device::CPU) ? *this : to_host();
  std::vector<float> v(static_cast<size_t>(numel()));
  if (h.dtype_ == DType::F32 && h.is_contiguous()) {
    if (!v.empty()) std::memcpy(v.data(), h.data_, v.size() * 4);
    return v;
  }
  for (int64_t i = 0; i < numel(); ++i) v[i] = static_cast<float>(h.flat(i));
  return v;
}

std::string Tensor::describe() const {
  return cat(dtype_name(dtype_), shape_str(shape_), " ", device_name(device_));
}

void check_shape(const Tensor& t, const Shape& expected, const std::string& what) {
  bool ok = t.ndim() == static_cast<int>(expected.size());
  for (size_t i = 0; ok && i < expected.size(); ++i) ok = expected[i] < 0 || expected[i] == t.shape()[i];
  if (!ok) throw InputError(cat(what, ": shape ", shape_str(t.shape()), ", expected ", shape_str(expected)));
}

void check_dtype(const Tensor& t, DType expected, const std::string& what) {
  if (t.dtype() != expected)
    throw InputError(cat(what, ": dtype ", dtype_name(t.dtype()), ", expected ", dtype_name(expected)));
}

}  // namespace blr
