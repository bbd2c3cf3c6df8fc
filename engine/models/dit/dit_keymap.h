// Checkpoint layouts of DiT. The model loads original facebookresearch names (DiT-XL-2-256x256.pt);
// a diffusers DiTTransformer2DModel state dict is presented under those names by a renaming reader:
//   pos_embed.proj                                   -> x_embedder.proj
//   transformer_blocks.N.norm1.emb.timestep_embedder.linear_1/2 -> t_embedder.mlp.0/2   (per-block copies,
//   transformer_blocks.N.norm1.emb.class_embedder.embedding_table.weight -> y_embedder.embedding_table.weight
//                                                    (copies checked identical, kept once)
//   transformer_blocks.N.norm1.linear               -> blocks.N.adaLN_modulation.1
//   transformer_blocks.N.attn1.to_q | to_k | to_v   -> blocks.N.attn.qkv (rows concatenated q, k, v)
//   transformer_blocks.N.attn1.to_out.0             -> blocks.N.attn.proj
//   transformer_blocks.N.ff.net.0.proj / ff.net.2   -> blocks.N.mlp.fc1 / fc2
//   proj_out_1 / proj_out_2                         -> final_layer.adaLN_modulation.1 / final_layer.linear
// diffusers keeps no pos_embed tensor (it is recomputed, as we do when it is absent). Factor tensors of
// compressed layers (.blast_U, ...) and their "blr.<layer>.*" metadata are renamed too, except for q/k/v,
// which cannot be fused once factored.
#pragma once

#include <string>

#include "engine/io/checkpoint.h"

namespace blr {

enum class DitLayout { Original, Diffusers };
const char* dit_layout_name(DitLayout l);

// Original when x_embedder.proj.weight is present, diffusers when pos_embed.proj.weight and
// transformer_blocks.0.* are; otherwise throws InputError naming the file.
DitLayout detect_dit_layout(const Checkpoint& ckpt);

// The label table's name: "y_embedder.embedding_table.weight" (nn.Embedding, as the original files store
// it), or "y_embedder.embedding_table" when a converted file dropped the suffix.
std::string dit_label_table_name(const Checkpoint& original_view);

// The checkpoint itself for the original layout; for diffusers, a view under original names. Throws
// InputError when per-block embedder copies differ or q/k/v are compressed.
Checkpoint dit_original_view(const Checkpoint& ckpt);

}  // namespace blr
