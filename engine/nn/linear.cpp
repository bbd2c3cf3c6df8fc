// The Linear family: forward dispatch, parameter accounting, checkpoint names, dense assembly and moving a
// layer to a backend's storage. The math of each variant is at the top of linear.h.
#include "engine/nn/linear.h"

#include <Eigen/Core>
#include <cstdio>

#include "engine/core/error.h"

namespace blr {

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMatrix>;

// Contiguous host f32 copy of any tensor (any device, any float dtype).
Tensor host_f32(const Tensor& t) {
  Tensor h = t.device() == Device::CPU ? t : t.to_host();
  if (h.dtype() == DType::F32 && h.is_contiguous()) return h;
  return h.to_dtype(DType::F32);
}

}  // namespace

int64_t Linear::blocks() const {
  if (kind == LinearKind::Monarch) return monarch.blocks;
  if (kind == LinearKind::Blast) return blast.blocks;
  return 1;
}

int64_t Linear::rank() const {
  switch (kind) {
    case LinearKind::LowRank: return lowrank.A.defined() ? lowrank.A.dim(0) : 0;
    case LinearKind::Monarch: return monarch.R.defined() ? monarch.R.dim(1) : 0;
    case LinearKind::Blast: return blast.U.defined() ? blast.U.dim(2) : 0;
    default: return 0;
  }
}

LinearSpec Linear::spec() const {
  LinearSpec s;
  s.kind = kind;
  s.blocks = blocks();
  s.rank = rank();
  return s;
}

void Linear::forward(Ops& ops, const Tensor& x, Tensor& y, Act act) const {
  const Tensor* b = bias.defined() ? &bias : nullptr;
  switch (kind) {
    case LinearKind::Dense: ops.linear(x, weight, b, act, y); return;
    case LinearKind::LowRank: ops.lowrank_linear(x, lowrank, b, act, y); return;
    case LinearKind::Monarch: ops.monarch_linear(x, monarch, b, act, y); return;
    case LinearKind::Blast: ops.blast_linear(x, blast, b, act, y); return;
  }
}

std::vector<std::pair<std::string, Tensor>> Linear::named_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  switch (kind) {
    case LinearKind::Dense: out.emplace_back(name + ".weight", weight); break;
    case LinearKind::LowRank:
      out.emplace_back(name + ".lowrank_A", lowrank.A);
      out.emplace_back(name + ".lowrank_B", lowrank.B);
      break;
    case LinearKind::Monarch:
      out.emplace_back(name + ".monarch_R", monarch.R);
      out.emplace_back(name + ".monarch_L", monarch.L);
      break;
    case LinearKind::Blast:
      out.emplace_back(name + ".blast_U", blast.U);
      out.emplace_back(name + ".blast_S", blast.S);
      out.emplace_back(name + ".blast_V", blast.V);
      break;
  }
  if (bias.defined()) out.emplace_back(name + ".bias", bias);
  return out;
}

int64_t Linear::parameter_count() const {
  int64_t n = 0;
  for (const auto& [key, t] : named_tensors())
    if (t.defined()) n += t.numel();
  return n;
}

size_t Linear::parameter_bytes() const {
  size_t n = 0;
  for (const auto& [key, t] : named_tensors())
    if (t.defined()) n += t.nbytes();
  return n;
}

std::vector<std::pair<std::string, std::string>> Linear::metadata() const {
  if (kind == LinearKind::Dense) return {};
  char err[32];
  std::snprintf(err, sizeof(err), "%.6g", rel_error);
  const std::string p = "blr." + name + ".";
  return {{p + "method", linear_kind_name(kind)},
          {p + "b", std::to_string(blocks())},
          {p + "r", std::to_string(rank())},
          {p + "rel_error", err}};
}

Tensor assemble_dense(const Linear& layer) {
  const int64_t in = layer.in, out = layer.out;
  Tensor w = Tensor::zeros({out, in}, DType::F32);
  Eigen::Map<RowMatrix> W(w.data_as<float>(), out, in);
  switch (layer.kind) {
    case LinearKind::Dense: {
      const Tensor d = host_f32(layer.weight);
      BLR_CHECK(d.numel() == out * in, "assemble_dense: weight ", d.describe(), " for ", out, "x", in);
      W = ConstMap(d.data_as<const float>(), out, in);
      break;
    }
    case LinearKind::LowRank: {
      const Tensor A = host_f32(layer.lowrank.A), B = host_f32(layer.lowrank.B);
      const int64_t r = A.dim(0);
      BLR_CHECK(A.dim(1) == in && B.dim(0) == out && B.dim(1) == r, "assemble_dense: lowrank A ", A.describe(),
                ", B ", B.describe(), " for ", out, "x", in);
      W = ConstMap(B.data_as<const float>(), out, r) * ConstMap(A.data_as<const float>(), r, in);
      break;
    }
    case LinearKind::Monarch: {
      const Tensor R = host_f32(layer.monarch.R), L = host_f32(layer.monarch.L);
      const int64_t b = layer.monarch.blocks, r = R.dim(1), ib = in / b, ob = out / b, g = r / b;
      BLR_CHECK(b >= 1 && R.dim(0) == b && R.dim(2) == ib && L.dim(0) == b && L.dim(1) == ob && L.dim(2) == r && r % b == 0,
                "assemble_dense: monarch R ", R.describe(), ", L ", L.describe(), " for ", out, "x", in, ", b=", b);
      // W_kj = L_k[:, j-slice] · R_j[k-slice, :]
      for (int64_t k = 0; k < b; ++k)
        for (int64_t j = 0; j < b; ++j) {
          const ConstMap Lk(L.data_as<const float>() + k * ob * r, ob, r);
          const ConstMap Rj(R.data_as<const float>() + j * r * ib, r, ib);
          W.block(k * ob, j * ib, ob, ib) = Lk.middleCols(j * g, g) * Rj.middleRows(k * g, g);
        }
      break;
    }
    case LinearKind::Blast: {
      const Tensor U = host_f32(layer.blast.U), S = host_f32(layer.blast.S), V = host_f32(layer.blast.V);
      const int64_t b = layer.blast.blocks, r = U.dim(2), ib = in / b, ob = out / b;
      BLR_CHECK(b >= 1 && U.dim(0) == b && U.dim(1) == ob && S.dim(0) == b && S.dim(1) == b && S.dim(2) == r &&
                    V.dim(0) == b && V.dim(1) == r && V.dim(2) == ib,
                "assemble_dense: blast U ", U.describe(), ", S ", S.describe(), ", V ", V.describe(), " for ", out, "x",
                in, ", b=", b);
      // W_kj = U_k · diag(s_kj) · V_jᵀ
      for (int64_t k = 0; k < b; ++k)
        for (int64_t j = 0; j < b; ++j) {
          const ConstMap Uk(U.data_as<const float>() + k * ob * r, ob, r);
          const ConstMap Vj(V.data_as<const float>() + j * r * ib, r, ib);
          const Eigen::Map<const Eigen::VectorXf> s(S.data_as<const float>() + (k * b + j) * r, r);
          W.block(k * ob, j * ib, ob, ib) = (Uk * s.asDiagonal()) * Vj;
        }
      break;
    }
  }
  return w;
}

namespace {

Tensor convert(const Tensor& t, DType dtype, Arena* arena, const std::string& what) {
  if (!t.defined()) return t;
  Tensor h = t.device() == Device::CPU ? t : t.to_host();
  if (h.dtype() != dtype || !h.is_contiguous()) h = h.to_dtype(dtype);
  if (!arena) return h;
  return h.to_device(*arena, MemCategory::Weights, what);
}

}  // namespace

Linear to_backend(const Linear& layer, DType dtype, Arena* arena) {
  BLR_CHECK(is_floating(dtype), "to_backend: layer '", layer.name, "' cannot be stored as ", dtype_name(dtype));
  Linear out = layer;
  out.weight = convert(layer.weight, dtype, arena, layer.name + ".weight");
  out.lowrank.A = convert(layer.lowrank.A, dtype, arena, layer.name + ".lowrank_A");
  out.lowrank.B = convert(layer.lowrank.B, dtype, arena, layer.name + ".lowrank_B");
  out.monarch.R = convert(layer.monarch.R, dtype, arena, layer.name + ".monarch_R");
  out.monarch.L = convert(layer.monarch.L, dtype, arena, layer.name + ".monarch_L");
  out.blast.U = convert(layer.blast.U, dtype, arena, layer.name + ".blast_U");
  out.blast.S = convert(layer.blast.S, dtype, arena, layer.name + ".blast_S");
  out.blast.V = convert(layer.blast.V, dtype, arena, layer.name + ".blast_V");
  out.bias = convert(layer.bias, dtype, arena, layer.name + ".bias");
  return out;
}

}  // namespace blr
