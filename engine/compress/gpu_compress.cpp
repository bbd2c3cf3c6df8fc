// GPU compression (see gpu_compress.h). Row-major thinking throughout: a row-major X [m, n] with leading
// dimension ld is, to column-major cuBLAS/cuSOLVER, the matrix Xᵀ [n, m] with the same ld, so
// C = op(A)·op(B) (row-major) is issued as Cᵀ = op(B)ᵀ·op(A)ᵀ with the operands swapped.
#include "engine/compress/gpu_compress.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/compress/blast_factor.h"
#include "engine/compress/compress_util.h"
#include "engine/core/arena.h"
#include "engine/core/cuda_check.h"
#include "engine/core/device.h"
#include "engine/core/error.h"
#include "kernels/blast_factor.h"

namespace blr {

namespace {

struct GpuContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cusolverDnHandle_t solver = nullptr;
  Arena arena{Device::CUDA, "compress"};

  GpuContext() {
    BLR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    BLR_CUBLAS_CHECK(cublasCreate(&blas));
    BLR_CUBLAS_CHECK(cublasSetStream(blas, stream));
    BLR_CUSOLVER_CHECK(cusolverDnCreate(&solver));
    BLR_CUSOLVER_CHECK(cusolverDnSetStream(solver, stream));
  }
  ~GpuContext() {
    // Errors are ignored: at process exit the driver may already be shutting down.
    if (solver) cusolverDnDestroy(solver);
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }
};

std::mutex& context_mutex() {
  static std::mutex m;
  return m;
}

// One context per process, created on first use; callers hold context_mutex() while using it.
GpuContext& context() {
  static std::unique_ptr<GpuContext> ctx;
  if (!ctx) ctx = std::make_unique<GpuContext>();
  return *ctx;
}

// A device buffer of n elements of T from the context's arena.
template <typename T>
struct DevBuf {
  std::shared_ptr<void> mem;
  T* ptr = nullptr;
  size_t n = 0;
  DevBuf() = default;
  DevBuf(Arena& arena, size_t count, const char* what) : n(count) {
    mem = arena.allocate(std::max<size_t>(count, 1) * sizeof(T), MemCategory::Workspace, what);
    ptr = static_cast<T*>(mem.get());
  }
  T* operator+(long long off) const { return ptr + off; }
};

template <typename T>
void upload(DevBuf<T>& dst, const T* src, size_t n, cudaStream_t s) {
  BLR_CUDA_CHECK(cudaMemcpyAsync(dst.ptr, src, n * sizeof(T), cudaMemcpyHostToDevice, s));
}
template <typename T>
void download(T* dst, const DevBuf<T>& src, size_t n, cudaStream_t s) {
  BLR_CUDA_CHECK(cudaMemcpyAsync(dst, src.ptr, n * sizeof(T), cudaMemcpyDeviceToHost, s));
}

// Row-major, strided-batched: C[i] = op(A[i])·op(B[i]) (+ beta·C[i]); C is m×n, the inner dimension k.
void gemm_rm(cublasHandle_t h, bool ta, bool tb, int m, int n, int k, const float* A, int lda, long long sa,
             const float* B, int ldb, long long sb, float* C, int ldc, long long sc, int batch, float beta = 0.0f) {
  const float alpha = 1.0f;
  BLR_CUBLAS_CHECK(cublasSgemmStridedBatched(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                                             &alpha, B, ldb, sb, A, lda, sa, &beta, C, ldc, sc, batch));
}

void check_launch(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(cat("GPU compression: launching ", what, " failed: ", cudaGetErrorString(e)));
}

// ---- truncated SVDs (cuSOLVER gesvdj, Jacobi) --------------------------------------------------------

struct SvdResult {
  std::vector<float> s;   // min(m, n) singular values, descending
  std::vector<float> left;   // [rows, k] row-major: left singular vectors of the row-major matrix
  std::vector<float> right;  // [cols, k] row-major: right singular vectors
};

// SVD of the row-major rows×cols matrix at `dev` (contiguous, overwritten). Column-major, the buffer is
// Xᵀ (cols×rows) = Uc Σ Vcᵀ, so X = Vc Σ Ucᵀ: X's left vectors are Vc, its right vectors Uc.
SvdResult svd_device(GpuContext& ctx, float* dev, int rows, int cols, const char* what) {
  const int m = cols, n = rows, k = std::min(m, n);
  DevBuf<float> S(ctx.arena, k, "svd S"), Uc(ctx.arena, static_cast<size_t>(m) * k, "svd U"),
      Vc(ctx.arena, static_cast<size_t>(n) * k, "svd V");
  DevBuf<int> info(ctx.arena, 1, "svd info");
  gesvdjInfo_t params = nullptr;
  BLR_CUSOLVER_CHECK(cusolverDnCreateGesvdjInfo(&params));
  std::shared_ptr<void> guard(params, [](void* p) { cusolverDnDestroyGesvdjInfo(static_cast<gesvdjInfo_t>(p)); });
  int lwork = 0;
  BLR_CUSOLVER_CHECK(cusolverDnSgesvdj_bufferSize(ctx.solver, CUSOLVER_EIG_MODE_VECTOR, 1, m, n, dev, m, S.ptr, Uc.ptr,
                                                  m, Vc.ptr, n, &lwork, params));
  DevBuf<float> work(ctx.arena, static_cast<size_t>(lwork), "svd workspace");
  BLR_CUSOLVER_CHECK(cusolverDnSgesvdj(ctx.solver, CUSOLVER_EIG_MODE_VECTOR, 1, m, n, dev, m, S.ptr, Uc.ptr, m, Vc.ptr,
                                       n, work.ptr, lwork, info.ptr, params));
  SvdResult r;
  r.s.resize(k);
  std::vector<float> uc(static_cast<size_t>(m) * k), vc(static_cast<size_t>(n) * k);
  int h_info = 0;
  download(r.s.data(), S, k, ctx.stream);
  download(uc.data(), Uc, uc.size(), ctx.stream);
  download(vc.data(), Vc, vc.size(), ctx.stream);
  download(&h_info, info, 1, ctx.stream);
  BLR_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  if (h_info != 0) throw Error(cat("GPU compression: gesvdj of ", what, " (", rows, "x", cols, ") returned info ", h_info));
  // Column-major Vc (n×k) -> row-major left [rows, k]; Uc (m×k) -> right [cols, k].
  r.left.resize(static_cast<size_t>(rows) * k);
  r.right.resize(static_cast<size_t>(cols) * k);
  for (int i = 0; i < rows; ++i)
    for (int c = 0; c < k; ++c) r.left[static_cast<size_t>(i) * k + c] = vc[static_cast<size_t>(c) * n + i];
  for (int i = 0; i < cols; ++i)
    for (int c = 0; c < k; ++c) r.right[static_cast<size_t>(i) * k + c] = uc[static_cast<size_t>(c) * m + i];
  return r;
}

Linear lowrank_gpu(GpuContext& ctx, const Tensor& w, int64_t r, double* rel_error) {
  const int out = static_cast<int>(w.dim(0)), in = static_cast<int>(w.dim(1));
  DevBuf<float> W(ctx.arena, w.numel(), "lowrank W");
  upload(W, w.data_as<const float>(), w.numel(), ctx.stream);
  const SvdResult s = svd_device(ctx, W.ptr, out, in, "the weight");
  const int k = static_cast<int>(s.s.size());
  Linear l;
  l.kind = LinearKind::LowRank;
  l.in = in;
  l.out = out;
  l.lowrank.A = Tensor::zeros({r, in});
  l.lowrank.B = Tensor::zeros({out, r});
  float* A = l.lowrank.A.data_as<float>();
  float* B = l.lowrank.B.data_as<float>();
  double kept = 0, total = 0;
  for (int c = 0; c < k; ++c) (c < r ? kept : total) += static_cast<double>(s.s[c]) * s.s[c];
  total += kept;
  for (int c = 0; c < r; ++c) {
    const float root = std::sqrt(std::max(s.s[c], 0.0f));
    for (int i = 0; i < in; ++i) A[static_cast<size_t>(c) * in + i] = root * s.right[static_cast<size_t>(i) * k + c];
    for (int o = 0; o < out; ++o) B[static_cast<size_t>(o) * r + c] = root * s.left[static_cast<size_t>(o) * k + c];
  }
  *rel_error = total > 0 ? std::sqrt(std::max(total - kept, 0.0) / total) : 0.0;
  return l;
}

Linear monarch_gpu(GpuContext& ctx, const Tensor& w, int64_t b, int64_t r, double* rel_error) {
  const int64_t out = w.dim(0), in = w.dim(1), ob = out / b, ib = in / b, g = r / b;
  DevBuf<float> W(ctx.arena, w.numel(), "monarch W"), blk(ctx.arena, static_cast<size_t>(ob * ib), "monarch block");
  upload(W, w.data_as<const float>(), w.numel(), ctx.stream);
  Linear l;
  l.kind = LinearKind::Monarch;
  l.in = in;
  l.out = out;
  l.monarch.blocks = b;
  l.monarch.R = Tensor::zeros({b, r, ib});
  l.monarch.L = Tensor::zeros({b, ob, r});
  float* R = l.monarch.R.data_as<float>();
  float* L = l.monarch.L.data_as<float>();
  double dropped = 0, total = 0;
  for (int64_t k = 0; k < b; ++k)
    for (int64_t j = 0; j < b; ++j) {
      BLR_CUDA_CHECK(cudaMemcpy2DAsync(blk.ptr, ib * sizeof(float), W + (k * ob * in + j * ib), in * sizeof(float),
                                       ib * sizeof(float), ob, cudaMemcpyDeviceToDevice, ctx.stream));
      const SvdResult s = svd_device(ctx, blk.ptr, static_cast<int>(ob), static_cast<int>(ib), "a Monarch block");
      const int64_t kk = static_cast<int64_t>(s.s.size());
      for (int64_t c = 0; c < kk; ++c) {
        const double v = static_cast<double>(s.s[c]) * s.s[c];
        total += v;
        if (c >= g) dropped += v;
      }
      // L_k[:, j·g + c] = u_c √σ_c ; R_j[k·g + c, :] = √σ_c v_cᵀ
      for (int64_t c = 0; c < g; ++c) {
        const float root = std::sqrt(std::max(s.s[c], 0.0f));
        for (int64_t o = 0; o < ob; ++o) L[(k * ob + o) * r + j * g + c] = root * s.left[o * kk + c];
        for (int64_t i = 0; i < ib; ++i) R[(j * r + k * g + c) * ib + i] = root * s.right[i * kk + c];
      }
    }
  *rel_error = total > 0 ? std::sqrt(dropped / total) : 0.0;
  return l;
}

// ---- BLAST (preconditioned alternating GD; the same steps as BlastCpu in compress_cpu.cpp) ----------

class BlastGpu {
 public:
  BlastGpu(GpuContext& ctx, const Tensor& w, int64_t b, int64_t r, const BlastParams& prm)
      : c_(ctx), b_(static_cast<int>(b)), p_(static_cast<int>(w.dim(0) / b)), q_(static_cast<int>(w.dim(1) / b)),
        r_(static_cast<int>(r)), M_(static_cast<int>(w.dim(0))), N_(static_cast<int>(w.dim(1))), prm_(prm) {
    Arena& ar = c_.arena;
    const size_t bb = static_cast<size_t>(b_) * b_, rr = static_cast<size_t>(r_) * r_;
    A_ = DevBuf<float>(ar, static_cast<size_t>(M_) * N_, "blast A");
    U_ = DevBuf<float>(ar, b_ * static_cast<size_t>(p_) * r_, "blast U");
    Vt_ = DevBuf<float>(ar, b_ * static_cast<size_t>(r_) * q_, "blast V");
    S_ = DevBuf<float>(ar, bb * r_, "blast S");
    P_ = DevBuf<float>(ar, bb * p_ * r_, "blast P");
    Qt_ = DevBuf<float>(ar, bb * r_ * q_, "blast Qt");
    Gu_ = DevBuf<float>(ar, b_ * rr, "blast Gu");
    Gv_ = DevBuf<float>(ar, b_ * rr, "blast Gv");
    G_ = DevBuf<float>(ar, b_ * rr, "blast G");
    K_ = DevBuf<float>(ar, bb * rr, "blast K");
    Y_ = DevBuf<float>(ar, b_ * static_cast<size_t>(p_) * r_, "blast Y");
    Z_ = DevBuf<float>(ar, b_ * static_cast<size_t>(r_) * q_, "blast Z");
    d_ = DevBuf<float>(ar, bb * r_, "blast d");
    eff_ = DevBuf<float>(ar, bb, "blast damping");
    partials_ = DevBuf<double>(ar, 2 * kern::kDotBlocks, "blast partial sums");
    res_ = DevBuf<double>(ar, 3, "blast sums");
    info_ = DevBuf<int>(ar, bb, "blast info");
    flag_ = DevBuf<int>(ar, 1, "blast flag");
    ptrs_ = DevBuf<float*>(ar, 4 * b_ + 2 * bb, "blast pointer arrays");

    blast_detail::moments(w.data_as<const float>(), w.numel(), &sigma_, &a2_);
    a2_ /= sigma_ * sigma_;
    upload(A_, w.data_as<const float>(), w.numel(), c_.stream);
    const float inv = static_cast<float>(1.0 / sigma_);  // the same fp32 scale the CPU path multiplies by
    BLR_CUBLAS_CHECK(cublasSscal(c_.blas, M_ * N_, &inv, A_.ptr, 1));
    const blast_detail::Init init = blast_detail::initial_factors(b, p_, q_, r, prm.seed);
    upload(U_, init.U.data(), init.U.size(), c_.stream);
    upload(Vt_, init.V.data(), init.V.size(), c_.stream);
    upload(S_, init.S.data(), init.S.size(), c_.stream);
    BLR_CUDA_CHECK(cudaMemsetAsync(flag_.ptr, 0, sizeof(int), c_.stream));
    // Pointer arrays for the batched solvers: G_k, Y_k, (H_j in G), Z_j, K_kj, d_kj.
    host_ptrs_.resize(ptrs_.n);
    for (int i = 0; i < b_; ++i) {
      host_ptrs_[i] = G_ + static_cast<long long>(i) * rr;
      host_ptrs_[b_ + i] = Y_ + static_cast<long long>(i) * p_ * r_;
      host_ptrs_[2 * b_ + i] = Z_ + static_cast<long long>(i) * r_ * q_;
      host_ptrs_[3 * b_ + i] = nullptr;  // spare
    }
    for (size_t i = 0; i < bb; ++i) {
      host_ptrs_[4 * b_ + i] = K_ + static_cast<long long>(i) * rr;
      host_ptrs_[4 * b_ + bb + i] = d_ + static_cast<long long>(i) * r_;
    }
    upload(ptrs_, host_ptrs_.data(), host_ptrs_.size(), c_.stream);
  }

  void run(const std::function<void(int, int)>& progress) {
    const int T = prm_.iterations;
    compute_P_and_Gv();
    for (int t = 0; t < T; ++t) {
      const float a = static_cast<float>(2.0 * blast_detail::step_size(prm_.lr, prm_.end_factor, t, T));
      step_U(a);
      step_V(a);
      compute_P_and_Gv();
      step_S(a);
      // Synchronise now and then: keeps the progress honest and the launch queue short.
      if ((t + 1) % 20 == 0 || t + 1 == T) {
        BLR_CUDA_CHECK(cudaStreamSynchronize(c_.stream));
        if (progress) progress(t + 1, T);
      }
    }
    int failed = 0;
    download(&failed, flag_, 1, c_.stream);
    BLR_CUDA_CHECK(cudaStreamSynchronize(c_.stream));
    if (failed) throw Error("BLAST factorisation (gpu): a Cholesky factorisation failed (non-finite values?)");
  }

  // ‖A − Â‖_F / ‖A‖_F on the device (A = W/σ and S not yet rescaled, so the ratio is W's), then S ← σ·S
  // and the factors to the host.
  Linear finish(double* rel_error) {
    DevBuf<float> hat(c_.arena, static_cast<size_t>(M_) * N_, "blast assembled");
    for (int k = 0; k < b_; ++k) {
      // Qt (free now) holds diag(s_kj)·V_jᵀ for every j; then block row k of Â = U_k · that.
      check_launch(kern::blast_block_mix(Vt_.ptr, static_cast<long long>(r_) * q_, 0, S_ + static_cast<long long>(k) * b_ * r_,
                                         r_, 0, Qt_.ptr, b_, 1, r_, q_, true, c_.stream),
                   "blast_block_mix (assembly)");
      gemm_rm(c_.blas, false, false, p_, q_, r_, U_ + static_cast<long long>(k) * p_ * r_, r_, 0, Qt_.ptr, q_,
              static_cast<long long>(r_) * q_, hat + static_cast<long long>(k) * p_ * N_, N_, q_, b_);
    }
    const long long n = static_cast<long long>(M_) * N_;
    check_launch(kern::blast_dots(A_.ptr, hat.ptr, n, true, A_.ptr, A_.ptr, n, 0.0, 0.0, partials_.ptr, res_.ptr, c_.stream),
                 "blast_dots (error)");
    double sums[3] = {0, 0, 0};
    download(sums, res_, 3, c_.stream);
    const float sigma = static_cast<float>(sigma_);
    BLR_CUBLAS_CHECK(cublasSscal(c_.blas, static_cast<int>(S_.n), &sigma, S_.ptr, 1));
    Linear l;
    l.kind = LinearKind::Blast;
    l.in = N_;
    l.out = M_;
    l.blast.blocks = b_;
    l.blast.U = Tensor::zeros({b_, p_, r_});
    l.blast.S = Tensor::zeros({b_, b_, r_});
    l.blast.V = Tensor::zeros({b_, r_, q_});
    download(l.blast.U.data_as<float>(), U_, U_.n, c_.stream);
    download(l.blast.S.data_as<float>(), S_, S_.n, c_.stream);
    download(l.blast.V.data_as<float>(), Vt_, Vt_.n, c_.stream);
    BLR_CUDA_CHECK(cudaStreamSynchronize(c_.stream));
    *rel_error = sums[1] > 0 ? std::sqrt(sums[0] / sums[1]) : std::sqrt(sums[0]);
    return l;
  }

 private:
  long long rr() const { return static_cast<long long>(r_) * r_; }
  float** G_ptrs() const { return ptrs_.ptr; }
  float** Y_ptrs() const { return ptrs_.ptr + b_; }
  float** Z_ptrs() const { return ptrs_.ptr + 2 * b_; }
  float** K_ptrs() const { return ptrs_.ptr + 4 * b_; }
  float** d_ptrs() const { return ptrs_.ptr + 4 * b_ + b_ * b_; }

  void dots(const float* x1, const float* y1, long long n1, const float* x2, const float* y2, long long n2) {
    check_launch(kern::blast_dots(x1, y1, n1, false, x2, y2, n2, a2_, prm_.delta, partials_.ptr, res_.ptr, c_.stream),
                 "blast_dots");
  }
  const double* eps() const { return res_.ptr + 2; }

  void potrf(float** arr, int count) {
    BLR_CUSOLVER_CHECK(cusolverDnSpotrfBatched(c_.solver, CUBLAS_FILL_MODE_LOWER, r_, arr, r_, info_.ptr, count));
    check_launch(kern::blast_flag_nonzero(info_.ptr, count, flag_.ptr, c_.stream), "blast_flag_nonzero");
  }

  // P_kj = A_kj · V_j (p×r) and Gv_j = V_jᵀV_j.
  void compute_P_and_Gv() {
    for (int k = 0; k < b_; ++k)
      gemm_rm(c_.blas, false, true, p_, r_, q_, A_ + static_cast<long long>(k) * p_ * N_, N_, q_, Vt_.ptr, q_,
              static_cast<long long>(r_) * q_, P_ + static_cast<long long>(k) * b_ * p_ * r_, r_,
              static_cast<long long>(p_) * r_, b_);
    gemm_rm(c_.blas, false, true, r_, r_, q_, Vt_.ptr, q_, static_cast<long long>(r_) * q_, Vt_.ptr, q_,
            static_cast<long long>(r_) * q_, Gv_.ptr, r_, rr(), b_);
  }

  void compute_Gu() {
    gemm_rm(c_.blas, true, false, r_, r_, p_, U_.ptr, r_, static_cast<long long>(p_) * r_, U_.ptr, r_,
            static_cast<long long>(p_) * r_, Gu_.ptr, r_, rr(), b_);
  }

  // G_k = Σ_j (s_kjᵀ s_kj) ∘ Gv_j.
  void compute_G() {
    check_launch(kern::blast_gram_mix(Gv_.ptr, S_.ptr, static_cast<long long>(b_) * r_, r_, G_.ptr, b_, b_, r_, c_.stream),
                 "blast_gram_mix (G)");
  }

  void step_U(float a) {
    const long long pr = static_cast<long long>(p_) * r_;
    compute_G();
    compute_Gu();
    check_launch(kern::blast_block_mix(P_.ptr, b_ * pr, pr, S_.ptr, static_cast<long long>(b_) * r_, r_, Y_.ptr, b_, b_,
                                       p_, r_, false, c_.stream),
                 "blast_block_mix (Y)");
    dots(U_.ptr, Y_.ptr, b_ * pr, Gu_.ptr, G_.ptr, b_ * rr());
    check_launch(kern::blast_add_diag(G_.ptr, b_, r_, eps(), prm_.floor_rel, eff_.ptr, c_.stream), "blast_add_diag (G)");
    check_launch(kern::blast_damped_rhs(Y_.ptr, U_.ptr, eff_.ptr, Y_.ptr, b_, pr, c_.stream), "blast_damped_rhs (U)");
    potrf(G_ptrs(), b_);
    // Row-major Y_k (p×r) is column-major Y_kᵀ (r×p): solve (L Lᵀ) X = Y_kᵀ from the left.
    const float one = 1.0f;
    BLR_CUBLAS_CHECK(cublasStrsmBatched(c_.blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                                        CUBLAS_DIAG_NON_UNIT, r_, p_, &one, G_ptrs(), r_, Y_ptrs(), r_, b_));
    BLR_CUBLAS_CHECK(cublasStrsmBatched(c_.blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T,
                                        CUBLAS_DIAG_NON_UNIT, r_, p_, &one, G_ptrs(), r_, Y_ptrs(), r_, b_));
    check_launch(kern::blast_relax(U_.ptr, Y_.ptr, b_ * pr, a, c_.stream), "blast_relax (U)");
  }

  void step_V(float a) {
    const long long rq = static_cast<long long>(r_) * q_;
    compute_Gu();
    // Qt_kj = U_kᵀ · A_kj (r×q).
    for (int k = 0; k < b_; ++k)
      gemm_rm(c_.blas, true, false, r_, q_, p_, U_ + static_cast<long long>(k) * p_ * r_, r_, 0,
              A_ + static_cast<long long>(k) * p_ * N_, N_, q_, Qt_ + static_cast<long long>(k) * b_ * rq, q_, rq, b_);
    // H_j = Σ_k (s_kjᵀ s_kj) ∘ Gu_k (into G_), Zt_j = Σ_k diag(s_kj) Qt_kj.
    check_launch(kern::blast_gram_mix(Gu_.ptr, S_.ptr, r_, static_cast<long long>(b_) * r_, G_.ptr, b_, b_, r_, c_.stream),
                 "blast_gram_mix (H)");
    check_launch(kern::blast_block_mix(Qt_.ptr, rq, b_ * rq, S_.ptr, r_, static_cast<long long>(b_) * r_, Z_.ptr, b_, b_,
                                       r_, q_, true, c_.stream),
                 "blast_block_mix (Z)");
    dots(Vt_.ptr, Z_.ptr, b_ * rq, Gv_.ptr, G_.ptr, b_ * rr());
    check_launch(kern::blast_add_diag(G_.ptr, b_, r_, eps(), prm_.floor_rel, eff_.ptr, c_.stream), "blast_add_diag (H)");
    check_launch(kern::blast_damped_rhs(Z_.ptr, Vt_.ptr, eff_.ptr, Z_.ptr, b_, rq, c_.stream), "blast_damped_rhs (V)");
    potrf(G_ptrs(), b_);
    // Row-major Zt_j (r×q) is column-major Z_j (q×r): solve X (L Lᵀ) = Z_j from the right.
    const float one = 1.0f;
    BLR_CUBLAS_CHECK(cublasStrsmBatched(c_.blas, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T,
                                        CUBLAS_DIAG_NON_UNIT, q_, r_, &one, G_ptrs(), r_, Z_ptrs(), q_, b_));
    BLR_CUBLAS_CHECK(cublasStrsmBatched(c_.blas, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                                        CUBLAS_DIAG_NON_UNIT, q_, r_, &one, G_ptrs(), r_, Z_ptrs(), q_, b_));
    check_launch(kern::blast_relax(Vt_.ptr, Z_.ptr, b_ * rq, a, c_.stream), "blast_relax (V)");
  }

  void step_S(float a) {
    const int bb = b_ * b_;
    compute_G();  // with the new V
    check_launch(kern::blast_col_dot(U_.ptr, P_.ptr, d_.ptr, b_, p_, r_, c_.stream), "blast_col_dot");
    dots(S_.ptr, d_.ptr, static_cast<long long>(bb) * r_, Gu_.ptr, G_.ptr, b_ * rr());
    check_launch(kern::blast_hadamard(Gu_.ptr, Gv_.ptr, K_.ptr, b_, r_, c_.stream), "blast_hadamard");
    check_launch(kern::blast_add_diag(K_.ptr, bb, r_, eps(), prm_.floor_rel, eff_.ptr, c_.stream), "blast_add_diag (K)");
    check_launch(kern::blast_damped_rhs(d_.ptr, S_.ptr, eff_.ptr, d_.ptr, bb, r_, c_.stream), "blast_damped_rhs (S)");
    potrf(K_ptrs(), bb);
    BLR_CUSOLVER_CHECK(cusolverDnSpotrsBatched(c_.solver, CUBLAS_FILL_MODE_LOWER, r_, 1, K_ptrs(), r_, d_ptrs(), r_,
                                               info_.ptr, bb));
    check_launch(kern::blast_relax(S_.ptr, d_.ptr, static_cast<long long>(bb) * r_, a, c_.stream), "blast_relax (S)");
  }

  GpuContext& c_;
  int b_, p_, q_, r_, M_, N_;
  BlastParams prm_;
  double sigma_ = 1, a2_ = 0;
  DevBuf<float> A_, U_, Vt_, S_, P_, Qt_, Gu_, Gv_, G_, K_, Y_, Z_, d_, eff_;
  DevBuf<double> partials_, res_;
  DevBuf<int> info_, flag_;
  DevBuf<float*> ptrs_;
  std::vector<float*> host_ptrs_;
};

}  // namespace

bool gpu_compression_available() {
  static const bool available = cuda_available();
  return available;
}

CompressResult compress_weight_gpu(const Tensor& W, const LinearSpec& spec, const CompressOptions& options) {
  if (!gpu_compression_available()) throw Error("GPU compression requested but no CUDA device is usable");
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor w = compress_detail::checked_host_f32(W, spec);
  const int64_t out = w.dim(0), in = w.dim(1);
  // cuBLAS/cuSOLVER take int sizes.
  if (w.numel() > (int64_t{1} << 31) - 1)
    throw InputError(cat("compress: weight ", W.describe(), " is too large for the GPU path; use the CPU (--cpu)"));
  std::lock_guard<std::mutex> lock(context_mutex());
  GpuContext& ctx = context();
  CompressResult res;
  res.on_gpu = true;
  double err = 0;
  switch (spec.kind) {
    case LinearKind::Dense: return compress_weight_cpu(W, spec, options);
    case LinearKind::LowRank: res.layer = lowrank_gpu(ctx, w, spec.rank, &err); break;
    case LinearKind::Monarch: res.layer = monarch_gpu(ctx, w, spec.blocks, spec.rank, &err); break;
    case LinearKind::Blast: {
      if (compress_detail::all_zero(w)) {
        res.layer = compress_detail::zero_layer(spec, in, out);
        break;
      }
      BlastParams prm = options.blast;
      prm.iterations = spec.iterations > 0 ? spec.iterations : prm.iterations;
      BlastGpu f(ctx, w, spec.blocks, spec.rank, prm);
      f.run(options.progress);
      res.layer = f.finish(&err);
      break;
    }
  }
  if (!std::isfinite(err)) throw Error(cat("compression (gpu, ", spec.describe(), ") produced non-finite factors"));
  res.rel_error = err;
  res.layer.rel_error = err;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace blr
