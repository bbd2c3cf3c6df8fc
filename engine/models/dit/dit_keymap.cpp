#include "engine/models/dit/dit_keymap.h"

#include <cstring>
#include <set>
#include <vector>

#include "engine/core/error.h"

namespace blr {

const char* dit_layout_name(DitLayout l) { return l == DitLayout::Diffusers ? "diffusers" : "original"; }

DitLayout detect_dit_layout(const Checkpoint& ckpt) {
  if (ckpt.has("x_embedder.proj.weight")) return DitLayout::Original;
  if (ckpt.has("pos_embed.proj.weight") && ckpt.has("proj_out_2.weight")) return DitLayout::Diffusers;
  throw InputError(cat(ckpt.path(), ": not a DiT checkpoint (neither 'x_embedder.proj.weight' nor the diffusers "
                                    "'pos_embed.proj.weight' + 'proj_out_2.weight' found)"));
}

std::string dit_label_table_name(const Checkpoint& ck) {
  const char* kFull = "y_embedder.embedding_table.weight";
  if (ck.has(kFull) || !ck.has("y_embedder.embedding_table")) return kFull;
  return "y_embedder.embedding_table";
}

namespace {

const char* const kLayerSuffixes[] = {"weight",    "bias",      "lowrank_A", "lowrank_B", "monarch_R",
                                      "monarch_L", "blast_U",   "blast_S",   "blast_V"};

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ca = a.is_contiguous() ? a : a.clone();
  const Tensor cb = b.is_contiguous() ? b : b.clone();
  return std::memcmp(ca.data(), cb.data(), ca.nbytes()) == 0;
}

// Concatenates host tensors along dim 0 (same trailing shape and dtype).
Tensor concat_rows(const std::vector<Tensor>& parts, const std::string& what) {
  Shape shape = parts.at(0).shape();
  int64_t rows = 0;
  for (const Tensor& p : parts) {
    Shape tail(p.shape().begin() + 1, p.shape().end()), want(shape.begin() + 1, shape.end());
    if (tail != want || p.dtype() != parts[0].dtype())
      throw InputError(cat(what, ": q/k/v parts differ in shape or dtype (", p.describe(), " vs ", parts[0].describe(), ")"));
    rows += p.dim(0);
  }
  shape[0] = rows;
  // A host tensor of the parts' dtype: allocate f32-sized zeros then view the bytes as the dtype.
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(parts[0].dtype());
  std::shared_ptr<void> mem(::operator new(bytes), [](void* p) { ::operator delete(p); });
  Tensor out = Tensor::from_blob(mem.get(), shape, parts[0].dtype(), Device::CPU, mem);
  size_t off = 0;
  for (const Tensor& p : parts) {
    const Tensor c = p.is_contiguous() ? p : p.clone();
    std::memcpy(static_cast<char*>(out.data()) + off, c.data(), c.nbytes());
    off += c.nbytes();
  }
  return out;
}

class DiffusersDitReader final : public CheckpointReader {
 public:
  explicit DiffusersDitReader(const Checkpoint& src) : src_(src), label_(src.path()) {
    int64_t depth = 0;
    while (src.has(cat("transformer_blocks.", depth, ".norm1.linear.weight")) ||
           src.has(cat("transformer_blocks.", depth, ".norm1.linear.blast_U")) ||
           src.has(cat("transformer_blocks.", depth, ".norm1.linear.monarch_R")) ||
           src.has(cat("transformer_blocks.", depth, ".norm1.linear.lowrank_A")))
      ++depth;
    if (depth == 0) throw InputError(cat(label_, ": diffusers DiT without transformer_blocks.0.norm1.linear"));
    layer("x_embedder.proj", "pos_embed.proj");
    layer("final_layer.adaLN_modulation.1", "proj_out_1");
    layer("final_layer.linear", "proj_out_2");
    const std::string emb = "transformer_blocks.0.norm1.emb.";
    layer("t_embedder.mlp.0", emb + "timestep_embedder.linear_1");
    layer("t_embedder.mlp.2", emb + "timestep_embedder.linear_2");
    alias("y_embedder.embedding_table.weight", emb + "class_embedder.embedding_table.weight");
    alias("y_embedder.embedding_table", emb + "class_embedder.embedding_table");
    for (int64_t n = 0; n < depth; ++n) {
      const std::string d = cat("transformer_blocks.", n, "."), o = cat("blocks.", n, ".");
      layer(o + "adaLN_modulation.1", d + "norm1.linear");
      layer(o + "attn.proj", d + "attn1.to_out.0");
      layer(o + "mlp.fc1", d + "ff.net.0.proj");
      layer(o + "mlp.fc2", d + "ff.net.2");
      for (const char* f : {"lowrank_A", "monarch_R", "blast_U"})
        if (src.has(d + "attn1.to_q." + f))
          throw InputError(cat(label_, ": compressed q/k/v in the diffusers layout (", d, "attn1.to_q.", f,
                               ") cannot be fused into one qkv layer; compress the original-layout checkpoint"));
      for (const char* f : {"weight", "bias"}) {
        std::vector<std::string> parts;
        for (const char* qkv : {"to_q", "to_k", "to_v"}) parts.push_back(cat(d, "attn1.", qkv, ".", f));
        if (src.has(parts[0])) concat_[o + "attn.qkv." + f] = parts;
      }
      if (n > 0) check_copy(d + "norm1.emb.", emb);
    }
    for (const auto& [k, v] : src.metadata()) {
      metadata_[k] = v;
      if (k.rfind("blr.", 0) != 0) continue;
      for (const auto& [orig, diff] : layers_) {
        const std::string prefix = "blr." + diff + ".";
        if (k.rfind(prefix, 0) == 0) metadata_["blr." + orig + "." + k.substr(prefix.size())] = v;
      }
    }
  }

  const std::string& path() const override { return label_; }
  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    for (const auto& kv : alias_) out.push_back(kv.first);
    for (const auto& kv : concat_) out.push_back(kv.first);
    return out;
  }
  bool has(const std::string& name) const override { return alias_.count(name) || concat_.count(name); }
  TensorInfo info(const std::string& name) const override {
    if (auto it = alias_.find(name); it != alias_.end()) return src_.info(it->second);
    if (auto it = concat_.find(name); it != concat_.end()) {
      TensorInfo ti = src_.info(it->second[0]);
      for (size_t i = 1; i < it->second.size(); ++i) ti.shape[0] += src_.info(it->second[i]).shape.at(0);
      return ti;
    }
    throw InputError(cat(label_, ": tensor '", name, "' not found (diffusers layout)"));
  }
  Tensor get(const std::string& name) const override {
    if (auto it = alias_.find(name); it != alias_.end()) return src_.get(it->second);
    if (auto it = concat_.find(name); it != concat_.end()) {
      std::vector<Tensor> parts;
      for (const auto& p : it->second) parts.push_back(src_.get(p));
      return concat_rows(parts, cat(label_, ": ", name));
    }
    throw InputError(cat(label_, ": tensor '", name, "' not found (diffusers layout)"));
  }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  std::string format() const override { return src_.format() + " (diffusers names)"; }

 private:
  void alias(const std::string& orig, const std::string& diff) {
    if (src_.has(diff)) alias_[orig] = diff;
  }
  void layer(const std::string& orig, const std::string& diff) {
    layers_.emplace_back(orig, diff);
    for (const char* s : kLayerSuffixes) alias(orig + "." + s, diff + "." + s);
  }
  // Per-block embedder copies must equal block 0's: they are one module in the original model.
  void check_copy(const std::string& block_prefix, const std::string& first_prefix) {
    for (const char* name : {"timestep_embedder.linear_1.weight", "timestep_embedder.linear_1.bias",
                             "timestep_embedder.linear_2.weight", "timestep_embedder.linear_2.bias",
                             "class_embedder.embedding_table.weight", "class_embedder.embedding_table"}) {
      const std::string copy = block_prefix + name, first = first_prefix + name;
      if (!src_.has(copy)) continue;  // a file may keep only block 0's copy
      if (!src_.has(first) || !same_bytes(src_.get(copy), src_.get(first)))
        throw InputError(cat(label_, ": tensor '", copy, "' differs from '", first,
                             "': DiT shares one timestep/label embedder across blocks"));
    }
  }

  Checkpoint src_;
  std::string label_;
  std::map<std::string, std::string> alias_;
  std::map<std::string, std::vector<std::string>> concat_;
  std::vector<std::pair<std::string, std::string>> layers_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace

Checkpoint dit_original_view(const Checkpoint& ckpt) {
  if (detect_dit_layout(ckpt) == DitLayout::Original) return ckpt;
  return Checkpoint(std::make_shared<DiffusersDitReader>(ckpt));
}

}  // namespace blr
