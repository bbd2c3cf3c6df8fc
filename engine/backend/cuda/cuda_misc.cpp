// CudaOps: misc ops — placeholder until this family is implemented.
#include "engine/backend/cuda/cuda_ops.h"

#include "engine/core/error.h"

namespace blr {

void CudaOps::activation(const Tensor& x, Act act, Tensor& y) {
  throw NotImplementedError("cuda backend: activation is not implemented yet");
}

void CudaOps::add(const Tensor& a, const Tensor& b, Tensor& y) {
  throw NotImplementedError("cuda backend: add is not implemented yet");
}

void CudaOps::softmax(const Tensor& x, Tensor& y) {
  throw NotImplementedError("cuda backend: softmax is not implemented yet");
}

void CudaOps::copy(const Tensor& src, Tensor& dst) {
  throw NotImplementedError("cuda backend: copy is not implemented yet");
}

void CudaOps::fill(Tensor& dst, float value) {
  throw NotImplementedError("cuda backend: fill is not implemented yet");
}

void CudaOps::upsample_nearest2x(const Tensor& x, Tensor& y) {
  throw NotImplementedError("cuda backend: upsample_nearest2x is not implemented yet");
}

void CudaOps::embedding(const Tensor& table, const Tensor& ids, Tensor& y) {
  throw NotImplementedError("cuda backend: embedding is not implemented yet");
}

void CudaOps::timestep_embedding(const Tensor& t, float max_period, Tensor& y) {
  throw NotImplementedError("cuda backend: timestep_embedding is not implemented yet");
}

void CudaOps::patchify(const Tensor& img, int patch, Tensor& tokens) {
  throw NotImplementedError("cuda backend: patchify is not implemented yet");
}

void CudaOps::unpatchify(const Tensor& tokens, int patch, Tensor& img) {
  throw NotImplementedError("cuda backend: unpatchify is not implemented yet");
}

void CudaOps::softmax_topk(const Tensor& logits, Tensor& probs, Tensor& indices) {
  throw NotImplementedError("cuda backend: softmax_topk is not implemented yet");
}

}  // namespace blr
