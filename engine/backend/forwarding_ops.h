// An Ops that passes every call on to another Ops, calling enter()/leave() around it with the op's name
// and its tensor arguments. Decorators build on it: the per-op GPU timer behind `blr bench --breakdown`
// (engine/runtime/op_profiler.h) and fault-injecting backends in tests. A subclass overrides the hooks
// (or single ops); the forwarding itself never allocates or synchronises, so a decorated forward pass
// can still be captured into a CUDA graph.
#pragma once

#include <string>
#include <vector>

#include "engine/backend/ops.h"

namespace blr {

struct OpArg {
  const char* name;  // "x", "w.U", "y"
  const Tensor* t;
  bool written;      // the op writes it (outputs, in/out tensors)
};

class ForwardingOps : public Ops {
 public:
  explicit ForwardingOps(Ops& inner) : inner_(inner) {}
  Ops& inner() const { return inner_; }

  Device device() const override { return inner_.device(); }
  std::string name() const override { return inner_.name(); }
  void synchronize() override { inner_.synchronize(); }

  void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Act act, Tensor& y) override;
  void lowrank_linear(const Tensor& x, const LowRankWeights& w, const Tensor* bias, Act act, Tensor& y) override;
  void monarch_linear(const Tensor& x, const MonarchWeights& w, const Tensor* bias, Act act, Tensor& y) override;
  void blast_linear(const Tensor& x, const BlastWeights& w, const Tensor* bias, Act act, Tensor& y) override;
  void matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_b, float alpha) override;

  void add_layer_norm(Tensor& x, const Tensor* delta, const Tensor* gate, const NormParams& p, Tensor& y) override;
  void modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, Tensor& y) override;
  void gated_add(Tensor& x, const Tensor* gate, const Tensor& delta) override;
  void activation(const Tensor& x, Act act, Tensor& y) override;
  void add(const Tensor& a, const Tensor& b, Tensor& y) override;
  void softmax(const Tensor& x, Tensor& y) override;
  void copy(const Tensor& src, Tensor& dst) override;
  void fill(Tensor& dst, float value) override;

  void attention(const Tensor& qkv, int heads, float scale, Tensor& out) override;

  void conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dParams& p, Tensor& y) override;
  void group_norm(const Tensor& x, int groups, const Tensor& weight, const Tensor& bias, float eps, Act act,
                  Tensor& y) override;
  void upsample_nearest2x(const Tensor& x, Tensor& y) override;

  void embedding(const Tensor& table, const Tensor& ids, Tensor& y) override;
  void timestep_embedding(const Tensor& t, float max_period, Tensor& y) override;
  void patchify(const Tensor& img, int patch, Tensor& tokens) override;
  void unpatchify(const Tensor& tokens, int patch, Tensor& img) override;

  void softmax_topk(const Tensor& logits, Tensor& probs, Tensor& indices) override;
  void preprocess_image(const Tensor& frame, const PreprocessParams& p, Tensor& dst) override;
  void to_rgba8(const Tensor& img, Tensor& rgba) override;
  void sampler_timesteps(const Tensor& tables, const Tensor& step, Tensor& t) override;
  void sampler_step(const SamplerStepArgs& args) override;

 protected:
  // Around every forwarded op: its name and tensor arguments (absent optional ones are left out).
  virtual void enter(const char* op, const std::vector<OpArg>& args) {
    (void)op;
    (void)args;
  }
  virtual void leave(const char* op) { (void)op; }

 private:
  // Calls enter, runs f, calls leave (also when f throws, so hooks stay paired).
  template <typename F>
  void around(const char* op, const std::vector<OpArg>& args, F&& f);

  Ops& inner_;
};

// "bf16[197,768]" for each argument, "x=bf16[1,197,768] w=..." — labels for logs and profiles.
std::string describe_args(const std::vector<OpArg>& args);

}  // namespace blr
