#include "engine/runtime/graph_runner.h"

#include "engine/core/cuda_check.h"
#include "engine/core/error.h"

namespace blr {

GraphRunner::~GraphRunner() { clear(); }

void GraphRunner::destroy(Entry& e) {
  if (e.exec) cudaGraphExecDestroy(e.exec);
  if (e.graph) cudaGraphDestroy(e.graph);
  e.exec = nullptr;
  e.graph = nullptr;
}

void GraphRunner::clear() {
  for (auto& kv : graphs_) destroy(kv.second);
  graphs_.clear();
}

bool GraphRunner::has_graph(const std::string& key) const {
  auto it = graphs_.find(key);
  return it != graphs_.end() && it->second.exec != nullptr;
}

void GraphRunner::run(const std::string& key, cudaStream_t stream, const std::function<void()>& work) {
  if (!enabled_) {
    work();
    return;
  }
  Entry& e = graphs_[key];
  const uint64_t epoch = epoch_source_ ? epoch_source_() : 0;
  if (e.exec && e.epoch != epoch) destroy(e);  // memory it captured was reallocated: capture again
  if (e.exec) {
    BLR_CUDA_CHECK(cudaGraphLaunch(e.exec, stream));
    return;
  }
  if (e.runs++ == 0) {  // planning run
    work();
    return;
  }
  capture(e, stream, work);
  BLR_CUDA_CHECK(cudaGraphLaunch(e.exec, stream));
}

void GraphRunner::prepare(const std::string& key, cudaStream_t stream, const std::function<void()>& work) {
  if (!enabled_) return;
  Entry& e = graphs_[key];
  if (e.runs++ == 0) work();  // planning run
  const uint64_t epoch = epoch_source_ ? epoch_source_() : 0;
  if (e.exec && e.epoch == epoch) return;
  destroy(e);
  capture(e, stream, work);
}

void GraphRunner::capture(Entry& e, cudaStream_t stream, const std::function<void()>& work) {
  // Thread-local capture: other threads (the studio's other worker) may keep using CUDA meanwhile.
  BLR_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    work();
  } catch (...) {
    cudaGraph_t broken = nullptr;
    cudaStreamEndCapture(stream, &broken);
    if (broken) cudaGraphDestroy(broken);
    cudaGetLastError();
    throw;
  }
  BLR_CUDA_CHECK(cudaStreamEndCapture(stream, &e.graph));
  BLR_CUDA_CHECK(cudaGraphInstantiate(&e.exec, e.graph, 0));
  e.epoch = epoch_source_ ? epoch_source_() : 0;
  ++captures_;
}

}  // namespace blr
