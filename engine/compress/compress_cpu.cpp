// The CPU compression path (Eigen): truncated SVDs for low-rank and Monarch, and the BLAST factorisation
// written with block matrix products (see blast_factor.h for the algorithm and its algebra).
#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/SVD>
#include <chrono>
#include <cmath>
#include <vector>

#include "engine/compress/blast_factor.h"
#include "engine/compress/compress.h"
#include "engine/compress/compress_util.h"
#include "engine/core/error.h"

// Blocks run in parallel only when there is enough work to repay waking the threads (small test-sized
// problems run far faster on one thread). `big_` is set per factorisation.
#ifdef _OPENMP
#define BLR_OMP_FOR _Pragma("omp parallel for schedule(static) if (big_)")
#else
#define BLR_OMP_FOR
#endif

namespace blr {

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ColMatrix = Eigen::MatrixXf;
using ConstMap = Eigen::Map<const RowMatrix>;
using Map = Eigen::Map<RowMatrix>;

double dot_d(const RowMatrix& a, const RowMatrix& b) {
  return (a.cast<double>().array() * b.cast<double>().array()).sum();
}

Linear lowrank_cpu(const Tensor& w, int64_t r) {
  const int64_t out = w.dim(0), in = w.dim(1);
  const ColMatrix W = ConstMap(w.data_as<const float>(), out, in);
  Eigen::BDCSVD<ColMatrix> svd(W, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::VectorXf root = svd.singularValues().head(r).cwiseSqrt();
  Linear l;
  l.kind = LinearKind::LowRank;
  l.in = in;
  l.out = out;
  l.lowrank.A = Tensor::zeros({r, in});
  l.lowrank.B = Tensor::zeros({out, r});
  Map(l.lowrank.A.data_as<float>(), r, in) = root.asDiagonal() * svd.matrixV().leftCols(r).transpose();
  Map(l.lowrank.B.data_as<float>(), out, r) = svd.matrixU().leftCols(r) * root.asDiagonal();
  return l;
}

Linear monarch_cpu(const Tensor& w, int64_t b, int64_t r) {
  const int64_t out = w.dim(0), in = w.dim(1), ob = out / b, ib = in / b, g = r / b;
  const ConstMap W(w.data_as<const float>(), out, in);
  Linear l;
  l.kind = LinearKind::Monarch;
  l.in = in;
  l.out = out;
  l.monarch.blocks = b;
  l.monarch.R = Tensor::zeros({b, r, ib});
  l.monarch.L = Tensor::zeros({b, ob, r});
  float* R = l.monarch.R.data_as<float>();
  float* L = l.monarch.L.data_as<float>();
  const bool big_ = ob * ib >= 64 * 64;
  // Block (k, j) keeps its g leading triplets: L_k[:, j-slice] = U√Σ, R_j[k-slice, :] = √ΣVᵀ. Each block
  // writes a disjoint slice of L and R, so the blocks run in parallel.
  BLR_OMP_FOR
  for (int64_t kj = 0; kj < b * b; ++kj) {
    const int64_t k = kj / b, j = kj % b;
    const ColMatrix block = W.block(k * ob, j * ib, ob, ib);
    Eigen::BDCSVD<ColMatrix> svd(block, Eigen::ComputeThinU | Eigen::ComputeThinV);
    const Eigen::VectorXf root = svd.singularValues().head(g).cwiseSqrt();
    Map(L + k * ob * r, ob, r).middleCols(j * g, g) = svd.matrixU().leftCols(g) * root.asDiagonal();
    Map(R + j * r * ib, r, ib).middleRows(k * g, g) = root.asDiagonal() * svd.matrixV().leftCols(g).transpose();
  }
  return l;
}

// BLAST factorisation; see blast_factor.h. Index kj = k·b + j.
class BlastCpu {
 public:
  BlastCpu(const Tensor& w, int64_t b, int64_t r, const BlastParams& prm)
      : b_(b), p_(w.dim(0) / b), q_(w.dim(1) / b), r_(r), prm_(prm), big_(p_ * q_ * r_ >= 64 * 64 * 64) {
    const int64_t n = w.numel();
    blast_detail::moments(w.data_as<const float>(), n, &sigma_, &a2_);
    a_.resize(w.dim(0), w.dim(1));
    a_ = ConstMap(w.data_as<const float>(), w.dim(0), w.dim(1)) * static_cast<float>(1.0 / sigma_);
    a2_ /= sigma_ * sigma_;
    const blast_detail::Init init = blast_detail::initial_factors(b, p_, q_, r, prm.seed);
    U_.resize(b);
    Vt_.resize(b);
    for (int64_t i = 0; i < b; ++i) {
      U_[i] = ConstMap(init.U.data() + i * p_ * r, p_, r);
      Vt_[i] = ConstMap(init.V.data() + i * r * q_, r, q_);
    }
    S_ = ConstMap(init.S.data(), b * b, r);
    P_.resize(b * b);
    Qt_.resize(b * b);
    Gu_.resize(b);
    Gv_.resize(b);
    G_.resize(b);
  }

  void run(const std::function<void(int, int)>& progress) {
    const int T = prm_.iterations;
    compute_P_and_Gv();
    for (int t = 0; t < T; ++t) {
      const float a = static_cast<float>(2.0 * blast_detail::step_size(prm_.lr, prm_.end_factor, t, T));
      step_U(a);
      step_V(a);
      compute_P_and_Gv();
      step_S(a, t);
      if (progress) progress(t + 1, T);
    }
  }

  Linear result(int64_t in, int64_t out) const {
    Linear l;
    l.kind = LinearKind::Blast;
    l.in = in;
    l.out = out;
    l.blast.blocks = b_;
    l.blast.U = Tensor::zeros({b_, p_, r_});
    l.blast.S = Tensor::zeros({b_, b_, r_});
    l.blast.V = Tensor::zeros({b_, r_, q_});
    for (int64_t i = 0; i < b_; ++i) {
      Map(l.blast.U.data_as<float>() + i * p_ * r_, p_, r_) = U_[i];
      Map(l.blast.V.data_as<float>() + i * r_ * q_, r_, q_) = Vt_[i];
    }
    Map(l.blast.S.data_as<float>(), b_ * b_, r_) = S_ * static_cast<float>(sigma_);
    return l;
  }

 private:
  auto block(int64_t k, int64_t j) const { return a_.block(k * p_, j * q_, p_, q_); }
  Eigen::Map<const Eigen::RowVectorXf> s(int64_t k, int64_t j) const { return {S_.data() + (k * b_ + j) * r_, r_}; }

  double eps_from(double dot_what, double dot_gram) const {
    const double e2 = a2_ - 2.0 * dot_what + dot_gram;
    return prm_.delta * std::sqrt(std::max(e2, 0.0));
  }
  // Damping actually added to a Gram matrix: ε plus the relative floor (see BlastParams).
  float damping(double eps, const RowMatrix& gram) const {
    return static_cast<float>(eps + prm_.floor_rel * gram.trace() / static_cast<double>(r_) + 1e-30);
  }

  void compute_P_and_Gv() {
    BLR_OMP_FOR
    for (int64_t kj = 0; kj < b_ * b_; ++kj) P_[kj].noalias() = block(kj / b_, kj % b_) * Vt_[kj % b_].transpose();
    BLR_OMP_FOR
    for (int64_t j = 0; j < b_; ++j) Gv_[j].noalias() = Vt_[j] * Vt_[j].transpose();
  }

  // G_k = Σ_j (s_kjᵀ s_kj) ∘ Gv_j.
  void compute_G() {
    BLR_OMP_FOR
    for (int64_t k = 0; k < b_; ++k) {
      G_[k].setZero(r_, r_);
      for (int64_t j = 0; j < b_; ++j) G_[k] += Gv_[j].cwiseProduct(s(k, j).transpose() * s(k, j));
    }
  }

  void step_U(float a) {
    std::vector<double> d1(b_), d2(b_);
    std::vector<RowMatrix> Y(b_);
    compute_G();
    BLR_OMP_FOR
    for (int64_t k = 0; k < b_; ++k) {
      Gu_[k].noalias() = U_[k].transpose() * U_[k];
      Y[k].setZero(p_, r_);
      for (int64_t j = 0; j < b_; ++j) Y[k] += P_[k * b_ + j] * s(k, j).asDiagonal();
      d1[k] = dot_d(U_[k], Y[k]);
      d2[k] = dot_d(Gu_[k], G_[k]);
    }
    const double eps = eps_from(sum(d1), sum(d2));
    std::vector<char> failed(b_, 0);
    BLR_OMP_FOR
    for (int64_t k = 0; k < b_; ++k) {
      const float eff = damping(eps, G_[k]);
      G_[k].diagonal().array() += eff;
      Eigen::LLT<RowMatrix> llt(G_[k]);
      failed[k] = llt.info() != Eigen::Success;
      const RowMatrix rhs = Y[k] + eff * U_[k];
      const RowMatrix x = llt.solve(rhs.transpose()).transpose();
      U_[k] = (1.0f - a) * U_[k] + a * x;
    }
    if (any(failed)) throw Error("BLAST factorisation (cpu): Cholesky of a U preconditioner failed (non-finite values?)");
  }

  void step_V(float a) {
    std::vector<double> d1(b_), d2(b_);
    std::vector<RowMatrix> Z(b_), H(b_);
    BLR_OMP_FOR
    for (int64_t k = 0; k < b_; ++k) Gu_[k].noalias() = U_[k].transpose() * U_[k];
    BLR_OMP_FOR
    for (int64_t kj = 0; kj < b_ * b_; ++kj) Qt_[kj].noalias() = U_[kj / b_].transpose() * block(kj / b_, kj % b_);
    BLR_OMP_FOR
    for (int64_t j = 0; j < b_; ++j) {
      H[j].setZero(r_, r_);
      Z[j].setZero(r_, q_);
      for (int64_t k = 0; k < b_; ++k) {
        H[j] += Gu_[k].cwiseProduct(s(k, j).transpose() * s(k, j));
        Z[j] += s(k, j).transpose().asDiagonal() * Qt_[k * b_ + j];
      }
      d1[j] = dot_d(Vt_[j], Z[j]);
      d2[j] = dot_d(Gv_[j], H[j]);
    }
    const double eps = eps_from(sum(d1), sum(d2));
    std::vector<char> failed(b_, 0);
    BLR_OMP_FOR
    for (int64_t j = 0; j < b_; ++j) {
      const float eff = damping(eps, H[j]);
      H[j].diagonal().array() += eff;
      Eigen::LLT<RowMatrix> llt(H[j]);
      failed[j] = llt.info() != Eigen::Success;
      const RowMatrix rhs = Z[j] + eff * Vt_[j];
      const RowMatrix x = llt.solve(rhs);
      Vt_[j] = (1.0f - a) * Vt_[j] + a * x;
    }
    if (any(failed)) throw Error("BLAST factorisation (cpu): Cholesky of a V preconditioner failed (non-finite values?)");
  }

  void step_S(float a, int t) {
    const int64_t bb = b_ * b_;
    RowMatrix d(bb, r_);
    compute_G();  // with the new V
    std::vector<double> d1(bb), d2(b_);
    BLR_OMP_FOR
    for (int64_t kj = 0; kj < bb; ++kj) {
      d.row(kj) = U_[kj / b_].cwiseProduct(P_[kj]).colwise().sum();
      d1[kj] = (d.row(kj).cast<double>().array() * S_.row(kj).cast<double>().array()).sum();
    }
    for (int64_t k = 0; k < b_; ++k) d2[k] = dot_d(Gu_[k], G_[k]);
    const double eps = eps_from(sum(d1), sum(d2));
    std::vector<char> failed(bb, 0);
    BLR_OMP_FOR
    for (int64_t kj = 0; kj < bb; ++kj) {
      RowMatrix K = Gu_[kj / b_].cwiseProduct(Gv_[kj % b_]);
      const float eff = damping(eps, K);
      K.diagonal().array() += eff;
      Eigen::LLT<RowMatrix> llt(K);
      failed[kj] = llt.info() != Eigen::Success;
      const Eigen::VectorXf rhs = d.row(kj).transpose() + eff * S_.row(kj).transpose();
      const Eigen::VectorXf x = llt.solve(rhs);
      S_.row(kj) = (1.0f - a) * S_.row(kj) + a * x.transpose();
    }
    if (any(failed)) throw Error(cat("BLAST factorisation (cpu): Cholesky of an S preconditioner failed at iteration ", t));
  }

  static bool any(const std::vector<char>& v) {
    for (char c : v)
      if (c) return true;
    return false;
  }
  static double sum(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s;
  }

  int64_t b_, p_, q_, r_;
  BlastParams prm_;
  bool big_;
  double sigma_ = 1, a2_ = 0;
  RowMatrix a_;  // W / σ
  std::vector<RowMatrix> U_, Vt_, P_, Qt_, Gu_, Gv_, G_;
  RowMatrix S_;  // [b·b, r]
};

}  // namespace

CompressResult compress_weight_cpu(const Tensor& W, const LinearSpec& spec, const CompressOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor w = compress_detail::checked_host_f32(W, spec);
  const int64_t out = w.dim(0), in = w.dim(1);
  CompressResult res;
  switch (spec.kind) {
    case LinearKind::Dense:
      res.layer.kind = LinearKind::Dense;
      res.layer.in = in;
      res.layer.out = out;
      res.layer.weight = w;
      break;
    case LinearKind::LowRank: res.layer = lowrank_cpu(w, spec.rank); break;
    case LinearKind::Monarch: res.layer = monarch_cpu(w, spec.blocks, spec.rank); break;
    case LinearKind::Blast: {
      if (compress_detail::all_zero(w)) {
        res.layer = compress_detail::zero_layer(spec, in, out);
        break;
      }
      BlastParams prm = options.blast;
      prm.iterations = spec.iterations > 0 ? spec.iterations : prm.iterations;
      BlastCpu f(w, spec.blocks, spec.rank, prm);
      f.run(options.progress);
      res.layer = f.result(in, out);
      break;
    }
  }
  res.rel_error = relative_error(w, res.layer);
  res.layer.rel_error = res.rel_error;
  if (!std::isfinite(res.rel_error))
    throw Error(cat("compression (cpu, ", spec.describe(), ") produced non-finite factors"));
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

double relative_error(const Tensor& W, const Linear& layer) {
  const Tensor w = compress_detail::host_f32(W);
  const Tensor a = assemble_dense(layer);
  BLR_CHECK(w.numel() == a.numel(), "relative_error: W ", W.describe(), " vs layer ", layer.out, "x", layer.in);
  const float* x = w.data_as<const float>();
  const float* y = a.data_as<const float>();
  double diff = 0, ref = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double d = static_cast<double>(x[i]) - y[i];
    diff += d * d;
    ref += static_cast<double>(x[i]) * x[i];
  }
  if (ref == 0) return std::sqrt(diff);
  return std::sqrt(diff / ref);
}

}  // namespace blr
