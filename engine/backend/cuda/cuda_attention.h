// Choice of implementation behind CudaOps::attention, exposed for tests and benchmarks.
//   Fused: kernels/attention.cu (flash attention on tensor cores): bf16/f16, head dim a multiple of 8 up
//          to 128, aligned rows, scale > 0.
//   Gemm:  cuBLAS S = scale·Q·Kᵀ in fp32 (query chunks bounded by a scratch budget), row softmax, P·V.
//          Any dtype and head dim; the fp32 path for tight parity tests and the VAE's D = 512 head.
//   FusedSplitKeys: the fused kernel's split-key variant (one CTA per 16 query rows, warps split the keys;
//          for problems too small to fill the GPU with 64-row tiles). Same cases as Fused.
// Auto (the default) takes Fused whenever it supports the case, else Gemm. Within Fused, Auto takes the
// split-key variant where kern::flash_split_keys_pays() says so, if the environment variable
// BLR_ATTENTION_SPLIT_KEYS is 1 (opt-in until it has been timed on the device; 0 or unset: never).
#pragma once

#include <cstdint>
#include <string>

namespace blr {

class CudaOps;

enum class AttentionPath : uint8_t { Auto, Fused, Gemm, FusedSplitKeys };

// Forces the path for later calls on `ops`; Fused then throws for a case the kernel does not support.
void set_attention_path(CudaOps& ops, AttentionPath path);
// What the last attention call on `ops` ran: a kernel variant name such as "flash<bf16,D80/72,rows64>",
// or "gemm"; empty before the first call.
std::string last_attention_path(CudaOps& ops);

}  // namespace blr
