// CpuOps: norm ops — placeholder until this family is implemented.
#include "engine/backend/cpu/cpu_ops.h"

#include "engine/core/error.h"

namespace blr {

void CpuOps::add_layer_norm(Tensor& x, const Tensor* delta, const Tensor* gate, const NormParams& p, Tensor& y) {
  throw NotImplementedError("cpu backend: add_layer_norm is not implemented yet");
}

void CpuOps::modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, Tensor& y) {
  throw NotImplementedError("cpu backend: modulate is not implemented yet");
}

void CpuOps::gated_add(Tensor& x, const Tensor* gate, const Tensor& delta) {
  throw NotImplementedError("cpu backend: gated_add is not implemented yet");
}

void CpuOps::group_norm(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias, float eps, Act act, Tensor& y) {
  throw NotImplementedError("cpu backend: group_norm is not implemented yet");
}

}  // namespace blr
