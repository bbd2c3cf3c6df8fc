// Batched "block GEMM": the building block of every block-low-rank stage except BLAST's first one.
//
//   for q < batch, m < M, c < N:
//     C[q](m, c) = act( Σ_k A[q](m, k) · B[q](c, k) + bias[q](c) )
//   A[q](m, k) = A + q·a_batch + m·lda + k          activations, K-major
//   B[q](c, k) = B + q·b_batch + c·ldb + k          weights [N, K] like nn.Linear, K-major
//   C[q](m, c) = C + q·c_batch + m·ldc + (c / g)·g_stride + (c % g)
//   bias[q](c) = bias + q·bias_batch + c            (bias may be null)
//
// The column map with run length g lets a stage store its tile already permuted: Monarch's first stage
// computes t_j = x_j·R_jᵀ (batch j) and writes group k of t_j (columns [k·g, (k+1)·g), g = r/b) straight
// into u[:, k, j·g : (j+1)·g] of the [tokens, b, r] intermediate — g = r/b, g_stride = r, c_batch = g,
// ldc = b·r — so no permute pass exists. With g >= N the map is the plain row-major store.
//
// Paths: a tensor-core kernel (f16/bf16, mma.sync, needs 16-byte aligned rows: K, lda, ldb, a_batch,
// b_batch multiples of 8 and aligned base pointers) and a SIMT kernel (any dtype including f32, any
// alignment) that is the reference-quality fallback. Stores are vectorised when the output allows it and
// element-wise otherwise, so the output side never restricts the path.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "kernels/kernel_types.h"

namespace blr::kern {

enum class BlrPath : int { Auto = 0, TensorCore = 1, Simt = 2 };

struct BlrLaunch {
  BlrPath path = BlrPath::Auto;  // Auto = tensor cores when possible, else SIMT
  bool pdl = false;  // launch with programmatic stream serialisation (sm_90+ only; caller checks)
  int tile = 0;      // 0 = chosen by the cost model; otherwise a tile id (see *_tile_names) for experiments
  // With pdl: wait for the preceding kernel before reading anything, weights included (the first kernel of
  // a layer, whose predecessor is arbitrary). Without it only the activation operand waits and the weights
  // are prefetched early (a second stage, whose predecessor is the layer's own first stage).
  bool wait_first = false;
};

struct BlockGemmArgs {
  DT dt = DT::BF16;
  int64_t M = 0, N = 0, K = 0;
  int batch = 1;
  const void* A = nullptr;
  int64_t lda = 0, a_batch = 0;
  const void* B = nullptr;
  int64_t ldb = 0, b_batch = 0;
  void* C = nullptr;
  int64_t ldc = 0, c_batch = 0;
  int64_t g = 0;         // run length of contiguous output columns; <= 0 or >= N: plain store
  int64_t g_stride = 0;  // offset between runs
  const void* bias = nullptr;
  int64_t bias_batch = 0;
  Act act = Act::None;
};

// Whether the tensor-core kernel accepts these arguments (dtype and operand alignment).
bool block_gemm_tc_ok(const BlockGemmArgs& a);
// Enqueues the GEMM. Returns cudaErrorInvalidValue for malformed arguments (negative sizes, null operands
// with a non-empty problem, K or N beyond int range) and the launch error otherwise.
cudaError_t block_gemm(const BlockGemmArgs& a, const BlrLaunch& launch, cudaStream_t stream);
// What block_gemm would launch: "tc 64x64 w4 s4 grid 36x8x9 pdl" or "simt 64x64 grid ...".
std::string block_gemm_plan(const BlockGemmArgs& a, const BlrLaunch& launch);
// Tile ids accepted by BlrLaunch::tile for the tensor-core GEMM, e.g. "1=128x128 2=64x128 ...".
std::string block_gemm_tile_names();
int block_gemm_tile_count();  // ids 1..count

// An empty kernel of `ctas` CTAs × `threads` threads (which triggers its dependents and waits for its
// predecessor, as our kernels do): what one kernel node costs in a CUDA graph, for the benchmark's
// calibration line.
cudaError_t launch_probe(int ctas, int threads, bool pdl, cudaStream_t stream);

// Device facts the launchers use (current device, cached per device).
struct DeviceCaps {
  int device = 0;
  int cc = 0;          // 10·major + minor
  int sms = 0;
  int smem_optin = 0;  // max dynamic shared memory per block after opt-in
};
const DeviceCaps& device_caps();

}  // namespace blr::kern
