// The CUDA backend. One CudaOps per worker thread: it owns a stream, the cuBLAS/cuBLASLt/cuDNN handles
// bound to it, and a scratch buffer for intermediates (BLR stage outputs, attention scores, cuBLASLt
// workspace). Scratch grows only outside stream capture: the first (eager) run of a forward pass sizes it,
// and a captured run that would need more throws instead of allocating. The op bodies live in one file
// per family (cuda_linear.cpp, cuda_blr.cpp, cuda_norm.cpp, cuda_attention.cpp, cuda_conv.cpp,
// cuda_misc.cpp, cuda_image.cpp, cuda_sampler.cpp) and call launchers in kernels/.
#pragma once

#include <cuda_runtime_api.h>

#include <map>
#include <memory>

#include "engine/backend/ops.h"
#include "engine/core/arena.h"

struct cublasContext;
struct cublasLtContext;
struct cudnnContext;

namespace blr {

class CudaOps final : public Ops {
 public:
  // `stream` may be null: CudaOps then creates and owns a non-blocking stream.
  explicit CudaOps(Arena& arena, cudaStream_t stream = nullptr);
  ~CudaOps() override;
  CudaOps(const CudaOps&) = delete;
  CudaOps& operator=(const CudaOps&) = delete;

  Device device() const override { return Device::CUDA; }
  std::string name() const override { return "cuda"; }
  void synchronize() override;

  cudaStream_t stream() const { return stream_; }
  Arena& arena() const { return arena_; }
  cublasContext* cublas();
  cublasLtContext* cublaslt();
  cudnnContext* cudnn();
  // Scratch memory of at least `bytes`, valid until the next call to scratch(). Slot lets one op hold
  // several independent buffers at once (slot 0..kScratchSlots-1).
  static constexpr int kScratchSlots = 4;
  void* scratch(size_t bytes, int slot = 0);
  // Changes whenever a scratch buffer is reallocated; graphs captured before that hold stale addresses
  // (GraphRunner::set_epoch_source uses this to re-capture them).
  uint64_t scratch_epoch() const { return scratch_epoch_; }
  // Workspace reserved for cuBLASLt (fixed size, allocated once).
  void* cublaslt_workspace(size_t* bytes);
  bool capturing() const;

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

  // Per-family state (cached cuDNN descriptors and algorithms, cuBLASLt plans), owned here so it dies
  // with the CudaOps; each family file defines its own struct and reaches it through these slots.
  struct FamilyState {
    virtual ~FamilyState() = default;
  };
  std::unique_ptr<FamilyState>& family_state(const std::string& family) { return family_states_[family]; }

 private:
  Arena& arena_;
  cudaStream_t stream_ = nullptr;
  bool own_stream_ = false;
  cublasContext* cublas_ = nullptr;
  cublasLtContext* cublaslt_ = nullptr;
  cudnnContext* cudnn_ = nullptr;
  Tensor scratch_[kScratchSlots];
  uint64_t scratch_epoch_ = 0;
  Tensor lt_workspace_;
  std::map<std::string, std::unique_ptr<FamilyState>> family_states_;
};

}  // namespace blr
