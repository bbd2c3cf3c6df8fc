// The pieces of `blr bench-layer`: one variant's benchmark state (rotating sets of x, weights and y on the
// GPU, the CPU reference for a sample of rows) that can be timed again under other kernel options, and the
// two experiment modes built on it: --breakdown (each stage alone, the pair, PDL on/off, PDL-first)
// and --sweep (every stage-1/stage-2 path and tile, cuBLASLt algorithms).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "app/cli/bench_util.h"
#include "engine/backend/cuda/cuda_blr.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/arena.h"
#include "engine/core/device.h"
#include "engine/backend/ops.h"

namespace blr::cli {

enum class LayerKind { Dense, LowRank, Monarch, Blast };

struct VariantSpec {
  LayerKind kind = LayerKind::Dense;
  std::string name;
  int64_t b = 1, r = 0;
};

struct LayerProblem {
  int64_t in = 0, out = 0, tokens = 0;
  DType dtype = DType::BF16;
  Act act = Act::None;
  bool bias = true;
};

// One layer's tensors (host f32 holding values already rounded to the benchmark dtype, or device copies).
struct LayerTensors {
  Tensor w;
  LowRankWeights lr;
  MonarchWeights mo;
  BlastWeights bl;
  Tensor bias;
};

struct ErrorStats {
  int64_t rows = 0;
  double max_abs = 0, max_ref = 0, cosine = 1;
  bool finite = true;
  double rel() const { return max_ref > 0 ? max_abs / max_ref : 0.0; }
};

// FLOPs and minimum bytes of a whole layer or of one of its stages.
struct Cost {
  double flops = 0, bytes = 0;
};
Cost layer_cost(const VariantSpec& v, const LayerProblem& p);
Cost stage_cost(const VariantSpec& v, const LayerProblem& p, int stage);  // stage 1 or 2 of a BLR variant
int64_t parameter_count(const VariantSpec& v, const LayerProblem& p);

struct Timed {
  TimingStats t;
  std::string plan;
  ErrorStats err;      // of the eager call that preceded the timing (only when checked)
  std::string error;   // non-empty: this configuration could not run (the message says why)
};

// A variant set up on the GPU once and timed under any number of kernel option sets.
class LayerBench {
 public:
  LayerBench(const VariantSpec& v, const LayerProblem& p, const DeviceInfo& dev, int64_t check_rows);
  ~LayerBench();
  LayerBench(const LayerBench&) = delete;
  LayerBench& operator=(const LayerBench&) = delete;

  // Runs the layer once eagerly under `o` (plan, and the error against the CPU reference when `check`),
  // then times CUDA-graph replays — unless skip(plan) says not to (Timed::error = "skipped: ..." then).
  // Errors of the configuration (a forced path that cannot run) come back in Timed::error; a device fault
  // that poisons the context is rethrown.
  Timed time(const BlrKernelOptions& o, int samples, int warmup, bool check,
             const std::function<std::string(const std::string& plan)>& skip = nullptr);
  const VariantSpec& variant() const { return v_; }
  const LayerProblem& problem() const { return p_; }
  int sets() const { return static_cast<int>(sets_.size()); }
  double set_bytes() const { return set_bytes_; }
  CudaOps& ops() { return *ops_; }

 private:
  struct Set {
    LayerTensors layer;
    Tensor x, y;
  };
  void forward(Set& s);
  ErrorStats check_sample();

  VariantSpec v_;
  LayerProblem p_;
  double set_bytes_ = 0;
  LayerTensors host_;
  std::unique_ptr<Arena> arena_;
  std::vector<Set> sets_;
  std::unique_ptr<CudaOps> ops_;
  std::vector<int64_t> sample_rows_;
  Tensor reference_;  // [sample rows, out] f32, CPU
};

// Empty-kernel graph nodes: µs per node for a few grid sizes, with and without PDL (one line, and JSON).
nlohmann::json probe_launch_cost(CudaOps& ops, int sms, std::string* line);

// --breakdown: each stage alone, the pair, PDL off / first. Prints a block; returns JSON.
// `summary` receives a compact one-line digest.
nlohmann::json run_breakdown(LayerBench& bench, const BlrKernelOptions& base, const DeviceInfo& dev, int samples,
                             int warmup, std::string* summary);

// --sweep: every path/tile/algorithm the code offers, one line each sorted by time, the auto pick marked.
// dense_ms > 0 adds the "x dense" column. `summary` receives the best configurations in one line.
// with_lt_algos: also every cuBLASLt heuristic entry for cuBLASLt stages (otherwise only its first choice).
nlohmann::json run_sweep(LayerBench& bench, const BlrKernelOptions& base, double dense_ms, int samples, int warmup,
                         bool with_lt_algos, std::string* summary);

}  // namespace blr::cli
