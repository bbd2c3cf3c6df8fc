// Runs a piece of GPU work either eagerly or as a CUDA graph. The first run under a key is eager: it
// plans the memory (scratch buffers grow, cuBLASLt picks algorithms) so nothing allocates inside a capture.
// The second run captures the work into a graph and instantiates it; every later run replays it. Keys
// name a shape and mode ("vit/b=1/bf16/blast"); a new key captures anew, old graphs stay cached. What
// changes from call to call must live in device memory the graph reads (inputs copied in beforehand,
// step counters), never in host values baked into the capture.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <cstdint>
#include <map>
#include <string>

namespace blr {

class GraphRunner {
 public:
  GraphRunner() = default;
  ~GraphRunner();
  GraphRunner(const GraphRunner&) = delete;
  GraphRunner& operator=(const GraphRunner&) = delete;

  // Enqueues `work` on `stream` (asynchronously). With graphs disabled, always eager.
  void run(const std::string& key, cudaStream_t stream, const std::function<void()>& work);
  // Readies `key` so that the next run() only replays: the eager planning run if the key never ran (it
  // executes `work`), then capture and instantiation (which do not execute it) if there is no graph or
  // its memory epoch is stale. Nothing when a current graph exists; nothing with graphs disabled. For
  // warming a piece of work up, or re-capturing it, outside a timed region.
  void prepare(const std::string& key, cudaStream_t stream, const std::function<void()>& work);
  void set_enabled(bool enabled) { enabled_ = enabled; }
  // A captured graph bakes in every device address it touches. When memory it may use is reallocated
  // (CudaOps scratch growing for a larger request), the source's value changes and every graph is
  // captured again on its next run instead of replaying stale addresses.
  void set_epoch_source(std::function<uint64_t()> source) { epoch_source_ = std::move(source); }
  bool enabled() const { return enabled_; }
  bool has_graph(const std::string& key) const;
  size_t graph_count() const { return graphs_.size(); }
  size_t captures() const { return captures_; }  // how many times a graph was captured (tests check reuse)
  void clear();

 private:
  struct Entry {
    int runs = 0;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    uint64_t epoch = 0;
  };
  static void destroy(Entry& e);
  void capture(Entry& e, cudaStream_t stream, const std::function<void()>& work);
  std::map<std::string, Entry> graphs_;
  std::function<uint64_t()> epoch_source_;
  bool enabled_ = true;
  size_t captures_ = 0;
};

}  // namespace blr
