// CpuOps: the block low-rank layers, computed stage by stage exactly as the math reads (see
// engine/nn/linear.h). These are the reference the CUDA kernels are checked against.
#include <vector>

#include "engine/backend/cpu/cpu_common.h"
#include "engine/backend/cpu/cpu_ops.h"

namespace blr {

using cpu::ConstMatMap;
using cpu::RowMatrix;
using cpu::require_host_f32;

namespace {

void check_io(const char* op, const Tensor& x, const Tensor& y, const Tensor* bias, int64_t in, int64_t out) {
  require_host_f32(x, op, "x");
  require_host_f32(y, op, "y");
  BLR_CHECK(x.dim(-1) == in, "cpu ", op, ": x ", x.describe(), " has ", x.dim(-1), " features, layer takes ", in);
  BLR_CHECK(y.dim(-1) == out && y.numel() / out == x.numel() / in, "cpu ", op, ": y ", y.describe(),
            " does not fit x ", x.describe(), " and ", out, " outputs");
  if (bias) {
    require_host_f32(*bias, op, "bias");
    BLR_CHECK(bias->numel() == out, "cpu ", op, ": bias ", bias->describe(), " for ", out, " outputs");
  }
}

void store_output(const RowMatrix& z, const Tensor* bias, Act act, Tensor& y) {
  auto Y = cpu::as_matrix_mut(y);
  const float* b = bias ? bias->data_as<const float>() : nullptr;
  for (Eigen::Index r = 0; r < z.rows(); ++r)
    for (Eigen::Index c = 0; c < z.cols(); ++c) Y(r, c) = apply_act(act, z(r, c) + (b ? b[c] : 0.0f));
}

// Block `k` of a [b, rows, cols] factor as a matrix.
ConstMatMap block(const Tensor& f, int64_t k) {
  const int64_t rows = f.dim(1), cols = f.dim(2);
  return ConstMatMap(f.data_as<const float>() + k * rows * cols, rows, cols, Eigen::OuterStride<>(cols));
}

}  // namespace

void CpuOps::lowrank_linear(const Tensor& x, const LowRankWeights& w, const Tensor* bias, Act act, Tensor& y) {
  require_host_f32(w.A, "lowrank", "A");
  require_host_f32(w.B, "lowrank", "B");
  const int64_t r = w.A.dim(0), in = w.A.dim(1), out = w.B.dim(0);
  BLR_CHECK(w.B.dim(1) == r, "cpu lowrank: A ", w.A.describe(), " and B ", w.B.describe(), " disagree on the rank");
  check_io("lowrank", x, y, bias, in, out);
  const auto X = cpu::as_matrix(x);
  const ConstMatMap A(w.A.data_as<const float>(), r, in, Eigen::OuterStride<>(in));
  const ConstMatMap B(w.B.data_as<const float>(), out, r, Eigen::OuterStride<>(r));
  const RowMatrix t = X * A.transpose();
  store_output(t * B.transpose(), bias, act, y);
}

void CpuOps::monarch_linear(const Tensor& x, const MonarchWeights& w, const Tensor* bias, Act act, Tensor& y) {
  require_host_f32(w.R, "monarch", "R");
  require_host_f32(w.L, "monarch", "L");
  const int64_t b = w.blocks;
  BLR_CHECK(b >= 1 && w.R.ndim() == 3 && w.L.ndim() == 3 && w.R.dim(0) == b && w.L.dim(0) == b,
            "cpu monarch: factors R ", w.R.describe(), ", L ", w.L.describe(), " for ", b, " blocks");
  const int64_t r = w.R.dim(1), ib = w.R.dim(2), ob = w.L.dim(1);
  BLR_CHECK(w.L.dim(2) == r && r % b == 0, "cpu monarch: rank ", r, " must match L ", w.L.describe(),
            " and be a multiple of b=", b);
  const int64_t in = ib * b, out = ob * b, g = r / b;
  check_io("monarch", x, y, bias, in, out);
  const auto X = cpu::as_matrix(x);
  const int64_t n = X.rows();
  // Stage 1: t_j = x_j · R_jᵀ, then route group k of every t_j to output block k: u_k[:, j·g + q] = t_j[:, k·g + q].
  std::vector<RowMatrix> u(b, RowMatrix(n, r));
  for (int64_t j = 0; j < b; ++j) {
    const RowMatrix t = X.middleCols(j * ib, ib) * block(w.R, j).transpose();
    for (int64_t k = 0; k < b; ++k) u[k].middleCols(j * g, g) = t.middleCols(k * g, g);
  }
  // Stage 2: y_k = u_k · L_kᵀ.
  RowMatrix z(n, out);
  for (int64_t k = 0; k < b; ++k) z.middleCols(k * ob, ob) = u[k] * block(w.L, k).transpose();
  store_output(z, bias, act, y);
}

void CpuOps::blast_linear(const Tensor& x, const BlastWeights& w, const Tensor* bias, Act act, Tensor& y) {
  require_host_f32(w.U, "blast", "U");
  require_host_f32(w.S, "blast", "S");
  require_host_f32(w.V, "blast", "V");
  const int64_t b = w.blocks;
  BLR_CHECK(b >= 1 && w.U.ndim() == 3 && w.V.ndim() == 3 && w.S.ndim() == 3 && w.U.dim(0) == b && w.V.dim(0) == b &&
                w.S.dim(0) == b && w.S.dim(1) == b,
            "cpu blast: factors U ", w.U.describe(), ", S ", w.S.describe(), ", V ", w.V.describe(), " for ", b, " blocks");
  const int64_t r = w.U.dim(2), ob = w.U.dim(1), ib = w.V.dim(2);
  BLR_CHECK(w.V.dim(1) == r && w.S.dim(2) == r, "cpu blast: factors disagree on the rank: U ", w.U.describe(), ", S ",
            w.S.describe(), ", V ", w.V.describe());
  const int64_t in = ib * b, out = ob * b;
  check_io("blast", x, y, bias, in, out);
  const auto X = cpu::as_matrix(x);
  const int64_t n = X.rows();
  // Stage 1: y_j = x_j · V_jᵀ  (n × r per input block).
  std::vector<RowMatrix> yj(b);
  for (int64_t j = 0; j < b; ++j) yj[j] = X.middleCols(j * ib, ib) * block(w.V, j).transpose();
  // Stage 2: z_k = Σ_j s_kj ⊙ y_j (s_kj scales each of the r columns); stage 3: out_k = z_k · U_kᵀ.
  const float* s = w.S.data_as<const float>();
  RowMatrix out_m(n, out);
  for (int64_t k = 0; k < b; ++k) {
    RowMatrix z = RowMatrix::Zero(n, r);
    for (int64_t j = 0; j < b; ++j) {
      const Eigen::Map<const Eigen::RowVectorXf> skj(s + (k * b + j) * r, r);
      z += yj[j] * skj.asDiagonal();
    }
    out_m.middleCols(k * ob, ob) = z * block(w.U, k).transpose();
  }
  store_output(out_m, bias, act, y);
}

}  // namespace blr
