// Launchers for the normalisation family (see norm.cu for what each kernel computes and why it is shaped
// that way). Raw pointers, sizes and element strides only; every tensor's last dimension is contiguous.
//
// Token activations are addressed as [B, N, C]: element (b, n, c) lives at ptr + b·sb + n·sn + c, so a
// view such as the class-token rows of a [B, 197, 768] tensor, or a chunk of channels, needs no copy.
// Per-sample vectors (adaLN shift/scale/gate) are [B, C] rows at ptr + b·sb + c; sb = 0 broadcasts one row
// to every sample. All tensors of one call share the storage type `dt`; statistics are fp32.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/kernel_types.h"

namespace blr::kern {

struct TokensRef {  // [B, N, C] activations
  void* ptr = nullptr;
  int64_t sb = 0, sn = 0;
};
struct SampleRef {  // [B, C] per-sample vector (or nullptr)
  const void* ptr = nullptr;
  int64_t sb = 0;
};

// if delta: x += (gate ? gate ⊙ delta : delta), stored back to x (rounded to dt);
// y = LayerNorm(x) over C with eps, then ·weight, +bias (each [C], optional), then ·(1 + scale) + shift
// (per-sample, optional). y may be x itself.
struct AddLayerNormArgs {
  int64_t B = 0, N = 0, C = 0;
  TokensRef x;
  TokensRef delta;  // ptr null: no residual add
  SampleRef gate;
  const void* weight = nullptr;
  const void* bias = nullptr;
  SampleRef shift, scale;
  TokensRef y;
  float eps = 1e-6f;
};
cudaError_t add_layer_norm(const AddLayerNormArgs& a, DT dt, cudaStream_t stream);

// y = x·(1 + scale) + shift (per-sample shift/scale). y may be x.
cudaError_t modulate(int64_t B, int64_t N, int64_t C, TokensRef x, SampleRef shift, SampleRef scale, TokensRef y,
                     DT dt, cudaStream_t stream);

// x += gate ⊙ delta (gate.ptr null: x += delta).
cudaError_t gated_add(int64_t B, int64_t N, int64_t C, TokensRef x, SampleRef gate, TokensRef delta, DT dt,
                      cudaStream_t stream);

// GroupNorm over contiguous NHWC x [B, HW, C]: statistics per (sample, group of C/groups channels) over
// all HW pixels, then y = (x − mean)·rstd·weight[c] + bias[c] and the activation `act`. y may be x.
// Needs a device workspace of group_norm_workspace_bytes(...) bytes (no allocation inside, so the call
// can be captured in a CUDA graph). Requires C % groups == 0.
size_t group_norm_workspace_bytes(int64_t B, int64_t HW, int64_t C, int groups, DT dt);
cudaError_t group_norm(const void* x, void* y, const void* weight, const void* bias, int64_t B, int64_t HW,
                       int64_t C, int groups, float eps, Act act, void* workspace, size_t workspace_bytes, DT dt,
                       cudaStream_t stream);

}  // namespace blr::kern
