// ViT weights, loaded straight from timm key names (patch_embed.proj, cls_token, pos_embed,
// blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}, norm, head) on any backend and dtype.
// Every transformer linear and the head go through blr::load_linear, so each can be dense, loaded from
// BLR factors, or compressed at load by the same rules as `blr compress`. Folded at load, so the forward
// pass does no work for them:
//   - the patch-embedding conv [D, C, p, p] becomes a Linear [D, p·p·C] in Ops::patchify's (pi, pj, c)
//     feature order (the conv is a GEMM over patches);
//   - its bias is added to pos_embed[1:] (patch_pos), and cls_token to pos_embed[0] (cls_pos).
#pragma once

#include <string>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/models/vit/vit_config.h"
#include "engine/nn/linear.h"

namespace blr {

class Checkpoint;

struct VitBlock {
  Tensor norm1_w, norm1_b, norm2_w, norm2_b;  // [D]
  Linear qkv;   // D -> 3D, rows (q|k|v, head, d)
  Linear proj;  // D -> D
  Linear fc1;   // D -> H (GELU fused)
  Linear fc2;   // H -> D
};

struct VitModel {
  VitConfig config;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  std::string source;  // file (or label) it came from
  Linear patch_embed;  // [D, p·p·C] dense, no bias (folded into patch_pos)
  Tensor cls_pos;      // [1, 1, D] = cls_token + pos_embed[0]
  Tensor patch_pos;    // [N, D]    = pos_embed[1:] + patch_embed bias
  std::vector<VitBlock> blocks;
  Tensor norm_w, norm_b;  // final LayerNorm [D]
  Linear head;            // D -> classes

  // Every Linear, in forward order (patch_embed first, head last).
  std::vector<const Linear*> linears() const;
  int64_t parameter_count() const;
  size_t weight_bytes() const;
  // "dense", or e.g. "blast:b=3,r=128 (36 of 50 linears)"; mixed specs are joined with '+'.
  std::string mode_label() const;
};

struct VitLoadOptions {
  DType dtype = DType::F32;          // storage dtype of every weight
  Arena* arena = nullptr;            // destination (its device); null = host memory, unaccounted
  std::vector<LayerRule> rules;      // compress matching dense linears at load (first match wins)
  VitConfigOverrides overrides;
  bool use_gpu_compression = true;
};

// Loads a ViT from `ckpt`. Throws InputError naming the tensor for missing tensors and the tensor and
// both shapes for wrong shapes.
VitModel load_vit(const Checkpoint& ckpt, const VitLoadOptions& options);

// The paper's configurations as layer rules ("dense" -> none): Monarch b=4 r=128 and BLAST b=3 r=128 on
// qkv, fc1 and fc2 of every block; "lowrank" r=128 on the same layers (the same parameter count as
// Monarch at r=128). Throws InputError for an unknown mode.
std::vector<LayerRule> vit_mode_rules(const std::string& mode);

}  // namespace blr
