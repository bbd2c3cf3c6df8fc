// Elementwise and reduction kernels for the GPU BLAST factorisation (engine/compress/gpu_compress.cpp).
// The GEMMs and Cholesky solves go through cuBLAS/cuSOLVER; these cover the small glue between them.
// All matrices are fp32 row-major; "blocks" are consecutive matrices in one buffer. Every launcher returns
// the launch error (cudaSuccess when fine) and queues work on `stream` without synchronising.
#pragma once

#include <cuda_runtime_api.h>

namespace blr::kern {

// Weighted block sum: out[a] = Σ_{t<T} in[a·in_sa + t·in_st] · diag(s[a·s_sa + t·s_st]), where the
// rows×cols block is scaled per column by the vector (scale_rows = false: out[m][c] = Σ in[m][c]·s[c]) or
// per row (scale_rows = true: out[m][c] = Σ in[m][c]·s[m]). Strides are in elements.
cudaError_t blast_block_mix(const float* in, long long in_sa, long long in_st, const float* s, long long s_sa,
                            long long s_st, float* out, int A, int T, int rows, int cols, bool scale_rows,
                            cudaStream_t stream);

// Gram mixing: out[a][x][y] = Σ_{t<T} g[t][x][y] · s_at[x] · s_at[y], s_at = s + a·s_sa + t·s_st; g, out r×r.
cudaError_t blast_gram_mix(const float* g, const float* s, long long s_sa, long long s_st, float* out, int A, int T,
                           int r, cudaStream_t stream);

// out[k·b + j] = gu[k] ∘ gv[j] (elementwise), all r×r.
cudaError_t blast_hadamard(const float* gu, const float* gv, float* out, int b, int r, cudaStream_t stream);

// d[k·b + j][c] = Σ_m u[k][m][c] · p[k·b + j][m][c]; u blocks p_rows×r, d rows of r.
cudaError_t blast_col_dot(const float* u, const float* p, float* d, int b, int p_rows, int r, cudaStream_t stream);

// Number of partial sums blast_dots() uses (its `partials` buffer holds 2·kDotBlocks doubles).
constexpr int kDotBlocks = 256;

// Two dot products in double, reduced in a fixed order (deterministic):
//   out[0] = Σ x1·y1 (or Σ (x1 − y1)² when diff1), out[1] = Σ x2·y2,
//   out[2] = delta · sqrt(max(a2 − 2·out[0] + out[1], 0))   (the BLAST damping ε).
cudaError_t blast_dots(const float* x1, const float* y1, long long n1, bool diff1, const float* x2, const float* y2,
                       long long n2, double a2, double delta, double* partials, double* out, cudaStream_t stream);

// For `count` r×r matrices m[i]: eff[i] = *eps + floor_rel·trace(m[i])/r + 1e-30; m[i] += eff[i]·I.
cudaError_t blast_add_diag(float* m, int count, int r, const double* eps, double floor_rel, float* eff,
                           cudaStream_t stream);

// rhs[i][e] = y[i][e] + eff[i]·x[i][e] for `count` blocks of `len` elements (rhs may alias y).
cudaError_t blast_damped_rhs(const float* y, const float* x, const float* eff, float* rhs, int count, long long len,
                             cudaStream_t stream);

// x = (1 − a)·x + a·sol over n elements.
cudaError_t blast_relax(float* x, const float* sol, long long n, float a, cudaStream_t stream);

// flag[0] |= 1 when any info[i] != 0 (records a failed Cholesky without a host round trip).
cudaError_t blast_flag_nonzero(const int* info, int n, int* flag, cudaStream_t stream);

}  // namespace blr::kern
