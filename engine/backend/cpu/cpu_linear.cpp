// CpuOps: dense linear and batched matmul through Eigen (the products are the slow part of every CPU
// run, so they use a real GEMM; everything around them stays a plain loop).
#include <Eigen/Core>

#include "engine/backend/cpu/cpu_common.h"
#include "engine/backend/cpu/cpu_ops.h"

namespace blr {

using cpu::as_matrix;
using cpu::as_matrix_mut;
using cpu::require_host_f32;

// y = act(y + bias) row by row.
static void bias_act_rows(cpu::MatMap& y, const Tensor* bias, Act act) {
  const float* b = bias ? bias->data_as<const float>() : nullptr;
  for (Eigen::Index r = 0; r < y.rows(); ++r)
    for (Eigen::Index c = 0; c < y.cols(); ++c) y(r, c) = apply_act(act, y(r, c) + (b ? b[c] : 0.0f));
}

void CpuOps::linear(const Tensor& x, const Tensor& w, const Tensor* bias, Act act, Tensor& y) {
  require_host_f32(x, "linear", "x");
  require_host_f32(w, "linear", "weight");
  require_host_f32(y, "linear", "y");
  BLR_CHECK(w.ndim() == 2 && w.is_contiguous(), "cpu linear: weight must be a contiguous [out, in] matrix, got ", w.describe());
  const int64_t in = w.dim(1), out = w.dim(0);
  BLR_CHECK(x.dim(-1) == in, "cpu linear: x ", x.describe(), " does not match weight ", w.describe());
  BLR_CHECK(y.dim(-1) == out && y.numel() / out == x.numel() / in, "cpu linear: y ", y.describe(), " for x ",
            x.describe(), " and weight ", w.describe());
  if (bias) {
    require_host_f32(*bias, "linear", "bias");
    BLR_CHECK(bias->numel() == out, "cpu linear: bias ", bias->describe(), " for ", out, " outputs");
  }
  const auto X = as_matrix(x);
  const cpu::ConstMatMap W(w.data_as<const float>(), out, in, Eigen::OuterStride<>(in));
  auto Y = as_matrix_mut(y);
  Y.noalias() = X * W.transpose();
  bias_act_rows(Y, bias, act);
}

void CpuOps::matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_b, float alpha) {
  require_host_f32(a, "matmul", "a");
  require_host_f32(b, "matmul", "b");
  require_host_f32(c, "matmul", "c");
  BLR_CHECK(a.ndim() == 3 && b.ndim() == 3 && c.ndim() == 3, "cpu matmul: expects [B, M, K] operands, got ",
            a.describe(), ", ", b.describe(), ", ", c.describe());
  const int64_t batch = a.dim(0), m = a.dim(1), k = a.dim(2);
  const int64_t n = trans_b ? b.dim(1) : b.dim(2);
  BLR_CHECK(b.dim(0) == batch && (trans_b ? b.dim(2) : b.dim(1)) == k && c.dim(0) == batch && c.dim(1) == m &&
                c.dim(2) == n,
            "cpu matmul: shapes ", a.describe(), " x ", b.describe(), (trans_b ? "ᵀ" : ""), " -> ", c.describe());
  for (int64_t i = 0; i < batch; ++i) {
    const Tensor ai = a.select(0, i), bi = b.select(0, i);
    Tensor ci = c.select(0, i);
    const auto A = as_matrix(ai);
    const auto B = as_matrix(bi);
    auto C = as_matrix_mut(ci);
    if (trans_b) C.noalias() = alpha * (A * B.transpose());
    else C.noalias() = alpha * (A * B);
  }
}

}  // namespace blr
