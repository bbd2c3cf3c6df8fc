#include "app/cli/bench_util.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

#include "engine/core/cuda_check.h"
#include "engine/core/device.h"
#include "engine/core/error.h"
#include "engine/core/stream.h"

namespace blr::cli {

nlohmann::json TimingStats::to_json() const {
  return {{"median_ms", median_ms}, {"min_ms", min_ms}, {"max_ms", max_ms}, {"mean_ms", mean_ms}, {"samples", samples}};
}

static TimingStats summarise(std::vector<double> v) {
  TimingStats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.samples = static_cast<int>(v.size());
  s.min_ms = v.front();
  s.max_ms = v.back();
  s.median_ms = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  double sum = 0;
  for (double x : v) sum += x;
  s.mean_ms = sum / v.size();
  return s;
}

TimingStats time_graph(cudaStream_t stream, const std::function<void(int)>& work, int repeat, int samples,
                       int warmup) {
  BLR_CHECK(repeat >= 1 && samples >= 1, "time_graph: repeat and samples must be positive");
  // One eager pass first: lets scratch buffers grow and libraries pick algorithms outside the capture.
  for (int r = 0; r < repeat; ++r) work(r);
  BLR_CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  BLR_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    for (int r = 0; r < repeat; ++r) work(r);
  } catch (...) {
    cudaStreamEndCapture(stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    throw;
  }
  BLR_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  BLR_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < warmup; ++i) BLR_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  std::vector<CudaEvent> events(samples + 1);
  events[0].record(stream);
  for (int i = 0; i < samples; ++i) {
    BLR_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    events[i + 1].record(stream);
  }
  BLR_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> ms(samples);
  for (int i = 0; i < samples; ++i) ms[i] = CudaEvent::elapsed_ms(events[i], events[i + 1]) / repeat;
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return summarise(ms);
}

TimingStats time_eager(cudaStream_t stream, const std::function<void(int)>& work, int samples, int warmup) {
  for (int i = 0; i < warmup; ++i) work(i);
  BLR_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> ms(samples);
  for (int i = 0; i < samples; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    work(i);
    BLR_CUDA_CHECK(cudaStreamSynchronize(stream));
    ms[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  return summarise(ms);
}

static std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string git_commit() {
  if (const char* env = std::getenv("BLR_GIT_COMMIT")) return env;
  const std::string git = std::string(BLR_SOURCE_DIR) + "/.git";
  std::string head = read_text(git + "/HEAD");
  if (head.rfind("ref: ", 0) == 0) {
    const std::string ref = head.substr(5);
    std::string sha = read_text(git + "/" + ref);
    if (sha.empty()) {  // packed refs
      std::ifstream in(git + "/packed-refs");
      std::string line;
      while (std::getline(in, line))
        if (line.size() > 41 && line.substr(41) == ref) sha = line.substr(0, 40);
    }
    head = sha;
  }
  return head.empty() ? "unknown" : head.substr(0, 12);
}

std::string utc_date() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&now));
  return buf;
}

nlohmann::json environment_json() {
  const DeviceInfo d = query_device(0);
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  cudaGetLastError();
  return {{"device", d.available ? d.name : std::string("none: ") + d.reason},
          {"compute_capability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor)},
          {"sm_count", d.sm_count},
          {"memory_bytes", d.total_memory},
          {"l2_bytes", d.l2_bytes},
          {"peak_bandwidth_gbs", d.memory_bandwidth_gbs},
          {"peak_bf16_tflops", d.bf16_tflops},
          {"cuda_driver", driver},
          {"cuda_runtime", runtime},
          {"commit", git_commit()},
          {"date", utc_date()}};
}

std::vector<BenchModel>& bench_registry() {
  static std::vector<BenchModel> models;
  return models;
}

}  // namespace blr::cli
