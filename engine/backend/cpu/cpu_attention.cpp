// CpuOps: attention ops — placeholder until this family is implemented.
#include "engine/backend/cpu/cpu_ops.h"

#include "engine/core/error.h"

namespace blr {

void CpuOps::attention(const Tensor& qkv, int heads, float scale, Tensor& out) {
  throw NotImplementedError("cpu backend: attention is not implemented yet");
}

}  // namespace blr
