// DiT (Peebles & Xie): the class-conditional latent diffusion transformer, forward through Ops only.
//
// Per step (Bm = B, or 2B with classifier-free guidance):
//   tokens  = patchify(x) · W_patchᵀ + (pos_embed + b_patch)          [Bm, N, H]  (bias folded into the table)
//   c       = Linear(SiLU(Linear(freq(t)))) + y_table[label];  s = SiLU(c)   (SiLU applied once)
//   mod     = s · W_adaLNᵀ + b   — every block's adaLN (and the final layer's) in ONE GEMM when all are
//             dense: their weights are concatenated at load into [depth·6H + 2H, H]; block l reads strided
//             [Bm, H] row views of the [Bm, depth·6H + 2H] result. BLR adaLN layers run one per block.
//   block l: h = LN(x)·(1+scale_msa)+shift_msa  — fused with the previous block's gated MLP residual:
//                add_layer_norm(x, delta = fc2 out, gate = gate_mlp[l−1])
//            a = attention(h·W_qkvᵀ) ; p = a·W_projᵀ
//            h = add_layer_norm(x, delta = p, gate = gate_msa) modulated by shift/scale_mlp
//            f = GELU_tanh(h·W_fc1ᵀ) (activation in the GEMM epilogue) ; delta = f·W_fc2ᵀ
//   final:  h = add_layer_norm(x, delta, gate_mlp[last]) modulated by the final shift/scale
//           out = unpatchify(h·W_finalᵀ)                                    [Bm, Hl, Wl, Cout] NHWC
// Why the gated residuals live in the norm kernel rather than a GEMM epilogue: the gate is per sample
// ([Bm, H], a different vector for each image and for the cond/uncond halves), and cuBLASLt epilogues
// only broadcast one bias vector over all rows; the norm that consumes x next reads x anyway, so adding
// gate ⊙ delta there costs no extra pass over memory.
//
// Activation buffers (DitWorkspace) are planned once per batch size before any graph capture and reused
// by every block: x (residual), h (norm output, also the attention output), delta (proj/fc2 output), and
// one wide buffer holding qkv, then the MLP hidden.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend/ops.h"
#include "engine/core/tensor.h"
#include "engine/models/dit/dit_config.h"
#include "engine/nn/linear.h"

namespace blr {

class Checkpoint;

struct DitLoadOptions {
  DType dtype = DType::BF16;                 // weight and activation storage (the CPU backend needs F32)
  Arena* arena = nullptr;                    // where weights live (required)
  std::vector<LayerRule> rules;              // compress matching dense layers at load (first match wins)
  bool use_gpu_compression = true;
  bool fuse_adaln = true;                    // concatenate dense adaLN layers into one GEMM
};

// Layer rules of the named modes for DiT: "dense" (none), "blast" (the paper's: b=9; qkv r=384,
// fc1 r=256, adaLN r=256), "monarch" (b=4 with the same ranks, so parameter counts match BLAST's within
// 2%), "lowrank" (the same ranks). Throws InputError for another name.
std::vector<LayerRule> dit_mode_rules(const std::string& mode);

struct DitBlock {
  Linear qkv, proj, fc1, fc2;
  Linear adaln;  // undefined (kind Dense, no weight) when fused into DitModel::adaln_all
};

// Activations for one batch size (rows Bm); planned before capture, reused by every step.
struct DitWorkspace {
  int64_t rows = 0;  // Bm
  Tensor tokens;     // [Bm, N, p²C] patchified input
  Tensor x, h, delta;  // [Bm, N, H]
  Tensor wide;       // [Bm·N·max(3H, mlp)]: qkv, then the MLP hidden
  Tensor freq, t_hidden, t_emb, y_emb, c_silu;  // [Bm, 256] / [Bm, H]
  Tensor mod;        // fused: [Bm, depth·6H + 2H]; per layer: depth+1 segments [Bm, 6H] ... [Bm, 2H]
  Tensor final_out;  // [Bm, N, p²·Cout]
  Tensor cond_tmp;   // conditioning workspaces only: one BLR adaLN layer's output [rows, 6H]
  // True when the caller fills `mod` before each forward (e.g. gathered from modulations precomputed for
  // every sampling step, see DitModel::conditioning); forward() then skips the conditioning entirely.
  bool mod_external = false;
  size_t bytes() const;
};

class DitModel {
 public:
  // Loads original-layout or diffusers-layout weights (dit_keymap.h), every linear through load_linear.
  static DitModel load(const Checkpoint& ckpt, const DitLoadOptions& options);

  const DitConfig& config() const { return cfg_; }
  DType dtype() const { return dtype_; }
  bool adaln_fused() const { return adaln_all_.weight.defined(); }
  // The layers in checkpoint order (fused adaLN as one entry), for reports and benchmarks.
  std::vector<const Linear*> linears() const;
  int64_t parameter_count() const;
  size_t weight_bytes() const;
  std::string describe_layers() const;  // "qkv blast:b=9,r=384 ×28, ..., adaLN fused dense"

  // Activations for `rows` = Bm samples, from `arena` (category Activations).
  DitWorkspace plan(int64_t rows, Arena& arena) const;
  // Elements of the modulation one sample needs: depth·6H + 2H (all blocks' adaLN + the final layer's).
  int64_t modulation_width() const { return cfg_.depth * cfg_.adaln_width() + 2 * cfg_.hidden; }
  // Buffers for conditioning() over `rows` samples at once (only the conditioning fields are set).
  DitWorkspace plan_conditioning(int64_t rows, Arena& arena) const;
  // The adaLN modulations of M samples (t f32 [M], labels i32 [M]) in one pass — they depend only on
  // (t, label), so a sampler can compute every step's at once: one compute-bound GEMM over M = K·Bm rows
  // instead of K memory-bound ones over Bm. Writes out [M/group, group·modulation_width()]: row g holds
  // samples [g·group, (g+1)·group) exactly as DitWorkspace::mod of a `group`-row workspace holds them.
  void conditioning(Ops& ops, const Tensor& t, const Tensor& labels, DitWorkspace& cws, int64_t group,
                    Tensor& out) const;
  // out [Bm, Hl, Wl, 2C or C] (NHWC) = DiT(x_in [Bm, Hl, Wl, C], t f32 [Bm], labels i32 [Bm]).
  // Everything goes through `ops` on the workspace's memory: capturable into a CUDA graph.
  void forward(Ops& ops, const Tensor& x_in, const Tensor& t, const Tensor& labels, DitWorkspace& ws,
               Tensor& out) const;

 private:
  Tensor mod_chunk(const DitWorkspace& ws, int64_t layer, int64_t chunk) const;
  // SiLU(t_emb + y_emb) of ws.rows samples into ws.c_silu.
  void conditioning_input(Ops& ops, const Tensor& t, const Tensor& labels, DitWorkspace& ws) const;

  DitConfig cfg_;
  DType dtype_ = DType::F32;
  Tensor patch_w_;   // [H, p·p·C], features ordered (p_row, p_col, c) like patchify
  Tensor pos_bias_;  // [N, H] = pos_embed + patch bias
  Linear t_mlp0_, t_mlp2_;
  Tensor y_table_;   // [classes + 1, H]
  std::vector<DitBlock> blocks_;
  Linear adaln_all_;    // fused adaLN of all blocks + final layer (dense), or undefined
  Linear final_adaln_;  // when not fused
  Linear final_linear_;
};

}  // namespace blr
