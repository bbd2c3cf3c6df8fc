// The CPU reference backend: fp32 only, simple loops that are obviously right (OpenMP over rows where it
// is free to add). It is the yardstick every CUDA op is compared against, and the fallback that keeps the
// app working on machines without a GPU. Implementations are split by family: cpu_linear.cpp,
// cpu_blr.cpp, cpu_norm.cpp, cpu_attention.cpp, cpu_conv.cpp, cpu_misc.cpp, cpu_image.cpp, cpu_sampler.cpp.
#pragma once

#include "engine/backend/ops.h"

namespace blr {

class CpuOps final : public Ops {
 public:
  Device device() const override { return Device::CPU; }
  std::string name() const override { return "cpu"; }

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
};

// Scalar activations shared by the CPU ops (and by tests computing expected values).
float apply_act(Act act, float v);

}  // namespace blr
