// CpuOps: misc ops — placeholder until this family is implemented.
#include "engine/backend/cpu/cpu_ops.h"

#include "engine/core/error.h"

namespace blr {

void CpuOps::activation(const Tensor& x, Act act, Tensor& y) {
  throw NotImplementedError("cpu backend: activation is not implemented yet");
}

void CpuOps::add(const Tensor& a, const Tensor& b, Tensor& y) {
  throw NotImplementedError("cpu backend: add is not implemented yet");
}

void CpuOps::softmax(const Tensor& x, Tensor& y) {
  throw NotImplementedError("cpu backend: softmax is not implemented yet");
}

void CpuOps::copy(const Tensor& src, Tensor& dst) {
  throw NotImplementedError("cpu backend: copy is not implemented yet");
}

void CpuOps::fill(Tensor& dst, float value) {
  throw NotImplementedError("cpu backend: fill is not implemented yet");
}

void CpuOps::upsample_nearest2x(const Tensor& x, Tensor& y) {
  throw NotImplementedError("cpu backend: upsample_nearest2x is not implemented yet");
}

void CpuOps::embedding(const Tensor& table, const Tensor& ids, Tensor& y) {
  throw NotImplementedError("cpu backend: embedding is not implemented yet");
}

void CpuOps::timestep_embedding(const Tensor& t, float max_period, Tensor& y) {
  throw NotImplementedError("cpu backend: timestep_embedding is not implemented yet");
}

void CpuOps::patchify(const Tensor& img, int patch, Tensor& tokens) {
  throw NotImplementedError("cpu backend: patchify is not implemented yet");
}

void CpuOps::unpatchify(const Tensor& tokens, int patch, Tensor& img) {
  throw NotImplementedError("cpu backend: unpatchify is not implemented yet");
}

void CpuOps::softmax_topk(const Tensor& logits, Tensor& probs, Tensor& indices) {
  throw NotImplementedError("cpu backend: softmax_topk is not implemented yet");
}

}  // namespace blr
