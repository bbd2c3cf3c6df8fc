#include "engine/runtime/graph_runner.h"

#include "engine/core/cuda_check.h"
#include "engine/core/error.h"

namespace blr {

GraphRunner::~GraphRunner() { clear(); }

void GraphRunner::clear() {
  for (auto& kv : graphs_) {
    if (kv.second.exec) cudaGraphExecDestroy(kv.second.exec);
    if (kv.second.graph) cudaGraphDestroy(kv.second.graph);
  }
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
  if (e.exec) {
    BLR_CUDA_CHECK(cudaGraphLaunch(e.exec, stream));
    return;
  }
  if (e.runs++ == 0) {  // planning run
    work();
    return;
  }
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
  ++captures_;
  BLR_CUDA_CHECK(cudaGraphLaunch(e.exec, stream));
}

}  // namespace blr
