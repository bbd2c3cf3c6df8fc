// Per-op GPU time of a forward pass, for `blr bench --breakdown`: an Ops decorator that records a CUDA
// event on the stream before every op and one after the last, so the gaps between consecutive events
// are the ops' times (kernel time plus the launch gap in front of it). Inside a stream capture the events
// become graph nodes (cudaEventRecordExternal), so one capture gives the breakdown of every replay of
// that graph; eagerly it times an ordinary run. Each op is labelled with its name and argument shapes,
// which tells the layers of a model apart (a ViT block's qkv, proj, fc1 and fc2 have distinct shapes).
// The event nodes add a little latency of their own: compare the sum with the plain graph's time.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "engine/backend/forwarding_ops.h"

namespace blr {

class OpProfiler final : public ForwardingOps {
 public:
  OpProfiler(Ops& inner, cudaStream_t stream);
  ~OpProfiler() override;
  OpProfiler(const OpProfiler&) = delete;
  OpProfiler& operator=(const OpProfiler&) = delete;

  // Brackets one recording: begin() before the work is enqueued (or captured), end() after it.
  void begin();
  void end();
  // After the recorded work has run and the stream was synchronised: milliseconds of each op, in order.
  std::vector<double> op_ms() const;
  const std::vector<std::string>& labels() const { return labels_; }  // "linear x=bf16[197,768] ..."
  const std::vector<std::string>& ops() const { return ops_; }        // "linear"

 protected:
  void enter(const char* op, const std::vector<OpArg>& args) override;

 private:
  void record();  // the next event of the sequence
  cudaStream_t stream_;
  std::vector<cudaEvent_t> events_;  // reused by later recordings
  size_t next_ = 0;
  std::vector<std::string> labels_, ops_;
};

}  // namespace blr
