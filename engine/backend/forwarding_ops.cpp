#include "engine/backend/forwarding_ops.h"

namespace blr {

template <typename F>
void ForwardingOps::around(const char* op, const std::vector<OpArg>& args, F&& f) {
  enter(op, args);
  try {
    f();
  } catch (...) {
    leave(op);
    throw;
  }
  leave(op);
}

namespace {

void push(std::vector<OpArg>& v, const char* name, const Tensor* t, bool written) {
  if (t && t->defined()) v.push_back({name, t, written});
}

}  // namespace

std::string describe_args(const std::vector<OpArg>& args) {
  std::string s;
  for (const OpArg& a : args) {
    if (!s.empty()) s += ' ';
    s += cat(a.name, a.written ? "*=" : "=", dtype_name(a.t->dtype()), shape_str(a.t->shape()));
  }
  return s;
}

void ForwardingOps::linear(const Tensor& x, const Tensor& w, const Tensor* bias, Act act, Tensor& y) {
  std::vector<OpArg> a;
  push(a, "x", &x, false), push(a, "w", &w, false), push(a, "bias", bias, false), push(a, "y", &y, true);
  around("linear", a, [&] { inner_.linear(x, w, bias, act, y); });
}

void ForwardingOps::lowrank_linear(const Tensor& x, const LowRankWeights& w, const Tensor* bias, Act act, Tensor& y) {
  std::vector<OpArg> a;
  push(a, "x", &x, false), push(a, "w.A", &w.A, false), push(a, "w.B", &w.B, false), push(a, "bias", bias, false);
  push(a, "y", &y, true);
  around("lowrank_linear", a, [&] { inner_.lowrank_linear(x, w, bias, act, y); });
}

void ForwardingOps::monarch_linear(const Tensor& x, const MonarchWeights& w, const Tensor* bias, Act act, Tensor& y) {
  std::vector<OpArg> a;
  push(a, "x", &x, false), push(a, "w.R", &w.R, false), push(a, "w.L", &w.L, false), push(a, "bias", bias, false);
  push(a, "y", &y, true);
  around("monarch_linear", a, [&] { inner_.monarch_linear(x, w, bias, act, y); });
}

void ForwardingOps::blast_linear(const Tensor& x, const BlastWeights& w, const Tensor* bias, Act act, Tensor& y) {
  std::vector<OpArg> a;
  push(a, "x", &x, false), push(a, "w.U", &w.U, false), push(a, "w.S", &w.S, false), push(a, "w.V", &w.V, false);
  push(a, "bias", bias, false), push(a, "y", &y, true);
  around("blast_linear", a, [&] { inner_.blast_linear(x, w, bias, act, y); });
}

void ForwardingOps::matmul(const Tensor& a_, const Tensor& b, Tensor& c, bool trans_b, float alpha) {
  std::vector<OpArg> a;
  push(a, "a", &a_, false), push(a, "b", &b, false), push(a, "c", &c, true);
  around("matmul", a, [&] { inner_.matmul(a_, b, c, trans_b, alpha); });
}

void ForwardingOps::add_layer_norm(Tensor& x, const Tensor* delta, const Tensor* gate, const NormParams& p, Tensor& y) {
  std::vector<OpArg> a;
  push(a, "x", &x, delta != nullptr), push(a, "delta", delta, false), push(a, "gate", gate, false);
  push(a, "weight", p.weight, false), push(a, "bias", p.bias, false), push(a, "shift", p.shift, false);
  push(a, "scale", p.scale, false), push(a, "y", &y, true);
  around("add_layer_norm", a, [&] { inner_.add_layer_norm(x, delta, gate, p, y); });
}

void ForwardingOps::modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, Tensor& y) {
  std::vector<OpArg> a;
  push(a, "x", &x, false), push(a, "shift", &shift, false), push(a, "scale", &scale, false), push(a, "y", &y, true);
  around("modulate", a, [&] { inner_.modulate(x, shift, scale, y); });
}

void ForwardingOps::gated_add(Tensor& x, const Tensor* gate, const Tensor& delta) {
  std::vector<OpArg> a;
  push(a, "x", &x, true), push(a, "gate", gate, false), push(a, "delta", &delta, false);
  around("gated_add", a, [&] { inner_.gated_add(x, gate, delta); });
}

void ForwardingOps::activation(const Tensor& x, Act act, Tensor& y) {
  std::vector<OpArg> a;
  push(a, "x", &x, false), push(a, "y", &y, true);
  around("activation", a, [&] { inner_.activation(x, act, y); });
}

void ForwardingOps::add(const Tensor& a_, const Tensor& b, Tensor& y) {
  std::vector<OpArg> a;
  push(a, "a", &a_, false), push(a, "b", &b, false), push(a, "y", &y, true);
  around("add", a, [&] { inner_.add(a_, b, y); });
}

void ForwardingOps::softmax(const Tensor& x, Tensor& y) {
  std::vector<OpArg> a;
  push(a, "x", &x, false), push(a, "y", &y, true);
  around("softmax", a, [&] { inner_.softmax(x, y); });
}

void ForwardingOps::copy(const Tensor& src, Tensor& dst) {
  std::vector<OpArg> a;
  push(a, "src", &src, false), push(a, "dst", &dst, true);
  around("copy", a, [&] { inner_.copy(src, dst); });
}

void ForwardingOps::fill(Tensor& dst, float value) {
  std::vector<OpArg> a;
  push(a, "dst", &dst, true);
  around("fill", a, [&] { inner_.fill(dst, value); });
}

void ForwardingOps::attention(const Tensor& qkv, int heads, float scale, Tensor& out) {
  std::vector<OpArg> a;
  push(a, "qkv", &qkv, false), push(a, "out", &out, true);
  around("attention", a, [&] { inner_.attention(qkv, heads, scale, out); });
}

void ForwardingOps::conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dParams& p, Tensor& y) {
  std::vector<OpArg> a;
  push(a, "x", &x, false), push(a, "w", &w, false), push(a, "bias", bias, false), push(a, "y", &y, true);
  around("conv2d", a, [&] { inner_.conv2d(x, w, bias, p, y); });
}

void ForwardingOps::group_norm(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias, float eps, Act act,
                               Tensor& y) {
  std::vector<OpArg> a;
  push(a, "x", &x, false), push(a, "weight", &weight, false), push(a, "bias", &bias, false), push(a, "y", &y, true);
  around("group_norm", a, [&] { inner_.group_norm(x, groups, weight, bias, eps, act, y); });
}

void ForwardingOps::upsample_nearest2x(const Tensor& x, Tensor& y) {
  std::vector<OpArg> a;
  push(a, "x", &x, false), push(a, "y", &y, true);
  around("upsample_nearest2x", a, [&] { inner_.upsample_nearest2x(x, y); });
}

void ForwardingOps::embedding(const Tensor& table, const Tensor& ids, Tensor& y) {
  std::vector<OpArg> a;
  push(a, "table", &table, false), push(a, "ids", &ids, false), push(a, "y", &y, true);
  around("embedding", a, [&] { inner_.embedding(table, ids, y); });
}

void ForwardingOps::timestep_embedding(const Tensor& t, float max_period, Tensor& y) {
  std::vector<OpArg> a;
  push(a, "t", &t, false), push(a, "y", &y, true);
  around("timestep_embedding", a, [&] { inner_.timestep_embedding(t, max_period, y); });
}

void ForwardingOps::patchify(const Tensor& img, int patch, Tensor& tokens) {
  std::vector<OpArg> a;
  push(a, "img", &img, false), push(a, "tokens", &tokens, true);
  around("patchify", a, [&] { inner_.patchify(img, patch, tokens); });
}

void ForwardingOps::unpatchify(const Tensor& tokens, int patch, Tensor& img) {
  std::vector<OpArg> a;
  push(a, "tokens", &tokens, false), push(a, "img", &img, true);
  around("unpatchify", a, [&] { inner_.unpatchify(tokens, patch, img); });
}

void ForwardingOps::softmax_topk(const Tensor& logits, Tensor& probs, Tensor& indices) {
  std::vector<OpArg> a;
  push(a, "logits", &logits, false), push(a, "probs", &probs, true), push(a, "indices", &indices, true);
  around("softmax_topk", a, [&] { inner_.softmax_topk(logits, probs, indices); });
}

void ForwardingOps::preprocess_image(const Tensor& frame, const PreprocessParams& p, Tensor& dst) {
  std::vector<OpArg> a;
  push(a, "frame", &frame, false), push(a, "dst", &dst, true);
  around("preprocess_image", a, [&] { inner_.preprocess_image(frame, p, dst); });
}

void ForwardingOps::to_rgba8(const Tensor& img, Tensor& rgba) {
  std::vector<OpArg> a;
  push(a, "img", &img, false), push(a, "rgba", &rgba, true);
  around("to_rgba8", a, [&] { inner_.to_rgba8(img, rgba); });
}

void ForwardingOps::sampler_timesteps(const Tensor& tables, const Tensor& step, Tensor& t) {
  std::vector<OpArg> a;
  push(a, "tables", &tables, false), push(a, "step", &step, false), push(a, "t", &t, true);
  around("sampler_timesteps", a, [&] { inner_.sampler_timesteps(tables, step, t); });
}

void ForwardingOps::sampler_step(const SamplerStepArgs& s) {
  std::vector<OpArg> a;
  push(a, "model_out", s.model_out, false), push(a, "x", s.x, true), push(a, "model_in", s.model_in, true);
  push(a, "tables", s.tables, false), push(a, "step", s.step, true), push(a, "seeds", s.seeds, false);
  push(a, "noise", s.noise, false), push(a, "pred_x0", s.pred_x0, true);
  around("sampler_step", a, [&] { inner_.sampler_step(s); });
}

}  // namespace blr
