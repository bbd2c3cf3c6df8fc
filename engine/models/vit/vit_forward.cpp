#include "engine/models/vit/vit_forward.h"

#include <algorithm>
#include <cmath>

#include "engine/backend/ops.h"
#include "engine/core/error.h"

namespace blr {

namespace {

constexpr size_t kAlign = 256;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// [rows, C] view of a contiguous [..., C] buffer: the 2-D form the Linear family takes.
Tensor rows(const Tensor& t) { return t.reshape({-1, t.dim(-1)}); }

}  // namespace

VitBuffers plan_vit_buffers(const VitConfig& c, DType dtype, int64_t batch, int topk, Arena& arena) {
  if (batch < 1) throw InputError(cat("batch size ", batch, ": must be at least 1"));
  if (topk < 1 || topk > c.num_classes)
    throw InputError(cat("top-k ", topk, ": must be between 1 and the model's ", c.num_classes, " classes"));
  const int64_t B = batch, S = c.image_size, T = c.tokens(), N = c.num_patches(), D = c.width,
                H = c.mlp_hidden, K = c.patch_features();
  const size_t es = dtype_size(dtype);
  auto elems = [](std::initializer_list<int64_t> xs) { return static_cast<size_t>(*std::max_element(xs.begin(), xs.end())); };
  // Region sizes in elements: what lives in each over the pass (see the header).
  const size_t r_x = static_cast<size_t>(B * T * D);
  const size_t r_h = elems({B * S * S * c.in_chans, B * N * D, B * T * D});
  const size_t r_d = elems({B * N * K, B * T * D});
  // The class-token path keeps a, h and m side by side in the qkv/MLP region, each 256-byte aligned like
  // every buffer here (vectorised kernels and cuBLASLt want at least 16 bytes).
  const size_t cls_row_bytes = align_up(static_cast<size_t>(B * D) * es);
  const size_t r_w = std::max(elems({B * N * D, B * T * std::max(3 * D, H)}),
                              (2 * cls_row_bytes + static_cast<size_t>(B * H) * es + es - 1) / es);
  size_t off = 0;
  const size_t o_x = off;
  off += align_up(r_x * es);
  const size_t o_h = off;
  off += align_up(r_h * es);
  const size_t o_d = off;
  off += align_up(r_d * es);
  const size_t o_w = off;
  off += align_up(r_w * es);
  const size_t o_logits = off;
  off += align_up(static_cast<size_t>(B * c.num_classes) * es);
  const size_t o_probs = off;
  off += align_up(static_cast<size_t>(B * topk) * 4);
  const size_t o_idx = off;
  off += align_up(static_cast<size_t>(B * topk) * 4);

  VitBuffers b;
  b.batch = B;
  b.topk = topk;
  b.activation_bytes = off;
  b.slab = arena.allocate(off, MemCategory::Activations, cat("vit activations (batch ", B, ")"));
  char* base = static_cast<char*>(b.slab.get());
  const Device dev = arena.device();
  auto view = [&](size_t offset, const Shape& shape, DType dt) {
    return Tensor::from_blob(base + offset, shape, dt, dev, b.slab);
  };
  b.x = view(o_x, {B, T, D}, dtype);
  b.image = view(o_h, {B, S, S, c.in_chans}, dtype);
  b.emb_pos = view(o_h, {B, N, D}, dtype);
  b.h = view(o_h, {B, T, D}, dtype);
  b.patches = view(o_d, {B, N, K}, dtype);
  b.delta = view(o_d, {B, T, D}, dtype);
  b.emb = view(o_w, {B, N, D}, dtype);
  b.qkv = view(o_w, {B, T, 3 * D}, dtype);
  b.mlp = view(o_w, {B, T, H}, dtype);
  // Class-token path. With one image its rows of x and of the attention output are already contiguous
  // [1, 1, D] views; with several they are gathered: a into the (then free) qkv region, x into the
  // (then free) attention-output region.
  b.cls_gather = B > 1;
  if (b.cls_gather) {
    b.cls_a = view(o_w, {B, 1, D}, dtype);
    b.cls_x = view(o_h, {B, 1, D}, dtype);
  } else {
    b.cls_a = b.h.slice(1, 0, 1);
    b.cls_x = b.x.slice(1, 0, 1);
  }
  b.cls_h = view(o_w + cls_row_bytes, {B, 1, D}, dtype);
  b.cls_m = view(o_w + 2 * cls_row_bytes, {B, 1, H}, dtype);
  b.cls_d = view(o_d, {B, 1, D}, dtype);
  b.logits = view(o_logits, {B, c.num_classes}, dtype);
  b.probs = view(o_probs, {B, topk}, DType::F32);
  b.indices = view(o_idx, {B, topk}, DType::I32);
  return b;
}

void vit_forward(Ops& ops, const VitModel& m, VitBuffers& b) {
  const VitConfig& c = m.config;
  const int64_t B = b.batch, T = c.tokens(), D = c.width;
  BLR_CHECK(b.image.dim(1) == c.image_size && b.x.dim(2) == D && b.mlp.dim(2) == c.mlp_hidden,
            "vit_forward: buffers planned for another config");

  // Embeddings: tokens = patches·Wᵀ + (pos + bias); the class-token row is a constant.
  ops.patchify(b.image, static_cast<int>(c.patch), b.patches);
  Tensor emb_rows = rows(b.emb);
  m.patch_embed.forward(ops, rows(b.patches), emb_rows);
  Tensor x_patches = b.x.slice(1, 1, T);  // [B, N, D]; contiguous only for one image
  if (x_patches.is_contiguous()) {
    ops.add(b.emb, m.patch_pos, x_patches);
  } else {
    ops.add(b.emb, m.patch_pos, b.emb_pos);
    ops.copy(b.emb_pos, x_patches);
  }
  // cls_pos [1, 1, D] broadcast over the batch by a zero batch stride.
  const Tensor cls = Tensor::from_blob(m.cls_pos.data(), {B, 1, D}, m.cls_pos.dtype(), m.cls_pos.device(),
                                       m.cls_pos.holder(), {0, D, 1});
  Tensor x_cls = b.x.slice(1, 0, 1);
  ops.copy(cls, x_cls);

  const int heads = static_cast<int>(c.heads);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim()));
  NormParams norm;
  norm.eps = c.norm_eps;
  Tensor h_rows = rows(b.h), d_rows = rows(b.delta), qkv_rows = rows(b.qkv), mlp_rows = rows(b.mlp);
  const Tensor* pending = nullptr;  // fc2 output of the previous block, added by the next fused norm
  for (size_t i = 0; i < m.blocks.size(); ++i) {
    const VitBlock& blk = m.blocks[i];
    norm.weight = &blk.norm1_w;
    norm.bias = &blk.norm1_b;
    ops.add_layer_norm(b.x, pending, nullptr, norm, b.h);
    blk.qkv.forward(ops, h_rows, qkv_rows);
    ops.attention(b.qkv, heads, scale, b.h);
    norm.weight = &blk.norm2_w;
    norm.bias = &blk.norm2_b;
    if (i + 1 < m.blocks.size()) {
      blk.proj.forward(ops, h_rows, d_rows);
      ops.add_layer_norm(b.x, &b.delta, nullptr, norm, b.h);
      blk.fc1.forward(ops, h_rows, mlp_rows, Act::GeluErf);
      blk.fc2.forward(ops, mlp_rows, d_rows);
      pending = &b.delta;
      continue;
    }
    // Last block: only the class-token rows matter from here on.
    if (b.cls_gather) {
      ops.copy(b.h.slice(1, 0, 1), b.cls_a);
      ops.copy(b.x.slice(1, 0, 1), b.cls_x);
    }
    Tensor cd = rows(b.cls_d), ch = rows(b.cls_h), cm = rows(b.cls_m);
    blk.proj.forward(ops, rows(b.cls_a), cd);
    ops.add_layer_norm(b.cls_x, &b.cls_d, nullptr, norm, b.cls_h);
    blk.fc1.forward(ops, ch, cm, Act::GeluErf);
    blk.fc2.forward(ops, cm, cd);
    norm.weight = &m.norm_w;
    norm.bias = &m.norm_b;
    ops.add_layer_norm(b.cls_x, &b.cls_d, nullptr, norm, b.cls_h);
    m.head.forward(ops, ch, b.logits);
  }
  ops.softmax_topk(b.logits, b.probs, b.indices);
}

}  // namespace blr
