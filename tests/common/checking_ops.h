// CheckingOps: a debugging backend that runs every op on another backend (normally a CudaOps) and checks
// it there and then against the CPU reference, so a model whose output is wrong on the GPU names the
// first op that goes wrong instead of only the final error.
//
// For each op call it
//   1. waits for the inner backend, then copies every tensor argument to the host — the whole memory
//      span a view covers, so strided, broadcast (zero-stride) and aliased views are captured as they are;
//   2. runs the op on the inner backend and waits again;
//   3. runs CpuOps on fp32 contiguous host copies of the same input values (so only the op itself can
//      differ, never the data it was given) and compares each output (and in/out tensor such as
//      add_layer_norm's x) with a tolerance for the output's storage dtype;
//   4. checks the memory the op was not meant to change: bytes inside an output's span but outside the
//      view (a kernel writing past its view), and inputs that changed while the op ran;
//   5. keeps a host mirror of every byte it has observed on the device and, before each op, verifies the
//      arguments' memory still holds what the last op wrote or read there — a change in between means
//      something other than an op wrote it (an asynchronous copy, another stream, an op writing outside
//      its arguments). With sweep_after_each_op the whole mirror is checked after every op, which names
//      the op that wrote outside its arguments (slow: for small models).
// Findings are recorded (the first is the culprit; later ones are independent checks of later ops on the
// data they actually got) and the run continues, with the inner backend's results, to the end.
//
// It does not synchronise or allocate like the wrapped backend would in production, so it cannot find
// races between ops on one stream, and it cannot be captured into a CUDA graph: it is for eager runs.
// Reusable for any model: wrap the backend, run the forward, EXPECT_TRUE(checker.ok()) << checker.report().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/ops.h"

namespace blr::test {

struct CheckTolerance {
  double max_abs_rel = 0;  // max |inner − cpu| ≤ max_abs_rel · scale, scale = max |value| of the output and inputs
  double min_cosine = 1;
};

struct CheckingOptions {
  // Per storage dtype of the output. f32: both sides compute in fp32 and differ in summation order only
  // (~1e-6 of the scale for sums of thousands of terms); any wrong index or stride gives O(1).
  CheckTolerance f32{1e-4, 0.99999};
  // f16 / bf16: the output is rounded to 11 / 8 significant bits (2^-11 / 2^-9 relative) and some ops keep
  // 16-bit intermediates (attention probabilities, BLR stage outputs, the residual of add_layer_norm).
  CheckTolerance f16{1e-2, 0.9999};
  CheckTolerance bf16{4e-2, 0.999};
  bool verify_memory = true;         // the mirror of step 5
  bool sweep_after_each_op = false;  // verify the whole mirror after every op
  size_t max_findings = 20;
};

struct OpFinding {
  size_t call = 0;     // index of the op call through this CheckingOps (0-based)
  std::string op;      // "add_layer_norm"
  std::string kind;    // "mismatch", "write outside the view", "input changed during the op",
                       // "memory changed between ops", "reference refused", "backend threw"
  std::string arg;     // the argument concerned
  std::string detail;  // error measures, worst element, values
  std::string args;    // every argument: name, dtype, shape, strides, device, address
  std::string str() const;
};

class CheckingOps final : public Ops {
 public:
  explicit CheckingOps(Ops& inner, CheckingOptions options = {});
  ~CheckingOps() override;

  Device device() const override { return inner_.device(); }
  std::string name() const override { return "checking(" + inner_.name() + ")"; }
  void synchronize() override { inner_.synchronize(); }

  // Results.
  bool ok() const { return findings_.empty(); }
  const std::vector<OpFinding>& findings() const { return findings_; }
  size_t calls() const { return calls_; }
  // Findings (the first in full), then one line per op call with its worst relative error.
  std::string report(size_t max_trace_lines = 400) const;
  // Forget the observed memory (call after writing device memory outside the ops, e.g. a new input).
  void forget_memory();

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

  class Call;  // one checked op call (checking_ops.cpp)
  struct Mirror;

 private:
  friend class Call;
  void add_finding(OpFinding f);

  Ops& inner_;
  CpuOps cpu_;
  CheckingOptions options_;
  size_t calls_ = 0;
  std::vector<OpFinding> findings_;
  size_t dropped_findings_ = 0;
  std::vector<std::string> trace_;
  std::unique_ptr<Mirror> mirror_;
};

}  // namespace blr::test
