// Shared pieces of `blr bench` and `blr bench-layer`: timing by CUDA graph replay, environment facts
// for the JSON (device, commit, date), and the registry through which each model adds itself to
// `blr bench --model NAME`.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace blr::cli {

struct TimingStats {
  double median_ms = 0, min_ms = 0, max_ms = 0, mean_ms = 0;
  int samples = 0;
  nlohmann::json to_json() const;
};

// Captures `work` (which enqueues on `stream`) `repeat` times in a row into one CUDA graph, replays it
// `warmup` times, then `samples` times, each replay bracketed by events. Each sample is the replay time
// divided by `repeat`, so launch gaps are excluded; report the median. `work` may take the repetition
// index to rotate among several input/weight sets (so repeated calls do not just measure L2).
TimingStats time_graph(cudaStream_t stream, const std::function<void(int)>& work, int repeat = 1,
                       int samples = 100, int warmup = 10);
// The same work launched eagerly (no graph), each sample one host-synchronised call: what graphs save.
TimingStats time_eager(cudaStream_t stream, const std::function<void(int)>& work, int samples = 100,
                       int warmup = 10);

std::string git_commit();  // from the source tree's .git (or BLR_GIT_COMMIT), "unknown" otherwise
std::string utc_date();    // "2026-11-26"
// Device name, compute capability, SM count, memory, L2, peak bandwidth/TFLOP/s estimates, driver and
// runtime versions, commit and date.
nlohmann::json environment_json();

// `blr bench --model NAME`: each model registers a function taking the remaining arguments.
struct BenchModel {
  std::string name;     // "vit-b16", "dit-xl2"
  std::string summary;
  std::function<int(const std::vector<std::string>&)> run;
};
std::vector<BenchModel>& bench_registry();
struct BenchRegistrar {
  explicit BenchRegistrar(BenchModel m) { bench_registry().push_back(std::move(m)); }
};

}  // namespace blr::cli

#define BLR_REGISTER_BENCH_MODEL(ident, name, summary, fn) \
  static ::blr::cli::BenchRegistrar blr_bench_##ident({name, summary, fn})
