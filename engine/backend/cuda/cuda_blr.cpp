// CudaOps: blr ops — placeholder until this family is implemented.
#include "engine/backend/cuda/cuda_ops.h"

#include "engine/core/error.h"

namespace blr {

void CudaOps::lowrank_linear(const Tensor& x, const LowRankWeights& w, const Tensor* bias, Act act, Tensor& y) {
  throw NotImplementedError("cuda backend: lowrank_linear is not implemented yet");
}

void CudaOps::monarch_linear(const Tensor& x, const MonarchWeights& w, const Tensor* bias, Act act, Tensor& y) {
  throw NotImplementedError("cuda backend: monarch_linear is not implemented yet");
}

void CudaOps::blast_linear(const Tensor& x, const BlastWeights& w, const Tensor* bias, Act act, Tensor& y) {
  throw NotImplementedError("cuda backend: blast_linear is not implemented yet");
}

}  // namespace blr
