// CudaOps: elementwise and layout ops — activation, add, softmax, strided copy/convert, fill, nearest 2×
// upsample, embedding gather, timestep embedding, patchify/unpatchify, softmax top-k. Validates the
// tensors and calls kernels/elementwise. Patchify and unpatchify are strided copies: the (B, H/p, p,
// W/p, p, C) <-> (B, H/p·W/p, p·p·C) permutation merges into at most four strided dimensions.
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/backend/cuda/cuda_ops.h"
#include "engine/backend/cuda/cuda_tensor_args.h"
#include "engine/core/cuda_check.h"
#include "engine/core/error.h"
#include "kernels/elementwise.h"

namespace blr {

using namespace cuda_args;

namespace {

// Same-shaped strided iteration over `size`, expressed with as few dimensions as possible: size-1
// dimensions dropped, and neighbours merged wherever both tensors step through them as one.
kern::StridedShape merge_dims(const Shape& size, const Shape& ss, const Shape& ds, const char* op,
                              const std::string& what) {
  std::vector<int64_t> sz, a, b;  // innermost first
  for (int i = static_cast<int>(size.size()) - 1; i >= 0; --i) {
    if (size[i] == 1) continue;
    if (!sz.empty() && ss[i] == a.back() * sz.back() && ds[i] == b.back() * sz.back()) {
      sz.back() *= size[i];
      continue;
    }
    sz.push_back(size[i]);
    a.push_back(ss[i]);
    b.push_back(ds[i]);
  }
  BLR_CHECK(sz.size() <= static_cast<size_t>(kern::kMaxCopyRank), "cuda ", op, ": ", what, " needs ", sz.size(),
            " strided dimensions after merging, at most ", kern::kMaxCopyRank, " are supported");
  kern::StridedShape s;
  s.rank = static_cast<int>(sz.size());
  for (int i = 0; i < s.rank; ++i) {  // outermost first
    s.size[i] = sz[s.rank - 1 - i];
    s.src_stride[i] = a[s.rank - 1 - i];
    s.dst_stride[i] = b[s.rank - 1 - i];
  }
  return s;
}

// Copies src -> dst over `size` with the given element strides (any dtype pair the kernels support).
void strided_copy(const void* src, DType src_dt, const Shape& ss, void* dst, DType dst_dt, const Shape& ds,
                  const Shape& size, cudaStream_t stream, const char* op, const std::string& what) {
  if (shape_numel(size) == 0) return;
  const kern::StridedShape s = merge_dims(size, ss, ds, op, what);
  if (src_dt == dst_dt) {
    BLR_CUDA_CHECK(kern::copy_elements(src, dst, static_cast<int>(dtype_size(src_dt)), s, stream));
  } else {
    BLR_CHECK(is_kernel_float(src_dt) && is_kernel_float(dst_dt), "cuda ", op, ": ", what, ": cannot convert ",
              dtype_name(src_dt), " to ", dtype_name(dst_dt), " (conversions are between f32, f16 and bf16)");
    BLR_CUDA_CHECK(kern::copy_convert(src, kernel_dtype(src_dt), dst, kernel_dtype(dst_dt), s, stream));
  }
}

void require_copyable_dtype(const Tensor& t, const char* op, const char* what) {
  const size_t es = dtype_size(t.dtype());
  BLR_CHECK(es == 1 || es == 2 || es == 4 || es == 8, "cuda ", op, ": ", what, " ", t.describe(),
            " has an unsupported element size");
}

// [rows, cols] view (row stride) of a tensor with dense rows.
struct Rows {
  int64_t rows = 0, cols = 0, rs = 0;
  void* ptr = nullptr;
};
Rows rows_of(const Tensor& t, const char* op, const char* what) {
  require_dense_rows(t, op, what);
  const Tensor m = t.flatten_rows();
  return Rows{m.dim(0), m.dim(1), m.stride(0), m.data()};
}

// patchify / unpatchify: dims (B, H/p, W/p, p_row, p_col, C) with the image's and the tokens' strides.
struct PatchLayout {
  Shape size, img_strides, tok_strides;
};
PatchLayout patch_layout(const Tensor& img, const Tensor& tokens, int p, const char* op) {
  BLR_CHECK(p >= 1, "cuda ", op, ": patch size ", p, " must be >= 1");
  BLR_CHECK(img.ndim() == 4, "cuda ", op, ": image ", img.describe(), " must be NHWC [B, H, W, C]");
  const int64_t B = img.dim(0), H = img.dim(1), W = img.dim(2), C = img.dim(3);
  BLR_CHECK(H % p == 0 && W % p == 0, "cuda ", op, ": image ", img.describe(), " is not a whole number of ", p,
            "x", p, " patches");
  const int64_t Hp = H / p, Wp = W / p;
  require_shape(tokens, {B, Hp * Wp, int64_t{p} * p * C}, op, "tokens");
  const Shape& si = img.strides();
  const Shape& st = tokens.strides();
  PatchLayout l;
  l.size = {B, Hp, Wp, p, p, C};
  l.img_strides = {si[0], p * si[1], p * si[2], si[1], si[2], si[3]};
  l.tok_strides = {st[0], Wp * st[1], st[1], p * C * st[2], C * st[2], st[2]};
  return l;
}

}  // namespace

void CudaOps::activation(const Tensor& x, Act act, Tensor& y) {
  const char* op = "activation";
  const kern::DT dt = float_tensor(x, op, "x");
  require_cuda(y, op, "y");
  require_same_shape(y, x, op, "y", "x");
  require_dtype(y, x.dtype(), op, "y");
  if (x.numel() == 0) return;
  const Rows xr = rows_of(x, op, "x"), yr = rows_of(y, op, "y");
  BLR_CUDA_CHECK(kern::activation(xr.ptr, xr.rs, yr.ptr, yr.rs, xr.rows, xr.cols, static_cast<kern::Act>(act), dt,
                                  stream()));
}

void CudaOps::add(const Tensor& a, const Tensor& b, Tensor& y) {
  const char* op = "add";
  const kern::DT dt = float_tensor(a, op, "a");
  require_cuda(b, op, "b");
  require_dtype(b, a.dtype(), op, "b");
  require_cuda(y, op, "y");
  require_same_shape(y, a, op, "y", "a");
  require_dtype(y, a.dtype(), op, "y");
  if (a.numel() == 0) return;
  if (b.shape() == a.shape()) {
    const Rows ar = rows_of(a, op, "a"), br = rows_of(b, op, "b"), yr = rows_of(y, op, "y");
    BLR_CUDA_CHECK(kern::add(ar.ptr, ar.rs, br.ptr, br.rs, yr.ptr, yr.rs, ar.rows, ar.cols, dt, stream()));
    return;
  }
  // b broadcast over a's leading dims: b's shape must be the trailing dims of a's.
  const Shape& bs = b.shape();
  const size_t k = bs.size();
  bool suffix = k >= 1 && k <= a.shape().size();
  for (size_t i = 0; suffix && i < k; ++i) suffix = bs[i] == a.shape()[a.shape().size() - k + i];
  BLR_CHECK(suffix, "cuda ", op, ": b ", b.describe(), " is neither a's shape ", shape_str(a.shape()),
            " nor a (non-empty) suffix of it");
  require_contiguous(b, op, "b");
  const int64_t inner = b.numel();
  if (k <= 1) {  // b is one row of channels: any dense-rows a and y
    const Rows ar = rows_of(a, op, "a"), yr = rows_of(y, op, "y");
    BLR_CUDA_CHECK(kern::add(ar.ptr, ar.rs, b.data(), 0, yr.ptr, yr.rs, ar.rows, ar.cols, dt, stream()));
    return;
  }
  require_contiguous(a, op, "a (broadcasting a multi-dimensional b)");
  require_contiguous(y, op, "y (broadcasting a multi-dimensional b)");
  BLR_CUDA_CHECK(kern::add(a.data(), inner, b.data(), 0, y.data(), inner, a.numel() / inner, inner, dt, stream()));
}

void CudaOps::softmax(const Tensor& x, Tensor& y) {
  const char* op = "softmax";
  const kern::DT dt = float_tensor(x, op, "x");
  require_cuda(y, op, "y");
  require_same_shape(y, x, op, "y", "x");
  require_dtype(y, x.dtype(), op, "y");
  if (x.numel() == 0) return;
  const Rows xr = rows_of(x, op, "x"), yr = rows_of(y, op, "y");
  BLR_CUDA_CHECK(kern::softmax(xr.ptr, xr.rs, yr.ptr, yr.rs, xr.rows, xr.cols, dt, stream()));
}

void CudaOps::copy(const Tensor& src, Tensor& dst) {
  const char* op = "copy";
  require_cuda(src, op, "src");
  require_cuda(dst, op, "dst");
  require_same_shape(dst, src, op, "dst", "src");
  require_copyable_dtype(src, op, "src");
  require_copyable_dtype(dst, op, "dst");
  if (src.numel() == 0) return;
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
    if (src.data() != dst.data())
      BLR_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), src.nbytes(), cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  strided_copy(src.data(), src.dtype(), src.strides(), dst.data(), dst.dtype(), dst.strides(), src.shape(),
               stream(), op, cat(src.describe(), " -> ", dst.describe()));
}

void CudaOps::fill(Tensor& dst, float value) {
  const char* op = "fill";
  require_cuda(dst, op, "dst");
  require_copyable_dtype(dst, op, "dst");
  if (dst.numel() == 0) return;
  const size_t es = dtype_size(dst.dtype());
  uint64_t pattern = 0;
  store_from_double(&pattern, dst.dtype(), 0, static_cast<double>(value));
  unsigned char bytes[8];
  std::memcpy(bytes, &pattern, 8);
  bool same_bytes = true;
  for (size_t i = 1; i < es; ++i) same_bytes = same_bytes && bytes[i] == bytes[0];
  if (dst.is_contiguous() && same_bytes) {
    BLR_CUDA_CHECK(cudaMemsetAsync(dst.data(), bytes[0], dst.nbytes(), stream()));
    return;
  }
  const kern::StridedShape s =
      merge_dims(dst.shape(), dst.strides(), dst.strides(), op, cat("dst ", dst.describe()));
  BLR_CUDA_CHECK(kern::fill_elements(dst.data(), static_cast<int>(es), pattern, s, stream()));
}

void CudaOps::upsample_nearest2x(const Tensor& x, Tensor& y) {
  const char* op = "upsample_nearest2x";
  require_cuda(x, op, "x");
  require_cuda(y, op, "y");
  require_copyable_dtype(x, op, "x");
  BLR_CHECK(x.ndim() == 4, "cuda ", op, ": x ", x.describe(), " must be NHWC [B, H, W, C]");
  require_shape(y, {x.dim(0), 2 * x.dim(1), 2 * x.dim(2), x.dim(3)}, op, "y");
  require_dtype(y, x.dtype(), op, "y");
  require_contiguous(x, op, "x");
  require_contiguous(y, op, "y");
  BLR_CUDA_CHECK(kern::upsample_nearest2x(x.data(), y.data(), x.dim(0), x.dim(1), x.dim(2), x.dim(3),
                                          static_cast<int>(dtype_size(x.dtype())), stream()));
}

void CudaOps::embedding(const Tensor& table, const Tensor& ids, Tensor& y) {
  const char* op = "embedding";
  require_cuda(table, op, "table");
  require_copyable_dtype(table, op, "table");
  BLR_CHECK(table.ndim() == 2, "cuda ", op, ": table ", table.describe(), " must be [vocab, C]");
  require_dense_rows(table, op, "table");
  require_cuda(ids, op, "ids");
  require_dtype(ids, DType::I32, op, "ids");
  BLR_CHECK(ids.ndim() == 1 && ids.is_contiguous(), "cuda ", op, ": ids ", ids.describe(),
            " must be a contiguous [B] vector");
  require_cuda(y, op, "y");
  require_dtype(y, table.dtype(), op, "y");
  require_shape(y, {ids.dim(0), table.dim(1)}, op, "y");
  require_dense_rows(y, op, "y");
  BLR_CUDA_CHECK(kern::embedding(table.data(), table.dim(0), table.stride(0), ids.data_as<const int32_t>(),
                                 ids.dim(0), y.data(), y.stride(0), table.dim(1),
                                 static_cast<int>(dtype_size(table.dtype())), stream()));
}

void CudaOps::timestep_embedding(const Tensor& t, float max_period, Tensor& y) {
  const char* op = "timestep_embedding";
  require_cuda(t, op, "t");
  require_dtype(t, DType::F32, op, "t");
  BLR_CHECK(t.ndim() == 1 && t.is_contiguous(), "cuda ", op, ": t ", t.describe(), " must be a contiguous [B] vector");
  const kern::DT dt = float_tensor(y, op, "y");
  BLR_CHECK(y.ndim() == 2 && y.dim(0) == t.dim(0), "cuda ", op, ": y ", y.describe(), " must be [", t.dim(0),
            ", dim]");
  require_dense_rows(y, op, "y");
  BLR_CHECK(std::isfinite(max_period) && max_period > 0.0f, "cuda ", op, ": max_period ", max_period,
            " must be positive");
  BLR_CUDA_CHECK(kern::timestep_embedding(t.data_as<const float>(), t.dim(0), y.data(), y.stride(0), y.dim(1),
                                          max_period, dt, stream()));
}

void CudaOps::patchify(const Tensor& img, int patch, Tensor& tokens) {
  const char* op = "patchify";
  require_cuda(img, op, "img");
  require_cuda(tokens, op, "tokens");
  require_copyable_dtype(img, op, "img");
  require_copyable_dtype(tokens, op, "tokens");
  const PatchLayout l = patch_layout(img, tokens, patch, op);
  strided_copy(img.data(), img.dtype(), l.img_strides, tokens.data(), tokens.dtype(), l.tok_strides, l.size,
               stream(), op, cat(img.describe(), " -> ", tokens.describe()));
}

void CudaOps::unpatchify(const Tensor& tokens, int patch, Tensor& img) {
  const char* op = "unpatchify";
  require_cuda(img, op, "img");
  require_cuda(tokens, op, "tokens");
  require_copyable_dtype(img, op, "img");
  require_copyable_dtype(tokens, op, "tokens");
  const PatchLayout l = patch_layout(img, tokens, patch, op);
  strided_copy(tokens.data(), tokens.dtype(), l.tok_strides, img.data(), img.dtype(), l.img_strides, l.size,
               stream(), op, cat(tokens.describe(), " -> ", img.describe()));
}

void CudaOps::softmax_topk(const Tensor& logits, Tensor& probs, Tensor& indices) {
  const char* op = "softmax_topk";
  const kern::DT dt = float_tensor(logits, op, "logits");
  BLR_CHECK(logits.ndim() == 2, "cuda ", op, ": logits ", logits.describe(), " must be [B, classes]");
  require_dense_rows(logits, op, "logits");
  require_cuda(probs, op, "probs");
  require_dtype(probs, DType::F32, op, "probs");
  require_cuda(indices, op, "indices");
  require_dtype(indices, DType::I32, op, "indices");
  BLR_CHECK(probs.ndim() == 2 && probs.dim(0) == logits.dim(0), "cuda ", op, ": probs ", probs.describe(),
            " must be [", logits.dim(0), ", k]");
  require_same_shape(indices, probs, op, "indices", "probs");
  require_dense_rows(probs, op, "probs");
  require_dense_rows(indices, op, "indices");
  const int64_t k = probs.dim(1), classes = logits.dim(1);
  BLR_CHECK(k >= 1 && k <= classes, "cuda ", op, ": k = ", k, " must be between 1 and the number of classes (",
            classes, ")");
  BLR_CHECK(classes < (int64_t{1} << 31), "cuda ", op, ": ", classes, " classes do not fit 32-bit indices");
  if (logits.dim(0) == 0) return;
  BLR_CUDA_CHECK(kern::softmax_topk(logits.data(), logits.stride(0), logits.dim(0), classes, static_cast<int>(k),
                                    probs.data_as<float>(), probs.stride(0), indices.data_as<int32_t>(),
                                    indices.stride(0), dt, stream()));
}

}  // namespace blr
