// One forward pass of each model on any Ops (a plain backend, or CheckingOps around one), over buffers
// planned on `arena`, returning the output as a host f32 tensor. Shared by the CheckingOps self-tests on
// the CPU (checked_forward_test.cpp) and the op-by-op GPU checks (checked_forward_gpu_test.cpp).
#pragma once

#include <cstdint>

#include "engine/backend/ops.h"
#include "engine/core/arena.h"
#include "engine/core/tensor.h"
#include "engine/models/dit/dit_model.h"
#include "engine/models/vae/vae_decoder.h"
#include "engine/models/vit/vit_forward.h"
#include "engine/models/vit/vit_model.h"

namespace blr::test {

// Logits [B, classes] of `m` for NHWC f32 images [B, S, S, 3] (converted to the model's dtype). When
// `buffers` is given it receives the planned buffers (tests reach into them to inject faults).
Tensor vit_logits(Ops& ops, Arena& arena, const VitModel& m, const Tensor& nhwc, VitBuffers* buffers = nullptr);
// timm golden input [B, 3, S, S] of tests/data/vit_tiny/golden.safetensors as NHWC.
Tensor vit_golden_input_nhwc();
VitModel load_vit_on(const Checkpoint& ck, DType dtype, Arena& arena);

// DiT output [B, S, S, Cout] for x f32 [B, S, S, C], t f32 [B], y i32 [B].
Tensor dit_output(Ops& ops, Arena& arena, const DitModel& m, const Tensor& x, const Tensor& t, const Tensor& y);
DitModel load_dit_on(const Checkpoint& ck, DType dtype, Arena& arena);

// VAE image [B, 8h, 8w, 3] for a latent f32 [B, h, w, 4] (latent and image stored as the weights' dtype).
Tensor vae_image(Ops& ops, Arena& arena, VaeDecoder& vae, const Tensor& latent, DType io_dtype);

}  // namespace blr::test
