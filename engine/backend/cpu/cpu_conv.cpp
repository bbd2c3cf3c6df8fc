// CpuOps: 2-D convolution on NHWC images as im2col + Eigen GEMM. With KRSC weights [Co, kh, kw, Ci] a
// weight row is exactly one im2col row's layout (ky, kx, ci), so y_tile = cols_tile · Wᵀ with no
// reshuffling. The output pixels are cut into tiles whose im2col buffer stays around 8 MiB, and tiles
// run in parallel (the VAE decoder's 3×3 convs at 512 channels run here in CI and in the CPU demo).
// 1×1 convolutions with stride 1 and no padding skip im2col: the image already is the matrix.
#include <algorithm>
#include <cstring>

#include "engine/backend/cpu/cpu_common.h"
#include "engine/backend/cpu/cpu_ops.h"

namespace blr {

using cpu::ConstMatMap;
using cpu::MatMap;
using cpu::RowMatrix;
using cpu::require_host_f32;

namespace {
constexpr int64_t kIm2colFloats = int64_t{1} << 21;  // 8 MiB of im2col per tile
}

void CpuOps::conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dParams& p, Tensor& y) {
  const char* op = "conv2d";
  require_host_f32(x, op, "x");
  require_host_f32(w, op, "weight");
  require_host_f32(y, op, "y");
  BLR_CHECK(x.ndim() == 4 && w.ndim() == 4 && y.ndim() == 4, "cpu conv2d: expects x [B, H, W, Ci], weight [Co, kh, kw, Ci]"
            " and y [B, Ho, Wo, Co], got ", x.describe(), ", ", w.describe(), ", ", y.describe());
  cpu::require_contiguous(x, op, "x");
  cpu::require_contiguous(w, op, "weight");
  cpu::require_contiguous(y, op, "y");
  BLR_CHECK(p.stride >= 1 && p.pad >= 0, "cpu conv2d: stride ", p.stride, " and pad ", p.pad, " are invalid");
  const int64_t batch = x.dim(0), h = x.dim(1), wd = x.dim(2), ci = x.dim(3);
  const int64_t co = w.dim(0), kh = w.dim(1), kw = w.dim(2), s = p.stride, pad = p.pad;
  BLR_CHECK(w.dim(3) == ci, "cpu conv2d: weight ", w.describe(), " takes ", w.dim(3), " input channels, x ",
            x.describe(), " has ", ci);
  BLR_CHECK(h + 2 * pad >= kh && wd + 2 * pad >= kw, "cpu conv2d: kernel ", kh, "x", kw, " is larger than the padded image ",
            h + 2 * pad, "x", wd + 2 * pad);
  const int64_t ho = (h + 2 * pad - kh) / s + 1, wo = (wd + 2 * pad - kw) / s + 1;
  BLR_CHECK(y.dim(0) == batch && y.dim(1) == ho && y.dim(2) == wo && y.dim(3) == co, "cpu conv2d: y ", y.describe(),
            " must be [", batch, ", ", ho, ", ", wo, ", ", co, "] for x ", x.describe(), ", weight ", w.describe(),
            ", stride ", s, ", pad ", pad);
  const float* b = cpu::channel_vector(bias, co, op, "bias");
  const int64_t k = kh * kw * ci, pixels = batch * ho * wo;
  if (pixels == 0 || co == 0) return;
  const float* px = x.data_as<const float>();
  const ConstMatMap W(w.data_as<const float>(), co, k, Eigen::OuterStride<>(k));
  MatMap Y(y.data_as<float>(), pixels, co, Eigen::OuterStride<>(co));

  if (kh == 1 && kw == 1 && s == 1 && pad == 0) {
    const ConstMatMap X(px, pixels, ci, Eigen::OuterStride<>(ci));
    Y.noalias() = X * W.transpose();
  } else {
    const int64_t tile = std::max<int64_t>(1, std::min(pixels, kIm2colFloats / std::max<int64_t>(k, 1)));
    const int64_t tiles = (pixels + tile - 1) / tile;
    BLR_OMP_PARALLEL_FOR_DYNAMIC
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t p0 = t * tile, rows = std::min(tile, pixels - p0);
      RowMatrix cols(rows, k);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t pix = p0 + r, bb = pix / (ho * wo), oy = pix / wo % ho, ox = pix % wo;
        float* dst = cols.data() + r * k;
        for (int64_t ky = 0; ky < kh; ++ky) {
          const int64_t iy = oy * s - pad + ky;
          for (int64_t kx = 0; kx < kw; ++kx, dst += ci) {
            const int64_t ix = ox * s - pad + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= wd) std::fill(dst, dst + ci, 0.0f);
            else std::memcpy(dst, px + ((bb * h + iy) * wd + ix) * ci, ci * sizeof(float));
          }
        }
      }
      Y.middleRows(p0, rows).noalias() = cols * W.transpose();
    }
  }
  if (b) {
    BLR_OMP_PARALLEL_FOR
    for (int64_t r = 0; r < pixels; ++r)
      for (int64_t c = 0; c < co; ++c) Y(r, c) += b[c];
  }
}

}  // namespace blr
