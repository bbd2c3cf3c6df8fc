#include "engine/models/dit/dit_model.h"

#include <cmath>
#include <map>

#include "engine/core/error.h"
#include "engine/io/checkpoint.h"
#include "engine/models/dit/dit_keymap.h"
#include "engine/models/dit/pos_embed.h"

namespace blr {

std::vector<LayerRule> dit_mode_rules(const std::string& mode) {
  std::vector<std::string> texts;
  if (mode == "dense") {
  } else if (mode == "blast") {
    texts = {"blocks.*.attn.qkv=blast:b=9,r=384", "blocks.*.mlp.fc1=blast:b=9,r=256",
             "blocks.*.adaLN_modulation.1=blast:b=9,r=256"};
  } else if (mode == "monarch") {
    texts = {"blocks.*.attn.qkv=monarch:b=4,r=384", "blocks.*.mlp.fc1=monarch:b=4,r=256",
             "blocks.*.adaLN_modulation.1=monarch:b=4,r=256"};
  } else if (mode == "lowrank") {
    texts = {"blocks.*.attn.qkv=lowrank:r=384", "blocks.*.mlp.fc1=lowrank:r=256",
             "blocks.*.adaLN_modulation.1=lowrank:r=256"};
  } else {
    throw InputError(cat("unknown mode '", mode, "' (expected dense, blast, monarch or lowrank)"));
  }
  std::vector<LayerRule> rules;
  for (const auto& t : texts) rules.push_back(parse_layer_rule(t));
  return rules;
}

size_t DitWorkspace::bytes() const {
  size_t n = 0;
  for (const Tensor* t : {&tokens, &x, &h, &delta, &wide, &freq, &t_hidden, &t_emb, &y_emb, &c_silu, &mod, &final_out})
    if (t->defined()) n += t->nbytes();
  return n;
}

namespace {

Tensor upload(const Tensor& host, DType dtype, Arena& arena, const std::string& what) {
  const Tensor converted = host.dtype() == dtype ? host : host.to_dtype(dtype);
  return converted.to_device(arena, MemCategory::Weights, what);
}

Tensor rows2d(const Tensor& t) { return t.reshape({-1, t.dim(-1)}); }

// [H, C, p, p] (PyTorch conv) -> [H, p·p·C] ordered (p_row, p_col, c) like Ops::patchify.
Tensor permute_patch_weight(const Tensor& w) {
  const int64_t H = w.dim(0), C = w.dim(1), p = w.dim(2);
  Tensor out = Tensor::zeros({H, p * p * C}, DType::F32);
  const Tensor src = w.is_contiguous() ? w : w.clone();
  const float* s = src.data_as<const float>();
  float* d = out.data_as<float>();
  for (int64_t o = 0; o < H; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < p; ++i)
        for (int64_t j = 0; j < p; ++j) d[o * p * p * C + (i * p + j) * C + c] = s[((o * C + c) * p + i) * p + j];
  return out;
}

}  // namespace

DitModel DitModel::load(const Checkpoint& file, const DitLoadOptions& options) {
  BLR_CHECK(options.arena, "DitModel::load needs an arena for the weights");
  Arena& arena = *options.arena;
  const Checkpoint ck = dit_original_view(file);
  DitModel m;
  m.cfg_ = infer_dit_config(ck);
  m.dtype_ = options.dtype;
  const DitConfig& c = m.cfg_;
  const int64_t H = c.hidden;

  LinearLoadOptions lo;
  lo.dtype = options.dtype;
  lo.arena = &arena;
  lo.rules = options.rules.empty() ? nullptr : &options.rules;
  lo.use_gpu_compression = options.use_gpu_compression;
  auto load = [&](const std::string& name, int64_t in, int64_t out) { return load_linear(ck, name, in, out, lo); };

  // Patch embedding: a p×p stride-p conv is patchify + a linear.
  const Tensor pw = ck.get_checked("x_embedder.proj.weight", {H, c.in_channels, c.patch, c.patch}, DType::F32);
  m.patch_w_ = upload(permute_patch_weight(pw), m.dtype_, arena, "dit x_embedder");
  Tensor pos;
  if (ck.has("pos_embed") && shape_numel(ck.info("pos_embed").shape) == c.tokens() * H) {
    pos = ck.get_as("pos_embed", DType::F32).reshape({c.tokens(), H});
  } else {
    pos = sincos_pos_embed_2d(H, c.grid());  // absent (diffusers) or for another latent size
  }
  const Tensor pb = ck.has("x_embedder.proj.bias") ? ck.get_checked("x_embedder.proj.bias", {H}, DType::F32)
                                                   : Tensor::zeros({H}, DType::F32);
  Tensor pos_bias = Tensor::zeros({c.tokens(), H}, DType::F32);
  {
    const Tensor posc = pos.is_contiguous() ? pos : pos.clone();
    const float* ps = posc.data_as<const float>();
    const float* bs = pb.data_as<const float>();
    float* d = pos_bias.data_as<float>();
    for (int64_t n = 0; n < c.tokens(); ++n)
      for (int64_t k = 0; k < H; ++k) d[n * H + k] = ps[n * H + k] + bs[k];
  }
  m.pos_bias_ = upload(pos_bias, m.dtype_, arena, "dit pos_embed + patch bias");

  m.t_mlp0_ = load("t_embedder.mlp.0", c.freq_dim, H);
  m.t_mlp2_ = load("t_embedder.mlp.2", H, H);
  m.y_table_ = upload(ck.get_checked(dit_label_table_name(ck), {c.num_classes + 1, H}, m.dtype_), m.dtype_, arena,
                      "dit y_embedder");

  m.blocks_.resize(c.depth);
  for (int64_t l = 0; l < c.depth; ++l) {
    const std::string b = cat("blocks.", l, ".");
    m.blocks_[l].qkv = load(b + "attn.qkv", H, 3 * H);
    m.blocks_[l].proj = load(b + "attn.proj", H, H);
    m.blocks_[l].fc1 = load(b + "mlp.fc1", H, c.mlp_hidden);
    m.blocks_[l].fc2 = load(b + "mlp.fc2", c.mlp_hidden, H);
  }

  // adaLN: one GEMM for all blocks + the final layer when every one of them is a dense layer.
  std::vector<std::pair<std::string, int64_t>> adaln;
  for (int64_t l = 0; l < c.depth; ++l) adaln.emplace_back(cat("blocks.", l, ".adaLN_modulation.1"), c.adaln_width());
  adaln.emplace_back("final_layer.adaLN_modulation.1", 2 * H);
  bool all_dense = options.fuse_adaln;
  for (const auto& [name, out] : adaln)
    all_dense = all_dense && ck.has(name + ".weight") && !match_rules(options.rules, name).has_value();
  if (all_dense) {
    const int64_t R = c.depth * c.adaln_width() + 2 * H;
    Linear& f = m.adaln_all_;
    f.name = "adaLN_modulation (all blocks + final, fused)";
    f.kind = LinearKind::Dense;
    f.in = H;
    f.out = R;
    f.weight = Tensor::empty({R, H}, m.dtype_, arena, MemCategory::Weights, "dit adaLN (fused)");
    f.bias = Tensor::empty({R}, m.dtype_, arena, MemCategory::Weights, "dit adaLN bias (fused)");
    LinearLoadOptions host;
    host.dtype = m.dtype_;
    int64_t off = 0;
    for (const auto& [name, out] : adaln) {
      const Linear l = load_linear(ck, name, H, out, host);  // host copy, converted, then one upload per slice
      f.weight.slice(0, off, off + out).copy_from(l.weight);
      const Tensor bias = l.bias.defined() ? l.bias : Tensor::zeros({out}, DType::F32).to_dtype(m.dtype_);
      f.bias.slice(0, off, off + out).copy_from(bias);
      off += out;
    }
  } else {
    for (int64_t l = 0; l < c.depth; ++l) m.blocks_[l].adaln = load(adaln[l].first, H, c.adaln_width());
    m.final_adaln_ = load("final_layer.adaLN_modulation.1", H, 2 * H);
  }
  m.final_linear_ = load("final_layer.linear", H, c.out_features());
  return m;
}

std::vector<const Linear*> DitModel::linears() const {
  std::vector<const Linear*> v = {&t_mlp0_, &t_mlp2_};
  for (const auto& b : blocks_) {
    v.push_back(&b.qkv);
    v.push_back(&b.proj);
    v.push_back(&b.fc1);
    v.push_back(&b.fc2);
    if (!adaln_fused()) v.push_back(&b.adaln);
  }
  v.push_back(adaln_fused() ? &adaln_all_ : &final_adaln_);
  v.push_back(&final_linear_);
  return v;
}

int64_t DitModel::parameter_count() const {
  int64_t n = patch_w_.numel() + pos_bias_.numel() + y_table_.numel();
  for (const Linear* l : linears()) n += l->parameter_count();
  return n;
}

size_t DitModel::weight_bytes() const {
  size_t n = patch_w_.nbytes() + pos_bias_.nbytes() + y_table_.nbytes();
  for (const Linear* l : linears()) n += l->parameter_bytes();
  return n;
}

std::string DitModel::describe_layers() const {
  if (blocks_.empty()) return "empty";
  std::map<std::string, int> counts;
  for (const auto& b : blocks_) {
    counts["qkv " + b.qkv.spec().describe()]++;
    counts["proj " + b.proj.spec().describe()]++;
    counts["fc1 " + b.fc1.spec().describe()]++;
    counts["fc2 " + b.fc2.spec().describe()]++;
    if (!adaln_fused()) counts["adaLN " + b.adaln.spec().describe()]++;
  }
  std::string s;
  for (const auto& [k, n] : counts) s += cat(s.empty() ? "" : ", ", k, " x", n);
  s += adaln_fused() ? ", adaLN fused dense (one GEMM)" : ", adaLN per layer";
  return s;
}

DitWorkspace DitModel::plan(int64_t rows, Arena& arena) const {
  BLR_CHECK(rows >= 1, "DiT plan: rows must be positive");
  const DitConfig& c = cfg_;
  const int64_t N = c.tokens(), H = c.hidden;
  auto mk = [&](const Shape& s, const char* what) {
    return Tensor::empty(s, dtype_, arena, MemCategory::Activations, cat("dit ", what, " (", rows, " rows)"));
  };
  DitWorkspace ws;
  ws.rows = rows;
  ws.tokens = mk({rows, N, c.patch_features()}, "patch tokens");
  ws.x = mk({rows, N, H}, "residual");
  ws.h = mk({rows, N, H}, "normed");
  ws.delta = mk({rows, N, H}, "delta");
  ws.wide = mk({rows * N * std::max(3 * H, c.mlp_hidden)}, "qkv/mlp hidden");
  ws.freq = mk({rows, c.freq_dim}, "timestep features");
  ws.t_hidden = mk({rows, H}, "timestep hidden");
  ws.t_emb = mk({rows, H}, "timestep embedding");
  ws.y_emb = mk({rows, H}, "label embedding");
  ws.c_silu = mk({rows, H}, "SiLU(c)");
  ws.mod = mk({rows * (c.depth * c.adaln_width() + 2 * H)}, "adaLN modulation");
  ws.final_out = mk({rows, N, c.out_features()}, "final tokens");
  return ws;
}

void DitModel::conditioning_input(Ops& ops, const Tensor& t, const Tensor& labels, DitWorkspace& ws) const {
  ops.timestep_embedding(t, 10000.0f, ws.freq);
  t_mlp0_.forward(ops, ws.freq, ws.t_hidden, Act::Silu);
  t_mlp2_.forward(ops, ws.t_hidden, ws.t_emb);
  ops.embedding(y_table_, labels, ws.y_emb);
  ops.add(ws.t_emb, ws.y_emb, ws.t_hidden);
  ops.activation(ws.t_hidden, Act::Silu, ws.c_silu);
}

DitWorkspace DitModel::plan_conditioning(int64_t rows, Arena& arena) const {
  BLR_CHECK(rows >= 1, "DiT conditioning plan: rows must be positive");
  auto mk = [&](const Shape& s, const char* what) {
    return Tensor::empty(s, dtype_, arena, MemCategory::Activations, cat("dit conditioning ", what, " (", rows, " rows)"));
  };
  DitWorkspace ws;
  ws.rows = rows;
  ws.freq = mk({rows, cfg_.freq_dim}, "timestep features");
  ws.t_hidden = mk({rows, cfg_.hidden}, "timestep hidden");
  ws.t_emb = mk({rows, cfg_.hidden}, "timestep embedding");
  ws.y_emb = mk({rows, cfg_.hidden}, "label embedding");
  ws.c_silu = mk({rows, cfg_.hidden}, "SiLU(c)");
  if (!adaln_fused()) ws.cond_tmp = mk({rows, cfg_.adaln_width()}, "adaLN layer output");
  return ws;
}

void DitModel::conditioning(Ops& ops, const Tensor& t, const Tensor& labels, DitWorkspace& cws, int64_t group,
                            Tensor& out) const {
  const int64_t M = cws.rows, R = modulation_width(), H = cfg_.hidden;
  BLR_CHECK(group >= 1 && M % group == 0, "DiT conditioning: ", M, " rows are not a multiple of the group ", group);
  const int64_t G = M / group;
  check_shape(out, {G, group * R}, "DiT conditioning output");
  BLR_CHECK(out.is_contiguous(), "DiT conditioning output must be contiguous");
  check_shape(t, {M}, "DiT conditioning timesteps");
  check_shape(labels, {M}, "DiT conditioning labels");
  conditioning_input(ops, t, labels, cws);
  if (adaln_fused()) {
    Tensor rows = out.reshape({M, R});  // row g·group + i is sample i of group g: the [group, R] layout
    adaln_all_.forward(ops, cws.c_silu, rows);
    return;
  }
  // Per-layer adaLN: layer l of a group lives at offset l·group·6H as [group, width] (see mod_chunk).
  const size_t elt = dtype_size(out.dtype());
  for (int64_t l = 0; l <= cfg_.depth; ++l) {
    const int64_t width = l < cfg_.depth ? cfg_.adaln_width() : 2 * H;
    Tensor y = cws.cond_tmp.reshape({-1}).slice(0, 0, M * width).reshape({M, width});
    (l < cfg_.depth ? blocks_[l].adaln : final_adaln_).forward(ops, cws.c_silu, y);
    const Tensor src = y.reshape({G, group, width});
    Tensor dst = Tensor::from_blob(static_cast<char*>(out.data()) + static_cast<size_t>(l * group * cfg_.adaln_width()) * elt,
                                   {G, group, width}, out.dtype(), out.device(), out.holder(), {group * R, width, 1});
    ops.copy(src, dst);
  }
}

Tensor DitModel::mod_chunk(const DitWorkspace& ws, int64_t layer, int64_t chunk) const {
  const int64_t Bm = ws.rows, H = cfg_.hidden, W6 = cfg_.adaln_width();
  if (adaln_fused()) {
    const int64_t R = cfg_.depth * W6 + 2 * H;
    const int64_t base = layer * W6 + chunk * H;
    return ws.mod.reshape({Bm, R}).slice(1, base, base + H);
  }
  const int64_t width = layer < cfg_.depth ? W6 : 2 * H;
  const int64_t off = layer * Bm * W6;
  return ws.mod.slice(0, off, off + Bm * width).reshape({Bm, width}).slice(1, chunk * H, (chunk + 1) * H);
}

void DitModel::forward(Ops& ops, const Tensor& x_in, const Tensor& t, const Tensor& labels, DitWorkspace& ws,
                       Tensor& out) const {
  const DitConfig& c = cfg_;
  const int64_t Bm = ws.rows, N = c.tokens(), H = c.hidden, S = c.input_size;
  check_shape(x_in, {Bm, S, S, c.in_channels}, "DiT input latent");
  check_shape(t, {Bm}, "DiT timesteps");
  check_shape(labels, {Bm}, "DiT labels");
  check_shape(out, {Bm, S, S, c.out_channels()}, "DiT output");
  check_dtype(t, DType::F32, "DiT timesteps");
  check_dtype(labels, DType::I32, "DiT labels");

  // Patch embedding: tokens · Wᵀ, then + (pos_embed + bias) broadcast over the batch.
  ops.patchify(x_in, static_cast<int>(c.patch), ws.tokens);
  Tensor delta2 = rows2d(ws.delta);
  ops.linear(rows2d(ws.tokens), patch_w_, nullptr, Act::None, delta2);
  ops.add(ws.delta, pos_bias_, ws.x);

  if (!ws.mod_external) {
    // Conditioning: SiLU(t_emb + y_emb), computed once and shared by every adaLN layer.
    conditioning_input(ops, t, labels, ws);
    if (adaln_fused()) {
      Tensor mod2 = ws.mod.reshape({Bm, adaln_all_.out});
      adaln_all_.forward(ops, ws.c_silu, mod2);
    } else {
      for (int64_t l = 0; l <= c.depth; ++l) {
        const int64_t width = l < c.depth ? c.adaln_width() : 2 * H;
        const int64_t off = l * Bm * c.adaln_width();
        Tensor seg = ws.mod.slice(0, off, off + Bm * width).reshape({Bm, width});
        (l < c.depth ? blocks_[l].adaln : final_adaln_).forward(ops, ws.c_silu, seg);
      }
    }
  }

  Tensor qkv = ws.wide.slice(0, 0, Bm * N * 3 * H).reshape({Bm, N, 3 * H});
  Tensor hidden = ws.wide.slice(0, 0, Bm * N * c.mlp_hidden).reshape({Bm * N, c.mlp_hidden});
  Tensor h2 = rows2d(ws.h), d2 = rows2d(ws.delta), qkv2 = rows2d(qkv);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim()));
  Tensor prev_gate;
  for (int64_t l = 0; l < c.depth; ++l) {
    const DitBlock& b = blocks_[l];
    const Tensor shift_msa = mod_chunk(ws, l, 0), scale_msa = mod_chunk(ws, l, 1), gate_msa = mod_chunk(ws, l, 2);
    const Tensor shift_mlp = mod_chunk(ws, l, 3), scale_mlp = mod_chunk(ws, l, 4), gate_mlp = mod_chunk(ws, l, 5);
    NormParams n1;
    n1.eps = c.eps;
    n1.shift = &shift_msa;
    n1.scale = &scale_msa;
    if (l == 0) ops.add_layer_norm(ws.x, nullptr, nullptr, n1, ws.h);
    else ops.add_layer_norm(ws.x, &ws.delta, &prev_gate, n1, ws.h);  // previous block's gated MLP residual
    b.qkv.forward(ops, h2, qkv2);
    ops.attention(qkv, static_cast<int>(c.heads), scale, ws.h);  // h is free again: attention writes it
    b.proj.forward(ops, h2, d2);
    NormParams n2;
    n2.eps = c.eps;
    n2.shift = &shift_mlp;
    n2.scale = &scale_mlp;
    ops.add_layer_norm(ws.x, &ws.delta, &gate_msa, n2, ws.h);  // x += gate_msa ⊙ attn; h = modulated LN(x)
    b.fc1.forward(ops, h2, hidden, Act::GeluTanh);
    b.fc2.forward(ops, hidden, d2);
    prev_gate = gate_mlp;
  }
  const Tensor shift_f = mod_chunk(ws, c.depth, 0), scale_f = mod_chunk(ws, c.depth, 1);
  NormParams nf;
  nf.eps = c.eps;
  nf.shift = &shift_f;
  nf.scale = &scale_f;
  ops.add_layer_norm(ws.x, &ws.delta, &prev_gate, nf, ws.h);
  Tensor fo2 = rows2d(ws.final_out);
  final_linear_.forward(ops, h2, fo2);
  ops.unpatchify(ws.final_out, static_cast<int>(c.patch), out);
}

}  // namespace blr
