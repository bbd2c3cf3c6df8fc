// Opt-in cuBLASLt autotuning for one CudaOps (see kern::GemmPlanCache::set_autotune): every dense GEMM
// shape planned afterwards, outside a stream capture, times the heuristic's candidate algorithms once and
// keeps the fastest. For benchmarks and latency-critical sessions; off by default because the choice
// (and so the last bits of the results) may differ from one process to the next.
#pragma once

namespace blr {

class CudaOps;
void set_gemm_autotune(CudaOps& ops, bool on);

}  // namespace blr
