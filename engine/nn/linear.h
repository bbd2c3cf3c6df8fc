// The Linear family: one plain struct for dense, low-rank, Monarch and BLAST layers, with a forward that
// dispatches to the backend's op and helpers to load a layer from a checkpoint (as factors, or dense and
// compressed on the fly by a rule). Math of each variant (W is out×in, b blocks per side, rank r):
//   dense    y = x·Wᵀ
//   lowrank  W = B·A                     A [r, i], B [o, r]
//   monarch  W_kj = L_k[:, j-slice] · R_j[k-slice, :]        R [b, r, i/b], L [b, o/b, r], r % b == 0
//   blast    W_kj = U_k · diag(s_kj) · V_jᵀ                  U [b, o/b, r], S [b, b, r], V [b, r, i/b]
// Checkpoint keys for a layer named N: N.weight (dense); N.lowrank_A, N.lowrank_B; N.monarch_R,
// N.monarch_L; N.blast_U, N.blast_S, N.blast_V; N.bias for all. Metadata "blr.N.method", "blr.N.b",
// "blr.N.r", "blr.N.rel_error" record how a compressed layer was made.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend/ops.h"
#include "engine/core/tensor.h"

namespace blr {

class Checkpoint;

enum class LinearKind : uint8_t { Dense, LowRank, Monarch, Blast };
const char* linear_kind_name(LinearKind k);           // "dense", "lowrank", "monarch", "blast"
LinearKind parse_linear_kind(const std::string& name);  // throws InputError

struct LinearSpec {
  LinearKind kind = LinearKind::Dense;
  int64_t blocks = 1;  // b (Monarch, BLAST)
  int64_t rank = 0;    // r (all but dense)
  int iterations = 300;  // BLAST factorisation steps
  std::string describe() const;  // "blast:b=9,r=384"
};

// "PATTERN=METHOD[:b=B,r=R[,iters=T]]", e.g. "blocks.*.attn.qkv=blast:b=9,r=384". Glob-style pattern
// (* matches any run of characters, ? one character) over layer names (weight name without ".weight").
struct LayerRule {
  std::string pattern;
  LinearSpec spec;
  std::string text;  // as given, for messages
  bool iterations_given = false;  // the rule said iters=T (so a command-line default does not override it)
};
LayerRule parse_layer_rule(const std::string& text);  // throws InputError naming the rule and the problem
bool glob_match(const std::string& pattern, const std::string& name);
// First matching rule wins; nullopt when none matches.
std::optional<LinearSpec> match_rules(const std::vector<LayerRule>& rules, const std::string& layer);
// Throws InputError unless `spec` can factor an out×in matrix (b divides both sides, r ≤ the block's
// rank limit, r % b == 0 for Monarch, ...). `layer` names the layer in the message.
void validate_spec(const LinearSpec& spec, int64_t in, int64_t out, const std::string& layer);

struct Linear {
  std::string name;
  LinearKind kind = LinearKind::Dense;
  int64_t in = 0, out = 0;
  Tensor weight;  // dense [out, in]
  LowRankWeights lowrank;
  MonarchWeights monarch;
  BlastWeights blast;
  Tensor bias;  // [out], or undefined
  double rel_error = 0;  // ‖W − Ŵ‖_F / ‖W‖_F of the compression that produced it; 0 when exact/dense

  int64_t blocks() const;
  int64_t rank() const;
  LinearSpec spec() const;
  // y[rows, out] = act(x[rows, in]·Wᵀ + bias) through the backend.
  void forward(Ops& ops, const Tensor& x, Tensor& y, Act act = Act::None) const;
  int64_t parameter_count() const;  // including bias
  size_t parameter_bytes() const;
  // The tensors to save for this layer under the checkpoint key scheme above.
  std::vector<std::pair<std::string, Tensor>> named_tensors() const;
  // Metadata entries recording method, b, r and rel_error (empty for dense).
  std::vector<std::pair<std::string, std::string>> metadata() const;
};

// Dense host f32 [out, in] matrix equal to the layer's weight (assembled from factors for BLR layers).
Tensor assemble_dense(const Linear& layer);

// Moves or converts every tensor of a layer (e.g. host f32 -> device bf16), accounted as weights.
Linear to_backend(const Linear& layer, DType dtype, Arena* arena);

struct LinearLoadOptions {
  DType dtype = DType::F32;        // storage dtype of the loaded layer
  Arena* arena = nullptr;          // destination (null = host, unaccounted)
  const std::vector<LayerRule>* rules = nullptr;  // compress dense weights at load when a rule matches
  bool use_gpu_compression = true; // use the GPU for compression when a device is present
};

// Loads layer `name` (out×in, with bias if the file has one): from factors when the checkpoint holds
// them, else the dense weight — compressed on the fly if a rule matches. Shape mismatches name the tensor
// and both shapes.
Linear load_linear(const Checkpoint& ckpt, const std::string& name, int64_t in, int64_t out,
                   const LinearLoadOptions& options);

}  // namespace blr
