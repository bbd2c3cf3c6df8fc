// CudaOps: the normalisation family — fused residual add + LayerNorm + affine/adaLN modulation, modulate,
// gated residual add, GroupNorm (+ SiLU). Validates the tensors and calls kernels/norm.
#include <cmath>

#include "engine/backend/cuda/cuda_ops.h"
#include "engine/backend/cuda/cuda_tensor_args.h"
#include "engine/core/cuda_check.h"
#include "engine/core/error.h"
#include "kernels/norm.h"

namespace blr {

using namespace cuda_args;

void CudaOps::add_layer_norm(Tensor& x, const Tensor* delta, const Tensor* gate, const NormParams& p, Tensor& y) {
  const char* op = "add_layer_norm";
  const kern::DT dt = float_tensor(x, op, "x");
  require_cuda(y, op, "y");
  require_same_shape(y, x, op, "y", "x");
  require_dtype(y, x.dtype(), op, "y");
  BLR_CHECK(!gate || delta, "cuda ", op, ": a gate was given without a delta to gate");
  BLR_CHECK(!((p.weight || p.bias) && (p.shift || p.scale)), "cuda ", op,
            ": give an affine (weight/bias) or a modulation (shift/scale), not both");
  BLR_CHECK(std::isfinite(p.eps) && p.eps >= 0.0f, "cuda ", op, ": eps ", p.eps, " must be finite and >= 0");
  const Tokens xt = tokens(x, op, "x");
  kern::AddLayerNormArgs a;
  a.B = xt.B;
  a.N = xt.N;
  a.C = xt.C;
  a.x = xt.ref;
  if (delta) {
    require_cuda(*delta, op, "delta");
    require_same_shape(*delta, x, op, "delta", "x");
    require_dtype(*delta, x.dtype(), op, "delta");
    a.delta = tokens(*delta, op, "delta").ref;
  }
  a.gate = sample(gate, xt, x.dtype(), op, "gate");
  a.weight = channel_vector(p.weight, xt.C, x.dtype(), op, "weight");
  a.bias = channel_vector(p.bias, xt.C, x.dtype(), op, "bias");
  a.shift = sample(p.shift, xt, x.dtype(), op, "shift");
  a.scale = sample(p.scale, xt, x.dtype(), op, "scale");
  a.y = tokens(y, op, "y").ref;
  a.eps = p.eps;
  BLR_CUDA_CHECK(kern::add_layer_norm(a, dt, stream()));
}

void CudaOps::modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, Tensor& y) {
  const char* op = "modulate";
  const kern::DT dt = float_tensor(x, op, "x");
  require_cuda(y, op, "y");
  require_same_shape(y, x, op, "y", "x");
  require_dtype(y, x.dtype(), op, "y");
  const Tokens xt = tokens(x, op, "x");
  const kern::SampleRef sh = sample(&shift, xt, x.dtype(), op, "shift");
  const kern::SampleRef sc = sample(&scale, xt, x.dtype(), op, "scale");
  BLR_CUDA_CHECK(kern::modulate(xt.B, xt.N, xt.C, xt.ref, sh, sc, tokens(y, op, "y").ref, dt, stream()));
}

void CudaOps::gated_add(Tensor& x, const Tensor* gate, const Tensor& delta) {
  const char* op = "gated_add";
  const kern::DT dt = float_tensor(x, op, "x");
  require_cuda(delta, op, "delta");
  require_same_shape(delta, x, op, "delta", "x");
  require_dtype(delta, x.dtype(), op, "delta");
  const Tokens xt = tokens(x, op, "x");
  const kern::SampleRef g = sample(gate, xt, x.dtype(), op, "gate");
  BLR_CUDA_CHECK(kern::gated_add(xt.B, xt.N, xt.C, xt.ref, g, tokens(delta, op, "delta").ref, dt, stream()));
}

void CudaOps::group_norm(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias, float eps, Act act,
                         Tensor& y) {
  const char* op = "group_norm";
  const kern::DT dt = float_tensor(x, op, "x");
  BLR_CHECK(x.ndim() >= 2, "cuda ", op, ": x ", x.describe(), " must be [B, ..., C] (NHWC)");
  require_contiguous(x, op, "x");
  require_cuda(y, op, "y");
  require_same_shape(y, x, op, "y", "x");
  require_dtype(y, x.dtype(), op, "y");
  require_contiguous(y, op, "y");
  const int64_t B = x.dim(0), C = x.dim(-1), HW = (B > 0 && C > 0) ? x.numel() / (B * C) : 0;
  BLR_CHECK(groups > 0 && C % groups == 0, "cuda ", op, ": ", C, " channels cannot be split into ", groups,
            " groups");
  BLR_CHECK(B <= 65535 && groups <= 65535, "cuda ", op, ": batch ", B, " or groups ", groups, " above 65535");
  BLR_CHECK(std::isfinite(eps) && eps >= 0.0f, "cuda ", op, ": eps ", eps, " must be finite and >= 0");
  const void* w = channel_vector(&weight, C, x.dtype(), op, "weight");
  const void* b = channel_vector(&bias, C, x.dtype(), op, "bias");
  if (x.numel() == 0) return;
  const size_t ws_bytes = kern::group_norm_workspace_bytes(B, HW, C, groups, dt);
  // The last scratch slot: the partial sums live only for the three launches of this call.
  void* ws = scratch(ws_bytes, kScratchSlots - 1);
  BLR_CUDA_CHECK(kern::group_norm(x.data(), y.data(), w, b, B, HW, C, groups, eps, static_cast<kern::Act>(act), ws,
                                  ws_bytes, dt, stream()));
}

}  // namespace blr
