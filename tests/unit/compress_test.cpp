// Compression on the CPU: exact inputs are recovered, errors follow the theory (Eckart–Young for the
// SVD paths) and fall with rank, and the fast BLAST implementation takes exactly the steps of the
// authors' algorithm written out naively (explicit Ŵ, explicit gradients and preconditioners).
#include <gtest/gtest.h>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/SVD>
#include <cmath>

#include "engine/compress/blast_factor.h"
#include "engine/compress/compress.h"
#include "engine/core/error.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

using test::compare;
using test::random_tensor;

LinearSpec spec(LinearKind k, int64_t b, int64_t r, int iters = 300) {
  LinearSpec s;
  s.kind = k;
  s.blocks = b;
  s.rank = r;
  s.iterations = iters;
  return s;
}

CompressOptions cpu_options() {
  CompressOptions o;
  o.use_gpu = false;
  return o;
}

Tensor blast_matrix(int64_t b, int64_t p, int64_t q, int64_t r, uint64_t seed) {
  Linear l;
  l.kind = LinearKind::Blast;
  l.in = b * q;
  l.out = b * p;
  l.blast.blocks = b;
  l.blast.U = random_tensor({b, p, r}, seed);
  l.blast.S = random_tensor({b, b, r}, seed + 1);
  l.blast.V = random_tensor({b, r, q}, seed + 2);
  return assemble_dense(l);
}

TEST(Compress, MonarchProjectionOfAMonarchMatrixIsExact) {
  struct Case {
    int64_t in, out, b, r;
  } cases[] = {{12, 20, 2, 4}, {48, 24, 4, 8}, {30, 45, 3, 6}, {16, 16, 1, 5}, {64, 32, 4, 32}};
  uint64_t seed = 40;
  for (const auto& c : cases) {
    Linear m;
    m.kind = LinearKind::Monarch;
    m.in = c.in;
    m.out = c.out;
    m.monarch.blocks = c.b;
    m.monarch.R = random_tensor({c.b, c.r, c.in / c.b}, seed++);
    m.monarch.L = random_tensor({c.b, c.out / c.b, c.r}, seed++);
    const Tensor w = assemble_dense(m);
    const CompressResult res = compress_weight(w, spec(LinearKind::Monarch, c.b, c.r), cpu_options());
    EXPECT_FALSE(res.on_gpu);
    EXPECT_EQ(res.layer.kind, LinearKind::Monarch);
    EXPECT_EQ(res.layer.rank(), c.r);
    // fp32 SVD of O(1)-conditioned blocks reproduces them to ~1e-6 relative.
    EXPECT_LT(res.rel_error, 1e-5) << "in=" << c.in << " out=" << c.out << " b=" << c.b << " r=" << c.r;
    EXPECT_LT(compare(assemble_dense(res.layer), w).rel_fro, 1e-5);
    EXPECT_NEAR(res.rel_error, relative_error(w, res.layer), 1e-9);
  }
}

TEST(Compress, LowRankErrorIsTheSvdTail) {
  const Tensor w = random_tensor({40, 28}, 50);
  // Independent reference: singular values of W in double.
  const Eigen::MatrixXd W = Eigen::Map<const Eigen::Matrix<float, -1, -1, Eigen::RowMajor>>(w.data_as<const float>(), 40, 28)
                                .cast<double>();
  const Eigen::VectorXd sv = Eigen::JacobiSVD<Eigen::MatrixXd>(W).singularValues();
  double prev = 2.0;
  for (int64_t r : {1, 4, 10, 20, 28}) {
    const CompressResult res = compress_weight(w, spec(LinearKind::LowRank, 1, r), cpu_options());
    const double expected = std::sqrt(sv.tail(28 - r).squaredNorm() / sv.squaredNorm());
    // fp32 factors of an O(1) matrix: the reconstruction is good to ~1e-6 of ‖W‖.
    EXPECT_NEAR(res.rel_error, expected, 1e-5) << "r=" << r;
    EXPECT_LT(res.rel_error, prev) << "error must fall as the rank grows (r=" << r << ")";
    prev = res.rel_error;
  }
  EXPECT_LT(prev, 1e-5) << "full rank must be exact";
}

TEST(Compress, MonarchErrorFallsWithRank) {
  const Tensor w = random_tensor({48, 36}, 51);
  double prev = 2.0;
  for (int64_t r : {3, 6, 12, 24, 36}) {
    const CompressResult res = compress_weight(w, spec(LinearKind::Monarch, 3, r), cpu_options());
    EXPECT_LT(res.rel_error, prev) << "r=" << r;
    prev = res.rel_error;
  }
  EXPECT_LT(prev, 1e-5) << "r/b = min block side must be exact";
}

TEST(Compress, BlastRecoversAnExactBlastMatrix) {
  // The problem is non-convex and the authors' method can stall in a local minimum from some starts
  // (measured: 72x48 b=3 r=4 reaches 1e-6 from most starts but 0.06-0.2 from a few). These two small
  // configurations reached < 1e-5 from each of 6 starts tried; 1e-2 is the bar and leaves room.
  struct Case {
    int64_t b, p, q, r;
  } cases[] = {{4, 16, 12, 3}, {3, 16, 16, 2}};
  for (const auto& c : cases)
    for (uint64_t seed = 0; seed < 3; ++seed) {
      const Tensor w = blast_matrix(c.b, c.p, c.q, c.r, 100 + seed * 3);
      CompressOptions opt = cpu_options();
      opt.blast.seed = seed;
      const CompressResult res = compress_weight(w, spec(LinearKind::Blast, c.b, c.r, 150), opt);
      EXPECT_EQ(res.layer.kind, LinearKind::Blast);
      EXPECT_LT(res.rel_error, 1e-2) << "b=" << c.b << " p=" << c.p << " q=" << c.q << " r=" << c.r << " seed " << seed;
      EXPECT_NEAR(res.rel_error, relative_error(w, res.layer), 1e-9);
    }
}

TEST(Compress, BlastErrorFallsWithRank) {
  const Tensor w = random_tensor({36, 48}, 52);
  double prev = 2.0;
  for (int64_t r : {2, 6, 12, 24}) {
    const CompressResult res = compress_weight(w, spec(LinearKind::Blast, 3, r, 60), cpu_options());
    EXPECT_LT(res.rel_error, prev) << "r=" << r;
    EXPECT_GT(res.rel_error, 0.0);
    prev = res.rel_error;
  }
}

TEST(Compress, BlastIsDeterministicPerSeed) {
  const Tensor w = random_tensor({24, 18}, 53);
  CompressOptions opt = cpu_options();
  opt.blast.seed = 7;
  const CompressResult a = compress_weight(w, spec(LinearKind::Blast, 3, 4, 20), opt);
  const CompressResult b = compress_weight(w, spec(LinearKind::Blast, 3, 4, 20), opt);
  EXPECT_EQ(compare(a.layer.blast.U, b.layer.blast.U).max_abs, 0.0);
  EXPECT_EQ(compare(a.layer.blast.S, b.layer.blast.S).max_abs, 0.0);
  opt.blast.seed = 8;
  const CompressResult c = compress_weight(w, spec(LinearKind::Blast, 3, 4, 20), opt);
  EXPECT_GT(compare(a.layer.blast.U, c.layer.blast.U).max_abs, 0.0) << "the seed must change the start";
}

TEST(Compress, ZeroAndBadInputs) {
  const CompressResult z = compress_weight(Tensor::zeros({12, 6}), spec(LinearKind::Blast, 3, 2, 10), cpu_options());
  EXPECT_EQ(z.rel_error, 0.0);
  EXPECT_EQ(compare(assemble_dense(z.layer), Tensor::zeros({12, 6})).max_abs, 0.0);

  Tensor w = random_tensor({12, 6}, 54);
  w.data_as<float>()[5] = std::nanf("");
  EXPECT_THROW(compress_weight(w, spec(LinearKind::Monarch, 3, 3), cpu_options()), InputError);
  EXPECT_THROW(compress_weight(random_tensor({12, 6}, 1), spec(LinearKind::Monarch, 4, 4), cpu_options()), InputError);
  EXPECT_THROW(compress_weight(random_tensor({12}, 1), spec(LinearKind::LowRank, 1, 1), cpu_options()), InputError);
}

// ---- the authors' algorithm, written out naively in double -------------------------------------------

using MatD = Eigen::MatrixXd;

struct Naive {
  int64_t b, p, q, r;
  std::vector<MatD> U, V;  // U_k p×r, V_j q×r (V_j = stored Vᵀ block transposed)
  MatD S;                  // (b·b) × r
  MatD hat(const MatD& A) const {
    MatD h = MatD::Zero(A.rows(), A.cols());
    for (int64_t k = 0; k < b; ++k)
      for (int64_t j = 0; j < b; ++j)
        h.block(k * p, j * q, p, q) = U[k] * S.row(k * b + j).asDiagonal() * V[j].transpose();
    return h;
  }
};

// One iteration: for each factor, grad of ‖A − Â‖² (explicit Â), times (G + εI)⁻¹, ε = δ‖A − Â‖.
void naive_iteration(Naive& f, const MatD& A, double lr, const BlastParams& prm) {
  const int64_t b = f.b, r = f.r;
  auto damped = [&](MatD G, double eps) {
    const double eff = eps + prm.floor_rel * G.trace() / r + 1e-30;
    G.diagonal().array() += eff;
    return G;
  };
  {  // U
    const MatD E = f.hat(A) - A;
    const double eps = prm.delta * E.norm();
    for (int64_t k = 0; k < b; ++k) {
      MatD grad = MatD::Zero(f.p, r), G = MatD::Zero(r, r);
      for (int64_t j = 0; j < b; ++j) {
        const MatD Vs = f.V[j] * f.S.row(k * b + j).asDiagonal();  // q×r
        grad += 2.0 * E.block(k * f.p, j * f.q, f.p, f.q) * Vs;
        G += Vs.transpose() * Vs;
      }
      f.U[k] -= lr * damped(G, eps).llt().solve(grad.transpose()).transpose();
    }
  }
  {  // V
    const MatD E = f.hat(A) - A;
    const double eps = prm.delta * E.norm();
    for (int64_t j = 0; j < b; ++j) {
      MatD grad = MatD::Zero(f.q, r), G = MatD::Zero(r, r);
      for (int64_t k = 0; k < b; ++k) {
        const MatD Us = f.U[k] * f.S.row(k * b + j).asDiagonal();  // p×r
        grad += 2.0 * E.block(k * f.p, j * f.q, f.p, f.q).transpose() * Us;
        G += Us.transpose() * Us;
      }
      f.V[j] -= lr * damped(G, eps).llt().solve(grad.transpose()).transpose();
    }
  }
  {  // S
    const MatD E = f.hat(A) - A;
    const double eps = prm.delta * E.norm();
    for (int64_t k = 0; k < b; ++k)
      for (int64_t j = 0; j < b; ++j) {
        const MatD Ekj = E.block(k * f.p, j * f.q, f.p, f.q);
        Eigen::VectorXd grad(r);
        for (int64_t c = 0; c < r; ++c) grad(c) = 2.0 * f.U[k].col(c).dot(Ekj * f.V[j].col(c));
        const MatD K = (f.U[k].transpose() * f.U[k]).cwiseProduct(f.V[j].transpose() * f.V[j]);
        f.S.row(k * b + j) -= lr * damped(K, eps).llt().solve(grad).transpose();
      }
  }
}

TEST(Compress, BlastTakesTheAuthorsSteps) {
  const int64_t b = 3, p = 8, q = 6, r = 5;
  const int T = 6;
  const Tensor w = random_tensor({b * p, b * q}, 55, 0.02f);
  CompressOptions opt = cpu_options();
  opt.blast.seed = 3;
  const CompressResult fast = compress_weight(w, spec(LinearKind::Blast, b, r, T), opt);

  double sigma = 0, sumsq = 0;
  blast_detail::moments(w.data_as<const float>(), w.numel(), &sigma, &sumsq);
  const MatD A = Eigen::Map<const Eigen::Matrix<float, -1, -1, Eigen::RowMajor>>(w.data_as<const float>(), b * p, b * q)
                     .cast<double>() / sigma;
  const blast_detail::Init init = blast_detail::initial_factors(b, p, q, r, 3);
  Naive f{b, p, q, r, {}, {}, MatD(b * b, r)};
  for (int64_t i = 0; i < b; ++i) {
    f.U.push_back(Eigen::Map<const Eigen::Matrix<float, -1, -1, Eigen::RowMajor>>(init.U.data() + i * p * r, p, r).cast<double>());
    f.V.push_back(Eigen::Map<const Eigen::Matrix<float, -1, -1, Eigen::RowMajor>>(init.V.data() + i * r * q, r, q)
                      .cast<double>()
                      .transpose());
  }
  f.S = Eigen::Map<const Eigen::Matrix<float, -1, -1, Eigen::RowMajor>>(init.S.data(), b * b, r).cast<double>();
  for (int t = 0; t < T; ++t)
    naive_iteration(f, A, blast_detail::step_size(opt.blast.lr, opt.blast.end_factor, t, T), opt.blast);

  // Compare the assembled matrices (fp32 vs fp64 over a few iterations: ~1e-5 relative).
  const MatD naive_hat = f.hat(A) * sigma;
  const Tensor fast_hat = assemble_dense(fast.layer);
  double diff = 0, ref = 0;
  for (int64_t i = 0; i < b * p; ++i)
    for (int64_t j = 0; j < b * q; ++j) {
      const double d = fast_hat.at({i, j}) - naive_hat(i, j);
      diff += d * d;
      ref += naive_hat(i, j) * naive_hat(i, j);
    }
  EXPECT_LT(std::sqrt(diff / ref), 1e-3) << "fast BLAST steps differ from the naive ones";
  EXPECT_GT(ref, 0.0);
  // The iterations made progress from the tiny start (Ŵ ≈ 0, error ≈ 1).
  EXPECT_LT(fast.rel_error, 0.95);
}

}  // namespace
}  // namespace blr
