// The ViT forward pass over planned buffers, through the Ops interface only (so it runs on every backend
// and can be captured into one CUDA graph: no allocation, no host work per block, no synchronisation).
//
// Per image of the batch (T = N + 1 tokens, D width, H MLP width):
//   patchify -> patch linear -> + (pos_embed[1:] + bias) -> x[:, 1:];   x[:, 0] = cls_token + pos_embed[0]
//   12 x { h = LN1(x += delta)  (the previous block's fc2 output; fused residual + norm)
//          qkv = h·Wqkvᵀ;  a = attention(qkv);  delta = a·Wprojᵀ
//          h = LN2(x += delta);  m = GELU(h·Wfc1ᵀ);  delta = m·Wfc2ᵀ }
//   logits = head(LN(x += delta)[:, 0]);  top-k of softmax(logits)
// Only the class token reaches the head, so the last block runs proj, LN2, the MLP and the final norm
// on the B class-token rows alone (exact: no other row influences them after the last attention).
//
// Memory: four activation regions reused by every block (x; h/a; delta; qkv/MLP hidden), with the
// embedding stage's temporaries aliased onto them — about 2 MiB for ViT-B/16 at batch 1 in bf16.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/core/arena.h"
#include "engine/core/tensor.h"
#include "engine/models/vit/vit_model.h"

namespace blr {

class Ops;

struct VitBuffers {
  int64_t batch = 0;
  int topk = 0;
  Tensor image;    // [B, S, S, 3]  model input (preprocessing writes here)
  Tensor patches;  // [B, N, p·p·C]
  Tensor emb;      // [B, N, D]     patch linear output
  Tensor emb_pos;  // [B, N, D]     + position (only when x[:, 1:] is not contiguous, i.e. B > 1)
  Tensor x;        // [B, T, D]     residual stream
  Tensor h;        // [B, T, D]     norm output, then attention output
  Tensor delta;    // [B, T, D]     proj / fc2 output (added to x by the next fused norm)
  Tensor qkv;      // [B, T, 3D]    } one region
  Tensor mlp;      // [B, T, H]     }
  // Class-token path of the last block ([B, 1, ·], contiguous).
  Tensor cls_x, cls_a, cls_h, cls_d, cls_m;
  bool cls_gather = false;  // B > 1: class-token rows are gathered with copies (views otherwise)
  Tensor logits;   // [B, classes]  model dtype
  Tensor probs;    // f32 [B, k]
  Tensor indices;  // i32 [B, k]
  size_t activation_bytes = 0;  // the whole slab
  std::shared_ptr<void> slab;
};

// Plans all activation buffers of a forward pass for `batch` images as one slab from `arena`
// (category Activations). Throws InputError for batch < 1 or k outside [1, classes].
VitBuffers plan_vit_buffers(const VitConfig& config, DType dtype, int64_t batch, int topk, Arena& arena);

// Runs the network on b.image and writes b.logits, b.probs, b.indices.
void vit_forward(Ops& ops, const VitModel& model, VitBuffers& b);

}  // namespace blr
