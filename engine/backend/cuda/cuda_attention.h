// Choice of implementation behind CudaOps::attention, exposed for tests and benchmarks.
//   Fused: kernels/attention.cu (flash attention on tensor cores): bf16/f16, head dim a multiple of 8 up
//          to 128, aligned rows, scale > 0.
//   Gemm:  cuBLAS S = scale·Q·Kᵀ in fp32 (query chunks bounded by a scratch budget), row softmax, P·V.
//          Any dtype and head dim; the fp32 path for tight parity tests and the VAE's D = 512 head.
// Auto (the default) takes Fused whenever it supports the case, else Gemm.
#pragma once

#include <cstdint>
#include <string>

namespace blr {

class CudaOps;

enum class AttentionPath : uint8_t { Auto, Fused, Gemm };

// Forces the path for later calls on `ops`; Fused then throws for a case the kernel does not support.
void set_attention_path(CudaOps& ops, AttentionPath path);
// What the last attention call on `ops` ran: a kernel variant name such as "flash<bf16,D80/72,rows64>",
// or "gemm"; empty before the first call.
std::string last_attention_path(CudaOps& ops);

}  // namespace blr
