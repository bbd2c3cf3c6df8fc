// BLAST first stage with the S mixing fused in:
//
//   y_j = x_j · V_jᵀ                (x_j = columns [j·ib, (j+1)·ib) of x, V_j = V[j] of shape [r, ib])
//   z_k = Σ_j s_kj ⊙ y_j            (s_kj = S[k][j] of shape [r], scaling each of the r features)
//   z[m][k][c] = z_k(m, c)          (z is the [M, b, r] intermediate read by the second stage)
//
// One CTA owns a (token tile × rank slice) and computes y_j for every input block j in turn (a K loop of
// b segments), parking each y_j tile in shared memory (16-bit; fp32 in the SIMT kernel); then it mixes all
// b z_k tiles from there (on the tensor cores: one small mma product per feature) and stores them. y never leaves the chip and z is written once, already in the layout the batched U
// GEMM of the second stage reads (z_k = columns [k·r, (k+1)·r) of each row).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "kernels/blr_gemm.h"
#include "kernels/kernel_types.h"

namespace blr::kern {

struct BlastStage1Args {
  DT dt = DT::BF16;
  int64_t M = 0;   // tokens
  int b = 1;       // blocks
  int64_t r = 0;   // rank
  int64_t ib = 0;  // inputs per block (i / b)
  const void* x = nullptr;
  int64_t ldx = 0;          // row stride of x (elements)
  const void* V = nullptr;  // [b, r, ib] contiguous
  const void* S = nullptr;  // [b, b, r] contiguous
  void* z = nullptr;        // [M, b, r] contiguous
};

// Whether the tensor-core kernel accepts these arguments (f16/bf16, 16-byte aligned rows of x and V,
// b <= 16, and a tile whose shared memory fits the device).
bool blast_stage1_tc_ok(const BlastStage1Args& a);
cudaError_t blast_stage1(const BlastStage1Args& a, const BlrLaunch& launch, cudaStream_t stream);
std::string blast_stage1_plan(const BlastStage1Args& a, const BlrLaunch& launch);
std::string blast_stage1_tile_names();
int blast_stage1_tile_count();  // ids 1..count

}  // namespace blr::kern
