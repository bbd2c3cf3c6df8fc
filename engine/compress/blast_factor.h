// BLAST factorisation of a dense matrix (Lee et al., NeurIPS 2024; update rules as in the authors'
// ops/blast_ops.py). W [M, N] is split into b×b blocks W_kj (p = M/b rows, q = N/b columns) and fitted as
// W_kj ≈ U_k · diag(s_kj) · V_jᵀ. With A = W/σ (σ the standard deviation of W's entries):
//   init   U ~ N(0,1)·0.001/√r, V ~ N(0,1)·0.001/√r, S ~ N(0,1) from one seeded host RNG;
//   for t < T, with lr_t = lr·(1 − (1 − end)·t/T), update U, then V, then S, each by
//          X ← X − lr_t · ∇_X ‖A − Â‖²_F · (G_X + εI)⁻¹,   ε = δ·‖A − Â‖_F (at the current factors)
//   where G_X is the Gram matrix of the other factors for that block (for U_k: Σ_j diag(s_kj)V_jᵀV_j
//   diag(s_kj); for V_j: Σ_k diag(s_kj)U_kᵀU_k diag(s_kj); for s_kj: (U_kᵀU_k) ∘ (V_jᵀV_j));
//   finally S ← σ·S.
// The loss is the full squared norm as in the authors' code (so the gradient carries a factor 2; the
// step is an over-relaxed damped least-squares solve, which converges markedly faster than ½‖·‖²).
// Written without ever forming Â: with P_kj = A_kj V_j, Y_k = Σ_j P_kj diag(s_kj), G_k as above,
//   ∇_{U_k} = 2(U_k G_k − Y_k), so U_k ← (1 − 2lr)U_k + 2lr·(Y_k + εU_k)(G_k + εI)⁻¹,
//   ‖A − Â‖² = ‖A‖² − 2Σ_k⟨U_k, Y_k⟩ + Σ_k⟨U_kᵀU_k, G_k⟩   (and likewise for V and S),
// so an iteration costs two passes of b² block GEMMs (A·V and Uᵀ·A) plus Gram matrices and small
// Cholesky solves. These helpers are shared by the CPU (blast_cpu.cpp) and GPU (gpu_compress.cpp) paths.
#pragma once

#include <cstdint>
#include <vector>

namespace blr::blast_detail {

// Deterministic standard normals (splitmix64 + Box–Muller), identical on every platform and compiler,
// so the CPU and GPU paths start from the same factors.
void fill_normal(std::vector<float>& out, uint64_t seed, uint64_t stream, double scale);

struct Init {
  std::vector<float> U;  // [b, p, r]
  std::vector<float> V;  // [b, r, q]   (V_jᵀ, the stored layout)
  std::vector<float> S;  // [b, b, r]
};
Init initial_factors(int64_t b, int64_t p, int64_t q, int64_t r, uint64_t seed);

// lr_t of iteration t (0-based) of T.
double step_size(double lr, double end_factor, int t, int T);

// Unbiased standard deviation and squared Frobenius norm of n floats, in double.
void moments(const float* w, int64_t n, double* stddev, double* sumsq);

}  // namespace blr::blast_detail
