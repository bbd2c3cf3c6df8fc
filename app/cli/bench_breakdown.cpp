#include "app/cli/bench_breakdown.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "engine/core/cuda_check.h"
#include "engine/core/error.h"
#include "engine/runtime/op_profiler.h"

namespace blr::cli {

namespace {

// Captures `work` on `stream` into a graph (after one eager run, which lets scratch grow and libraries
// pick algorithms outside the capture).
cudaGraph_t capture(cudaStream_t stream, const std::function<void()>& work) {
  work();
  BLR_CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaGraph_t graph = nullptr;
  BLR_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    work();
  } catch (...) {
    cudaStreamEndCapture(stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    throw;
  }
  BLR_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  return graph;
}

std::map<std::string, int> node_census(cudaGraph_t graph) {
  size_t n = 0;
  BLR_CUDA_CHECK(cudaGraphGetNodes(graph, nullptr, &n));
  std::vector<cudaGraphNode_t> nodes(n);
  if (n) BLR_CUDA_CHECK(cudaGraphGetNodes(graph, nodes.data(), &n));
  std::map<std::string, int> count;
  for (cudaGraphNode_t node : nodes) {
    cudaGraphNodeType t{};
    BLR_CUDA_CHECK(cudaGraphNodeGetType(node, &t));
    switch (t) {
      case cudaGraphNodeTypeKernel: ++count["kernel"]; break;
      case cudaGraphNodeTypeMemcpy: ++count["memcpy"]; break;
      case cudaGraphNodeTypeMemset: ++count["memset"]; break;
      case cudaGraphNodeTypeEventRecord: ++count["event"]; break;
      case cudaGraphNodeTypeEmpty: ++count["empty"]; break;
      default: ++count["other"]; break;
    }
  }
  return count;
}

const char* family_of(const std::string& op) {
  if (op == "linear" || op == "matmul") return "dense GEMM (cuBLASLt, + activation pass)";
  if (op == "lowrank_linear" || op == "monarch_linear" || op == "blast_linear") return "BLR linear";
  if (op == "attention") return "attention";
  if (op == "add_layer_norm" || op == "modulate" || op == "gated_add" || op == "group_norm") return "norm";
  if (op == "conv2d") return "conv";
  return "layout / elementwise / top-k";
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

nlohmann::json print_breakdown(Ops& inner, cudaStream_t stream, const std::function<void(Ops&)>& forward,
                               double plain_graph_ms, int replays, int max_rows) {
  // 1. What the plain graph holds.
  cudaGraph_t plain = capture(stream, [&] { forward(inner); });
  const std::map<std::string, int> census = node_census(plain);
  cudaGraphDestroy(plain);

  // 2. Per-op times from events captured between the ops.
  OpProfiler prof(inner, stream);
  cudaGraph_t graph = capture(stream, [&] {
    prof.begin();
    forward(prof);
    prof.end();
  });
  cudaGraphExec_t exec = nullptr;
  BLR_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < 5; ++i) BLR_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  BLR_CUDA_CHECK(cudaStreamSynchronize(stream));
  const size_t n_ops = prof.labels().size();
  std::vector<std::vector<double>> samples(n_ops);
  std::vector<double> totals;
  for (int r = 0; r < replays; ++r) {
    BLR_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    BLR_CUDA_CHECK(cudaStreamSynchronize(stream));
    const std::vector<double> ms = prof.op_ms();
    double sum = 0;
    for (size_t i = 0; i < n_ops; ++i) samples[i].push_back(ms[i]), sum += ms[i];
    totals.push_back(sum);
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);

  struct Group {
    double ms = 0;
    int calls = 0;
  };
  std::map<std::string, Group> by_label, by_family;
  double profiled = 0;
  for (size_t i = 0; i < n_ops; ++i) {
    const double m = median(samples[i]);
    profiled += m;
    Group& g = by_label[prof.labels()[i]];
    g.ms += m, ++g.calls;
    Group& f = by_family[family_of(prof.ops()[i])];
    f.ms += m, ++f.calls;
  }
  auto sorted = [](const std::map<std::string, Group>& m) {
    std::vector<std::pair<std::string, Group>> v(m.begin(), m.end());
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    return v;
  };

  std::string nodes;
  int kernels = 0;
  for (const auto& [type, n] : census) {
    nodes += cat(nodes.empty() ? "" : ", ", n, " ", type);
    if (type == "kernel") kernels = n;
  }
  std::printf("  breakdown: %zu ops, graph nodes: %s\n", n_ops, nodes.c_str());
  std::printf("  sum of per-op medians %.4f ms (median replay with events %.4f ms) vs plain graph %.4f ms\n", profiled,
              median(totals), plain_graph_ms);
  std::printf("  %-44s %6s %10s %8s\n", "family", "ops", "ms", "share");
  nlohmann::json families = nlohmann::json::array();
  for (const auto& [name, g] : sorted(by_family)) {
    std::printf("  %-44s %6d %10.4f %7.1f%%\n", name.c_str(), g.calls, g.ms, 100.0 * g.ms / std::max(profiled, 1e-12));
    families.push_back({{"family", name}, {"ops", g.calls}, {"ms", g.ms}});
  }
  std::printf("  %10s %6s %9s %7s  %s\n", "ms", "calls", "us/call", "share", "op and arguments (* = written)");
  nlohmann::json rows = nlohmann::json::array();
  int shown = 0;
  for (const auto& [label, g] : sorted(by_label)) {
    rows.push_back({{"op", label}, {"calls", g.calls}, {"ms", g.ms}});
    if (shown++ < max_rows)
      std::printf("  %10.4f %6d %9.2f %6.1f%%  %s\n", g.ms, g.calls, 1000.0 * g.ms / g.calls,
                  100.0 * g.ms / std::max(profiled, 1e-12), label.c_str());
  }
  std::fflush(stdout);
  nlohmann::json census_json = nlohmann::json::object();
  for (const auto& [type, n] : census) census_json[type] = n;
  return {{"graph_nodes", census_json},
          {"kernels", kernels},
          {"ops", n_ops},
          {"profiled_sum_ms", profiled},
          {"profiled_replay_ms", median(totals)},
          {"plain_graph_ms", plain_graph_ms},
          {"families", families},
          {"by_op", rows}};
}

}  // namespace blr::cli
