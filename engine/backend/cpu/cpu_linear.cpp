// CpuOps: linear ops — placeholder until this family is implemented.
#include "engine/backend/cpu/cpu_ops.h"

#include "engine/core/error.h"

namespace blr {

void CpuOps::linear(const Tensor& x, const Tensor& w, const Tensor* bias, Act act, Tensor& y) {
  throw NotImplementedError("cpu backend: linear is not implemented yet");
}

void CpuOps::matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_b, float alpha) {
  throw NotImplementedError("cpu backend: matmul is not implemented yet");
}

}  // namespace blr
