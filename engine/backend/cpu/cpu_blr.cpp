// CpuOps: blr ops — placeholder until this family is implemented.
#include "engine/backend/cpu/cpu_ops.h"

#include "engine/core/error.h"

namespace blr {

void CpuOps::lowrank_linear(const Tensor& x, const LowRankWeights& w, const Tensor* bias, Act act, Tensor& y) {
  throw NotImplementedError("cpu backend: lowrank_linear is not implemented yet");
}

void CpuOps::monarch_linear(const Tensor& x, const MonarchWeights& w, const Tensor* bias, Act act, Tensor& y) {
  throw NotImplementedError("cpu backend: monarch_linear is not implemented yet");
}

void CpuOps::blast_linear(const Tensor& x, const BlastWeights& w, const Tensor* bias, Act act, Tensor& y) {
  throw NotImplementedError("cpu backend: blast_linear is not implemented yet");
}

}  // namespace blr
