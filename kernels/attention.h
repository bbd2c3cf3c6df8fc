// Multi-head self-attention kernels (see attention.cu for the algorithm and its tiling).
// Raw pointers, shapes, dtypes and streams only.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_types.h"

namespace blr::kern {

// qkv holds, per token, q|k|v each laid out (head, d): q of head h at qkv + b·qkv_batch_stride +
// n·qkv_token_stride + h·D, k at +H·D, v at +2·H·D. out holds (head, d) per token.
// All strides are in elements.
struct AttentionShape {
  int batch = 0;
  int tokens = 0;
  int heads = 0;
  int head_dim = 0;
  int64_t qkv_batch_stride = 0;
  int64_t qkv_token_stride = 0;
  int64_t out_batch_stride = 0;
  int64_t out_token_stride = 0;
};

// True when flash_attention() handles this case: bf16/f16 storage, head_dim a multiple of 8 and at most
// 128, 16-byte aligned q/k/v rows, 4-byte aligned output rows, scale > 0.
bool flash_attention_supported(DT dt, const AttentionShape& s, const void* qkv, const void* out, float scale);

// Fused attention: out = softmax(q·kᵀ·scale)·v per (batch, head), one launch, no N² buffer.
// Returns cudaErrorInvalidValue for unsupported cases (check flash_attention_supported first).
cudaError_t flash_attention(DT dt, const AttentionShape& s, const void* qkv, void* out, float scale,
                            cudaStream_t stream);

// The split-key variant for small problems (see attention.cu): one CTA per 16 query rows, its warps take
// the key tiles round robin and merge their partial softmax results. Same cases as flash_attention();
// the same result up to rounding order. flash_split_keys_pays() says whether it should be faster: the
// row-tiled kernel would leave SMs idle and there are at least two key tiles to share.
cudaError_t flash_attention_split_keys(DT dt, const AttentionShape& s, const void* qkv, void* out, float scale,
                                       cudaStream_t stream);
bool flash_split_keys_pays(const AttentionShape& s);
const char* flash_attention_split_variant(DT dt, const AttentionShape& s);

// Name of the kernel variant flash_attention() would launch ("flash<bf16,D80/72,rows128>"), for logs
// and benchmarks; nullptr when unsupported.
const char* flash_attention_variant(DT dt, const AttentionShape& s);

// Row softmax of fp32 scores: p[r, 0:cols] = softmax(s[r, 0:cols]) for r < rows, written as `dt`.
// p may alias s when dt is F32 (each row is read completely before it is written).
cudaError_t softmax_rows_f32(const float* s, int64_t ld_s, DT dt, void* p, int64_t ld_p, int64_t rows,
                             int64_t cols, cudaStream_t stream);

}  // namespace blr::kern
