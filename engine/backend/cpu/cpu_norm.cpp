// CpuOps: layer norm fused with the residual add and the adaLN modulation, modulate, gated add, and
// group norm. Statistics are accumulated in double (two passes: mean, then the mean squared deviation),
// so this stays a trustworthy yardstick for the fp32 CUDA kernels.
#include <cmath>

#include "engine/backend/cpu/cpu_common.h"
#include "engine/backend/cpu/cpu_ops.h"

namespace blr {

using cpu::require_host_f32;

namespace {

// Samples of an activation [B, N, C] (or [B, C]: one token per sample). Row r of the flattened
// [B·N, C] view belongs to sample r / tokens_per_sample.
int64_t batch_of(const Tensor& x) { return x.ndim() >= 2 ? x.dim(0) : 1; }

struct RowStats {
  float mean = 0, rstd = 0;
};
RowStats row_stats(const float* v, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += v[i];
  const double mean = sum / static_cast<double>(n);
  double sq = 0;
  for (int64_t i = 0; i < n; ++i) sq += (v[i] - mean) * (v[i] - mean);
  const double var = sq / static_cast<double>(n);
  return {static_cast<float>(mean), static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)))};
}

}  // namespace

void CpuOps::add_layer_norm(Tensor& x, const Tensor* delta, const Tensor* gate, const NormParams& p, Tensor& y) {
  const char* op = "add_layer_norm";
  require_host_f32(x, op, "x");
  require_host_f32(y, op, "y");
  cpu::require_same_shape(x, y, op, "x", "y");
  BLR_CHECK(!gate || delta, "cpu add_layer_norm: a gate was given without a delta");
  BLR_CHECK(!((p.weight || p.bias) && (p.shift || p.scale)),
            "cpu add_layer_norm: give an affine (weight/bias) or a modulation (shift/scale), not both");
  BLR_CHECK(p.eps >= 0.0f, "cpu add_layer_norm: eps ", p.eps, " is negative");
  const auto X = cpu::rows_of(x, op, "x");
  const auto Y = cpu::rows_of(y, op, "y");
  const int64_t C = X.cols, batch = batch_of(x);
  if (X.rows == 0) return;
  BLR_CHECK(C > 0, "cpu add_layer_norm: x ", x.describe(), " has no features");
  cpu::Rows<float> D;
  if (delta) {
    require_host_f32(*delta, op, "delta");
    cpu::require_same_shape(x, *delta, op, "x", "delta");
    D = cpu::rows_of(*delta, op, "delta");
  }
  const auto G = cpu::per_sample(gate, batch, C, op, "gate");
  const auto shift = cpu::per_sample(p.shift, batch, C, op, "shift");
  const auto scale = cpu::per_sample(p.scale, batch, C, op, "scale");
  const float* w = cpu::channel_vector(p.weight, C, op, "weight");
  const float* bias = cpu::channel_vector(p.bias, C, op, "bias");
  const int64_t tokens = X.rows / batch;

  BLR_OMP_PARALLEL_FOR
  for (int64_t r = 0; r < X.rows; ++r) {
    const int64_t b = r / tokens;
    float* xr = X.row(r);
    float* yr = Y.row(r);
    if (D.data) {
      const float* dr = D.row(r);
      for (int64_t c = 0; c < C; ++c) xr[c] += G ? G.row(b)[c] * dr[c] : dr[c];
    }
    const RowStats s = row_stats(xr, C, p.eps);
    for (int64_t c = 0; c < C; ++c) {
      float v = (xr[c] - s.mean) * s.rstd;
      if (w) v *= w[c];
      if (bias) v += bias[c];
      if (scale) v *= 1.0f + scale.row(b)[c];
      if (shift) v += shift.row(b)[c];
      yr[c] = v;
    }
  }
}

void CpuOps::modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, Tensor& y) {
  const char* op = "modulate";
  require_host_f32(x, op, "x");
  require_host_f32(y, op, "y");
  cpu::require_same_shape(x, y, op, "x", "y");
  const auto X = cpu::rows_of<const float>(x, op, "x");
  const auto Y = cpu::rows_of(y, op, "y");
  const int64_t C = X.cols, batch = batch_of(x);
  if (X.rows == 0) return;
  const auto sh = cpu::per_sample(&shift, batch, C, op, "shift");
  const auto sc = cpu::per_sample(&scale, batch, C, op, "scale");
  const int64_t tokens = X.rows / batch;
  BLR_OMP_PARALLEL_FOR
  for (int64_t r = 0; r < X.rows; ++r) {
    const int64_t b = r / tokens;
    for (int64_t c = 0; c < C; ++c) Y.row(r)[c] = X.row(r)[c] * (1.0f + sc.row(b)[c]) + sh.row(b)[c];
  }
}

void CpuOps::gated_add(Tensor& x, const Tensor* gate, const Tensor& delta) {
  const char* op = "gated_add";
  require_host_f32(x, op, "x");
  require_host_f32(delta, op, "delta");
  cpu::require_same_shape(x, delta, op, "x", "delta");
  const auto X = cpu::rows_of(x, op, "x");
  const auto D = cpu::rows_of<const float>(delta, op, "delta");
  const int64_t C = X.cols, batch = batch_of(x);
  if (X.rows == 0) return;
  const auto G = cpu::per_sample(gate, batch, C, op, "gate");
  const int64_t tokens = X.rows / batch;
  BLR_OMP_PARALLEL_FOR
  for (int64_t r = 0; r < X.rows; ++r) {
    const int64_t b = r / tokens;
    for (int64_t c = 0; c < C; ++c) X.row(r)[c] += G ? G.row(b)[c] * D.row(r)[c] : D.row(r)[c];
  }
}

void CpuOps::group_norm(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias, float eps, Act act,
                        Tensor& y) {
  const char* op = "group_norm";
  require_host_f32(x, op, "x");
  require_host_f32(y, op, "y");
  cpu::require_same_shape(x, y, op, "x", "y");
  cpu::require_contiguous(x, op, "x");
  cpu::require_contiguous(y, op, "y");
  BLR_CHECK(x.ndim() >= 2, "cpu group_norm: x ", x.describe(), " must be [B, ..., C] (NHWC)");
  const int64_t batch = x.dim(0), C = x.dim(-1);
  BLR_CHECK(groups >= 1 && C % groups == 0, "cpu group_norm: ", C, " channels do not split into ", groups, " groups");
  BLR_CHECK(eps >= 0.0f, "cpu group_norm: eps ", eps, " is negative");
  const float* w = cpu::channel_vector(&weight, C, op, "weight");
  const float* bs = cpu::channel_vector(&bias, C, op, "bias");
  if (x.numel() == 0) return;
  const int64_t pixels = x.numel() / (batch * C), cg = C / groups;
  const float* xd = x.data_as<const float>();
  float* yd = y.data_as<float>();

  BLR_OMP_PARALLEL_FOR
  for (int64_t bg = 0; bg < batch * groups; ++bg) {
    const int64_t b = bg / groups, c0 = (bg % groups) * cg;
    const float* xs = xd + b * pixels * C;
    float* ys = yd + b * pixels * C;
    double sum = 0;
    for (int64_t s = 0; s < pixels; ++s)
      for (int64_t c = c0; c < c0 + cg; ++c) sum += xs[s * C + c];
    const double n = static_cast<double>(pixels * cg), mean = sum / n;
    double sq = 0;
    for (int64_t s = 0; s < pixels; ++s)
      for (int64_t c = c0; c < c0 + cg; ++c) sq += (xs[s * C + c] - mean) * (xs[s * C + c] - mean);
    const float m = static_cast<float>(mean);
    const float rstd = static_cast<float>(1.0 / std::sqrt(sq / n + static_cast<double>(eps)));
    for (int64_t s = 0; s < pixels; ++s)
      for (int64_t c = c0; c < c0 + cg; ++c) ys[s * C + c] = apply_act(act, (xs[s * C + c] - m) * rstd * w[c] + bs[c]);
  }
}

}  // namespace blr
