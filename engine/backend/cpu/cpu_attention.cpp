// CpuOps: multi-head self-attention from a fused qkv projection, one (sample, head) at a time:
// S = scale · Q·Kᵀ (Eigen GEMM), a max-subtracted softmax over each row of S, then O = S·V written into
// that head's columns of `out`. The full N×N score matrix is materialised (N ≤ a few thousand here).
#include <algorithm>
#include <cmath>

#include "engine/backend/cpu/cpu_common.h"
#include "engine/backend/cpu/cpu_ops.h"

namespace blr {

using cpu::ConstMatMap;
using cpu::MatMap;
using cpu::RowMatrix;
using cpu::require_host_f32;

void CpuOps::attention(const Tensor& qkv, int heads, float scale, Tensor& out) {
  require_host_f32(qkv, "attention", "qkv");
  require_host_f32(out, "attention", "out");
  BLR_CHECK(qkv.ndim() == 3 && out.ndim() == 3, "cpu attention: qkv ", qkv.describe(), " and out ", out.describe(),
            " must be [B, N, 3·H·D] and [B, N, H·D]");
  const int64_t batch = qkv.dim(0), n = qkv.dim(1), hd = out.dim(2);
  BLR_CHECK(heads >= 1 && hd % heads == 0, "cpu attention: ", hd, " output features do not split into ", heads,
            " heads");
  BLR_CHECK(out.dim(0) == batch && out.dim(1) == n && qkv.dim(2) == 3 * hd, "cpu attention: qkv ", qkv.describe(),
            " does not fit out ", out.describe(), " (qkv must be [B, N, 3·", hd, "])");
  const int64_t d = hd / heads;
  const auto Q = cpu::rows_of<const float>(qkv, "attention", "qkv");
  const auto O = cpu::rows_of(out, "attention", "out");
  if (batch == 0 || n == 0) return;

  BLR_OMP_PARALLEL_FOR_DYNAMIC
  for (int64_t bh = 0; bh < batch * heads; ++bh) {
    const int64_t b = bh / heads, h = bh % heads;
    // Head h of sample b: rows b·N .. b·N+N−1; q, k, v at column offsets (0·H + h)·D, (1·H + h)·D, (2·H + h)·D.
    const float* base = Q.row(b * n);
    const ConstMatMap q(base + h * d, n, d, Eigen::OuterStride<>(Q.stride));
    const ConstMatMap k(base + (heads + h) * d, n, d, Eigen::OuterStride<>(Q.stride));
    const ConstMatMap v(base + (2 * heads + h) * d, n, d, Eigen::OuterStride<>(Q.stride));
    RowMatrix s(n, n);
    s.noalias() = q * k.transpose();
    for (int64_t i = 0; i < n; ++i) {
      float* row = s.data() + i * n;
      float mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) mx = std::max(mx, row[j] * scale);
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        row[j] = std::exp(row[j] * scale - mx);
        sum += row[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = 0; j < n; ++j) row[j] *= inv;
    }
    MatMap o(O.row(b * n) + h * d, n, d, Eigen::OuterStride<>(O.stride));
    o.noalias() = s * v;
  }
}

}  // namespace blr
