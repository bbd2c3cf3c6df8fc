// `blr bench --breakdown`: where one forward pass spends its GPU time. The pass is captured twice into a
// CUDA graph: plainly, to count its nodes by type (kernels, memcpy, memset, ...), and through an
// OpProfiler (engine/runtime/op_profiler.h), whose events inside the graph give every op's time on each
// replay. Ops are grouped by label (op name + argument shapes: a ViT block's qkv, proj, fc1 and fc2
// differ) and by family, the largest first.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "engine/backend/ops.h"

namespace blr::cli {

// `forward(ops)` enqueues one forward pass on `ops` (which forwards to `inner`, enqueuing on `stream`).
// Prints the breakdown and returns it as JSON. `plain_graph_ms` (the configuration's graph time measured
// without profiling events) is printed beside the profiled sum.
nlohmann::json print_breakdown(Ops& inner, cudaStream_t stream, const std::function<void(Ops&)>& forward,
                               double plain_graph_ms, int replays = 50, int max_rows = 24);

}  // namespace blr::cli
