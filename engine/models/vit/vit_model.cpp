#include "engine/models/vit/vit_model.h"

#include <set>

#include "engine/core/error.h"
#include "engine/io/checkpoint.h"

namespace blr {

namespace {

// Host f32 tensor -> the model's dtype and device (accounted as weights when an arena is given).
Tensor place(const Tensor& host_f32, const VitLoadOptions& o, const std::string& what) {
  Tensor t = host_f32.to_dtype(o.dtype);  // contiguous host copy in the storage dtype
  if (!o.arena) return t;
  return t.to_device(*o.arena, MemCategory::Weights, what);
}

}  // namespace

VitModel load_vit(const Checkpoint& ckpt, const VitLoadOptions& o) {
  VitModel m;
  m.config = infer_vit_config(ckpt, o.overrides);
  m.dtype = o.dtype;
  m.device = o.arena ? o.arena->device() : Device::CPU;
  m.source = ckpt.path();
  const VitConfig& c = m.config;
  const int64_t D = c.width, p = c.patch, C = c.in_chans, N = c.num_patches();

  // Patch embedding: conv weight [D, C, p, p] -> [D, p, p, C] so that a row dotted with a patchify token
  // (features ordered pi, pj, c) is the convolution at that patch.
  {
    const Tensor w = ckpt.get_checked("patch_embed.proj.weight", {D, C, p, p}, DType::F32);
    Tensor wp = Tensor::zeros({D, p * p * C}, DType::F32);
    const float* src = w.data_as<const float>();
    float* dst = wp.data_as<float>();
    for (int64_t d = 0; d < D; ++d)
      for (int64_t ch = 0; ch < C; ++ch)
        for (int64_t i = 0; i < p; ++i)
          for (int64_t j = 0; j < p; ++j)
            dst[((d * p + i) * p + j) * C + ch] = src[((d * C + ch) * p + i) * p + j];
    Linear pe;
    pe.name = "patch_embed.proj";
    pe.kind = LinearKind::Dense;
    pe.in = p * p * C;
    pe.out = D;
    pe.weight = wp;
    m.patch_embed = to_backend(pe, o.dtype, o.arena);
  }
  // Position embedding with the class token and the patch bias folded in.
  {
    const Tensor cls = ckpt.get_checked("cls_token", {1, 1, D}, DType::F32);
    const Tensor pos = ckpt.get_checked("pos_embed", {1, N + 1, D}, DType::F32);
    Tensor bias = ckpt.has("patch_embed.proj.bias") ? ckpt.get_checked("patch_embed.proj.bias", {D}, DType::F32)
                                                    : Tensor::zeros({D}, DType::F32);
    Tensor cls_pos = Tensor::zeros({1, 1, D}, DType::F32);
    Tensor patch_pos = Tensor::zeros({N, D}, DType::F32);
    const float* cp = cls.data_as<const float>();
    const float* pp = pos.data_as<const float>();
    const float* bp = bias.data_as<const float>();
    for (int64_t d = 0; d < D; ++d) cls_pos.data_as<float>()[d] = cp[d] + pp[d];
    for (int64_t t = 0; t < N; ++t)
      for (int64_t d = 0; d < D; ++d) patch_pos.data_as<float>()[t * D + d] = pp[(t + 1) * D + d] + bp[d];
    m.cls_pos = place(cls_pos, o, "vit cls_token+pos_embed[0]");
    m.patch_pos = place(patch_pos, o, "vit pos_embed[1:]+patch bias");
  }

  LinearLoadOptions lo;
  lo.dtype = o.dtype;
  lo.arena = o.arena;
  lo.rules = o.rules.empty() ? nullptr : &o.rules;
  lo.use_gpu_compression = o.use_gpu_compression;
  auto vec = [&](const std::string& name) { return place(ckpt.get_checked(name, {D}, DType::F32), o, name); };

  m.blocks.resize(static_cast<size_t>(c.depth));
  for (int64_t i = 0; i < c.depth; ++i) {
    VitBlock& b = m.blocks[static_cast<size_t>(i)];
    const std::string pre = cat("blocks.", i, ".");
    b.norm1_w = vec(pre + "norm1.weight");
    b.norm1_b = vec(pre + "norm1.bias");
    b.qkv = load_linear(ckpt, pre + "attn.qkv", D, 3 * D, lo);
    b.proj = load_linear(ckpt, pre + "attn.proj", D, D, lo);
    b.norm2_w = vec(pre + "norm2.weight");
    b.norm2_b = vec(pre + "norm2.bias");
    b.fc1 = load_linear(ckpt, pre + "mlp.fc1", D, c.mlp_hidden, lo);
    b.fc2 = load_linear(ckpt, pre + "mlp.fc2", c.mlp_hidden, D, lo);
  }
  m.norm_w = vec("norm.weight");
  m.norm_b = vec("norm.bias");
  m.head = load_linear(ckpt, "head", D, c.num_classes, lo);
  return m;
}

std::vector<const Linear*> VitModel::linears() const {
  std::vector<const Linear*> out{&patch_embed};
  for (const auto& b : blocks) {
    out.push_back(&b.qkv);
    out.push_back(&b.proj);
    out.push_back(&b.fc1);
    out.push_back(&b.fc2);
  }
  out.push_back(&head);
  return out;
}

int64_t VitModel::parameter_count() const {
  int64_t n = cls_pos.numel() + patch_pos.numel() + norm_w.numel() + norm_b.numel();
  for (const auto& b : blocks) n += b.norm1_w.numel() + b.norm1_b.numel() + b.norm2_w.numel() + b.norm2_b.numel();
  for (const Linear* l : linears()) n += l->parameter_count();
  return n;
}

size_t VitModel::weight_bytes() const { return static_cast<size_t>(parameter_count()) * dtype_size(dtype); }

std::string VitModel::mode_label() const {
  std::set<std::string> specs;
  int compressed = 0, total = 0;
  for (const Linear* l : linears()) {
    ++total;
    if (l->kind == LinearKind::Dense) continue;
    ++compressed;
    specs.insert(l->spec().describe());
  }
  if (compressed == 0) return "dense";
  std::string joined;
  for (const auto& s : specs) joined += (joined.empty() ? "" : "+") + s;
  return cat(joined, " (", compressed, " of ", total, " linears)");
}

std::vector<LayerRule> vit_mode_rules(const std::string& mode) {
  std::string spec;
  if (mode == "dense") return {};
  if (mode == "monarch") spec = "monarch:b=4,r=128";
  else if (mode == "blast") spec = "blast:b=3,r=128";
  else if (mode == "lowrank") spec = "lowrank:r=128";
  else throw InputError(cat("unknown mode '", mode, "' (expected dense, monarch, blast or lowrank)"));
  std::vector<LayerRule> rules;
  for (const char* layer : {"blocks.*.attn.qkv", "blocks.*.mlp.fc1", "blocks.*.mlp.fc2"})
    rules.push_back(parse_layer_rule(cat(layer, "=", spec)));
  return rules;
}

}  // namespace blr
