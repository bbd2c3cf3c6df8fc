// CpuOps: elementwise ops, softmax, strided copy and fill, nearest upsampling, embeddings, patchify /
// unpatchify and the top-k of a softmax. Plain loops over the layouts documented in ops.h.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "engine/backend/cpu/cpu_common.h"
#include "engine/backend/cpu/cpu_ops.h"

namespace blr {

using cpu::require_host;
using cpu::require_host_f32;

namespace {

// Softmax of one row, max-subtracted so large logits cannot overflow; the sum is kept in double.
void softmax_row(const float* x, float* y, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - mx);
    sum += y[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

// Checks an NHWC image [B, H, W, C] and returns its dims.
struct Nhwc {
  int64_t b, h, w, c;
};
Nhwc nhwc_of(const Tensor& t, const char* op, const char* what) {
  require_host_f32(t, op, what);
  BLR_CHECK(t.ndim() == 4, "cpu ", op, ": ", what, " ", t.describe(), " must be an NHWC image [B, H, W, C]");
  cpu::require_contiguous(t, op, what);
  return {t.dim(0), t.dim(1), t.dim(2), t.dim(3)};
}

}  // namespace

void CpuOps::activation(const Tensor& x, Act act, Tensor& y) {
  require_host_f32(x, "activation", "x");
  require_host_f32(y, "activation", "y");
  cpu::require_same_shape(x, y, "activation", "x", "y");
  const auto X = cpu::rows_of<const float>(x, "activation", "x");
  const auto Y = cpu::rows_of(y, "activation", "y");
  BLR_OMP_PARALLEL_FOR
  for (int64_t r = 0; r < X.rows; ++r)
    for (int64_t c = 0; c < X.cols; ++c) Y.row(r)[c] = apply_act(act, X.row(r)[c]);
}

void CpuOps::add(const Tensor& a, const Tensor& b, Tensor& y) {
  require_host_f32(a, "add", "a");
  require_host_f32(b, "add", "b");
  require_host_f32(y, "add", "y");
  cpu::require_same_shape(a, y, "add", "a", "y");
  // b matches the trailing dims of a; the leading dims it lacks are broadcast (stride 0).
  const int lead = a.ndim() - b.ndim();
  bool suffix = lead >= 0;
  for (int d = 0; suffix && d < b.ndim(); ++d) suffix = b.dim(d) == a.dim(lead + d);
  BLR_CHECK(suffix, "cpu add: b ", b.describe(), " is neither a's shape nor a suffix of a ", a.describe());
  Shape bstrides(a.ndim(), 0);
  for (int d = 0; d < b.ndim(); ++d) bstrides[lead + d] = b.stride(d);
  const float* pa = a.data_as<const float>();
  const float* pb = b.data_as<const float>();
  float* py = y.data_as<float>();
  cpu::for_each_run<3>(a.shape(), {a.strides().data(), bstrides.data(), y.strides().data()},
                       [&](const std::array<int64_t, 3>& o, int64_t len, const std::array<int64_t, 3>& s) {
                         for (int64_t i = 0; i < len; ++i) py[o[2] + i * s[2]] = pa[o[0] + i * s[0]] + pb[o[1] + i * s[1]];
                       });
}

void CpuOps::softmax(const Tensor& x, Tensor& y) {
  require_host_f32(x, "softmax", "x");
  require_host_f32(y, "softmax", "y");
  cpu::require_same_shape(x, y, "softmax", "x", "y");
  const auto X = cpu::rows_of<const float>(x, "softmax", "x");
  const auto Y = cpu::rows_of(y, "softmax", "y");
  BLR_OMP_PARALLEL_FOR
  for (int64_t r = 0; r < X.rows; ++r) softmax_row(X.row(r), Y.row(r), X.cols);
}

void CpuOps::copy(const Tensor& src, Tensor& dst) {
  require_host_f32(src, "copy", "src");
  require_host_f32(dst, "copy", "dst");
  cpu::require_same_shape(src, dst, "copy", "src", "dst");
  const float* ps = src.data_as<const float>();
  float* pd = dst.data_as<float>();
  cpu::for_each_run<2>(src.shape(), {src.strides().data(), dst.strides().data()},
                       [&](const std::array<int64_t, 2>& o, int64_t len, const std::array<int64_t, 2>& s) {
                         for (int64_t i = 0; i < len; ++i) pd[o[1] + i * s[1]] = ps[o[0] + i * s[0]];
                       });
}

void CpuOps::fill(Tensor& dst, float value) {
  require_host_f32(dst, "fill", "dst");
  float* pd = dst.data_as<float>();
  cpu::for_each_run<1>(dst.shape(), {dst.strides().data()},
                       [&](const std::array<int64_t, 1>& o, int64_t len, const std::array<int64_t, 1>& s) {
                         for (int64_t i = 0; i < len; ++i) pd[o[0] + i * s[0]] = value;
                       });
}

void CpuOps::upsample_nearest2x(const Tensor& x, Tensor& y) {
  const Nhwc in = nhwc_of(x, "upsample_nearest2x", "x");
  const Nhwc out = nhwc_of(y, "upsample_nearest2x", "y");
  BLR_CHECK(out.b == in.b && out.h == 2 * in.h && out.w == 2 * in.w && out.c == in.c, "cpu upsample_nearest2x: y ",
            y.describe(), " must be [", in.b, ", ", 2 * in.h, ", ", 2 * in.w, ", ", in.c, "] for x ", x.describe());
  const float* px = x.data_as<const float>();
  float* py = y.data_as<float>();
  BLR_OMP_PARALLEL_FOR
  for (int64_t row = 0; row < out.b * out.h; ++row) {
    const int64_t b = row / out.h, oy = row % out.h;
    const float* src = px + (b * in.h + oy / 2) * in.w * in.c;
    float* dst = py + row * out.w * out.c;
    for (int64_t ox = 0; ox < out.w; ++ox) std::memcpy(dst + ox * out.c, src + (ox / 2) * in.c, in.c * sizeof(float));
  }
}

void CpuOps::embedding(const Tensor& table, const Tensor& ids, Tensor& y) {
  require_host_f32(table, "embedding", "table");
  require_host(ids, DType::I32, "embedding", "ids");
  require_host_f32(y, "embedding", "y");
  BLR_CHECK(table.ndim() == 2, "cpu embedding: table ", table.describe(), " must be [rows, C]");
  BLR_CHECK(ids.ndim() == 1, "cpu embedding: ids ", ids.describe(), " must be [B]");
  BLR_CHECK(y.ndim() == 2 && y.dim(0) == ids.dim(0) && y.dim(1) == table.dim(1), "cpu embedding: y ", y.describe(),
            " must be [", ids.dim(0), ", ", table.dim(1), "] for ids ", ids.describe(), " and table ", table.describe());
  const auto T = cpu::rows_of<const float>(table, "embedding", "table");
  const auto Y = cpu::rows_of(y, "embedding", "y");
  const int32_t* pid = ids.data_as<const int32_t>();
  for (int64_t b = 0; b < ids.dim(0); ++b) {
    const int64_t id = pid[b * ids.stride(0)];
    if (id < 0 || id >= T.rows)
      throw InputError(cat("embedding: id ", id, " (position ", b, ") is outside the table of ", T.rows,
                           " rows (valid ids 0..", T.rows - 1, ")"));
    std::memcpy(Y.row(b), T.row(id), T.cols * sizeof(float));
  }
}

void CpuOps::timestep_embedding(const Tensor& t, float max_period, Tensor& y) {
  require_host_f32(t, "timestep_embedding", "t");
  require_host_f32(y, "timestep_embedding", "y");
  BLR_CHECK(t.ndim() == 1 && y.ndim() == 2 && y.dim(0) == t.dim(0), "cpu timestep_embedding: t ", t.describe(),
            " must be [B] and y ", y.describe(), " [B, dim]");
  BLR_CHECK(max_period > 0.0f, "cpu timestep_embedding: max_period ", max_period, " must be positive");
  const auto Y = cpu::rows_of(y, "timestep_embedding", "y");
  const int64_t dim = Y.cols, half = dim / 2;
  // fp32 throughout, in the order of DiT's TimestepEmbedder (freqs, then t·freqs, then cos/sin), so
  // the result matches the PyTorch reference to rounding; an odd dim leaves a zero last column.
  const float neg_log_period = -std::log(max_period);
  for (int64_t b = 0; b < Y.rows; ++b) {
    const float tb = t.data_as<const float>()[b * t.stride(0)];
    float* yr = Y.row(b);
    for (int64_t i = 0; i < half; ++i) {
      const float freq = std::exp(neg_log_period * static_cast<float>(i) / static_cast<float>(half));
      const float arg = tb * freq;
      yr[i] = std::cos(arg);
      yr[half + i] = std::sin(arg);
    }
    if (dim % 2) yr[dim - 1] = 0.0f;
  }
}

void CpuOps::patchify(const Tensor& img, int patch, Tensor& tokens) {
  const Nhwc in = nhwc_of(img, "patchify", "img");
  require_host_f32(tokens, "patchify", "tokens");
  cpu::require_contiguous(tokens, "patchify", "tokens");
  const int64_t p = patch;
  BLR_CHECK(p >= 1 && in.h % p == 0 && in.w % p == 0, "cpu patchify: image ", img.describe(),
            " does not split into ", patch, "x", patch, " patches");
  const int64_t gh = in.h / p, gw = in.w / p, run = p * in.c;
  BLR_CHECK(tokens.ndim() == 3 && tokens.dim(0) == in.b && tokens.dim(1) == gh * gw && tokens.dim(2) == p * run,
            "cpu patchify: tokens ", tokens.describe(), " must be [", in.b, ", ", gh * gw, ", ", p * run, "]");
  // Row pi of patch (gy, gx) is p·C contiguous values in both layouts.
  const float* src = img.data_as<const float>();
  float* dst = tokens.data_as<float>();
  for (int64_t b = 0; b < in.b; ++b)
    for (int64_t gy = 0; gy < gh; ++gy)
      for (int64_t gx = 0; gx < gw; ++gx)
        for (int64_t pi = 0; pi < p; ++pi)
          std::memcpy(dst + ((b * gh + gy) * gw + gx) * p * run + pi * run,
                      src + ((b * in.h + gy * p + pi) * in.w + gx * p) * in.c, run * sizeof(float));
}

void CpuOps::unpatchify(const Tensor& tokens, int patch, Tensor& img) {
  const Nhwc out = nhwc_of(img, "unpatchify", "img");
  require_host_f32(tokens, "unpatchify", "tokens");
  cpu::require_contiguous(tokens, "unpatchify", "tokens");
  const int64_t p = patch;
  BLR_CHECK(p >= 1 && out.h % p == 0 && out.w % p == 0, "cpu unpatchify: image ", img.describe(),
            " does not split into ", patch, "x", patch, " patches");
  const int64_t gh = out.h / p, gw = out.w / p, run = p * out.c;
  BLR_CHECK(tokens.ndim() == 3 && tokens.dim(0) == out.b && tokens.dim(1) == gh * gw && tokens.dim(2) == p * run,
            "cpu unpatchify: tokens ", tokens.describe(), " must be [", out.b, ", ", gh * gw, ", ", p * run, "]");
  const float* src = tokens.data_as<const float>();
  float* dst = img.data_as<float>();
  for (int64_t b = 0; b < out.b; ++b)
    for (int64_t gy = 0; gy < gh; ++gy)
      for (int64_t gx = 0; gx < gw; ++gx)
        for (int64_t pi = 0; pi < p; ++pi)
          std::memcpy(dst + ((b * out.h + gy * p + pi) * out.w + gx * p) * out.c,
                      src + ((b * gh + gy) * gw + gx) * p * run + pi * run, run * sizeof(float));
}

void CpuOps::softmax_topk(const Tensor& logits, Tensor& probs, Tensor& indices) {
  require_host_f32(logits, "softmax_topk", "logits");
  require_host_f32(probs, "softmax_topk", "probs");
  require_host(indices, DType::I32, "softmax_topk", "indices");
  BLR_CHECK(logits.ndim() == 2 && probs.ndim() == 2 && probs.shape() == indices.shape() &&
                probs.dim(0) == logits.dim(0) && probs.dim(1) >= 1 && probs.dim(1) <= logits.dim(1),
            "cpu softmax_topk: logits ", logits.describe(), ", probs ", probs.describe(), ", indices ",
            indices.describe(), ": expected [B, V], [B, k], [B, k] with 1 <= k <= V");
  const auto L = cpu::rows_of<const float>(logits, "softmax_topk", "logits");
  const auto P = cpu::rows_of(probs, "softmax_topk", "probs");
  const auto I = cpu::rows_of<int32_t>(indices, "softmax_topk", "indices");
  const int64_t V = L.cols, k = P.cols;
  std::vector<float> soft(V);
  std::vector<int32_t> order(V);
  for (int64_t b = 0; b < L.rows; ++b) {
    const float* l = L.row(b);
    softmax_row(l, soft.data(), V);
    // Rank by logit (the softmax is monotonic in it), larger first, ties to the lower index; a NaN
    // logit ranks last so the order stays a strict weak ordering.
    auto key = [&](int32_t i) { return std::isnan(l[i]) ? -INFINITY : l[i]; };
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t c) {
      const float ka = key(a), kc = key(c);
      return ka > kc || (ka == kc && a < c);
    });
    for (int64_t j = 0; j < k; ++j) {
      P.row(b)[j] = soft[order[j]];
      I.row(b)[j] = order[j];
    }
  }
}

}  // namespace blr
