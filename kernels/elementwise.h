// Launchers for the elementwise / layout family (see elementwise.cu for the kernels and why they are
// shaped that way). Raw pointers, sizes and element strides; `rs` is a row stride in elements. Float
// ops take a storage type DT and compute in fp32; pure data movement (copy without conversion, fill,
// upsample, gather) works on raw elements of 1, 2, 4 or 8 bytes and is exact for any dtype.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_types.h"

namespace blr::kern {

// y[r, c] = act(x[r, c]) for r < rows, c < cols. y may be x.
cudaError_t activation(const void* x, int64_t x_rs, void* y, int64_t y_rs, int64_t rows, int64_t cols, Act act,
                       DT dt, cudaStream_t stream);

// y[r, c] = a[r, c] + b[r, c]; b_rs = 0 broadcasts one row of b over all rows. y may be a.
cudaError_t add(const void* a, int64_t a_rs, const void* b, int64_t b_rs, void* y, int64_t y_rs, int64_t rows,
                int64_t cols, DT dt, cudaStream_t stream);

// Softmax over each row (fp32 max/sum). y may be x.
cudaError_t softmax(const void* x, int64_t x_rs, void* y, int64_t y_rs, int64_t rows, int64_t cols, DT dt,
                    cudaStream_t stream);

// Up to 4 dimensions, outermost first; strides in elements (may be 0 for a broadcast source).
constexpr int kMaxCopyRank = 4;
struct StridedShape {
  int rank = 0;
  int64_t size[kMaxCopyRank] = {};
  int64_t src_stride[kMaxCopyRank] = {};
  int64_t dst_stride[kMaxCopyRank] = {};
};

// dst = src converted elementwise between float storage types (src_dt != dst_dt, or equal).
cudaError_t copy_convert(const void* src, DT src_dt, void* dst, DT dst_dt, const StridedShape& s,
                         cudaStream_t stream);
// dst = src for elements of `elem_bytes` (1, 2, 4 or 8) bytes: a bit-exact copy of any dtype.
cudaError_t copy_elements(const void* src, void* dst, int elem_bytes, const StridedShape& s, cudaStream_t stream);
// Every element of dst (src strides ignored) = the low `elem_bytes` bytes of `pattern`.
cudaError_t fill_elements(void* dst, int elem_bytes, uint64_t pattern, const StridedShape& s, cudaStream_t stream);

// Contiguous NHWC x [B, H, W, C] -> y [B, 2H, 2W, C], y[b, i, j] = x[b, i/2, j/2].
cudaError_t upsample_nearest2x(const void* x, void* y, int64_t B, int64_t H, int64_t W, int64_t C, int elem_bytes,
                               cudaStream_t stream);

// y[b, :] = table[ids[b], :] for b < B (rows of C elements, row strides in elements). An id outside
// [0, vocab) yields a row of all-ones bytes, which is NaN in f32/f16/bf16, instead of reading out of bounds.
cudaError_t embedding(const void* table, int64_t vocab, int64_t table_rs, const int32_t* ids, int64_t B, void* y,
                      int64_t y_rs, int64_t C, int elem_bytes, cudaStream_t stream);

// y[b, i] = cos(t[b]·f_i) for i < dim/2, y[b, dim/2 + i] = sin(t[b]·f_i), f_i = exp(−ln(max_period)·i/(dim/2));
// an odd dim leaves a last column of zeros. t is f32 [B].
cudaError_t timestep_embedding(const float* t, int64_t B, void* y, int64_t y_rs, int64_t dim, float max_period,
                               DT dt, cudaStream_t stream);

// Per row of logits [rows, cols]: the k largest entries in descending order (ties: smaller index first),
// as softmax probabilities (f32) and column indices (i32). 1 <= k <= cols. NaN logits are never selected.
cudaError_t softmax_topk(const void* logits, int64_t rs, int64_t rows, int64_t cols, int k, float* probs,
                         int64_t probs_rs, int32_t* indices, int64_t indices_rs, DT dt, cudaStream_t stream);

}  // namespace blr::kern
