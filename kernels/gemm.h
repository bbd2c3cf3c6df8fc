// cuBLASLt wrapper for dense GEMMs in row-major terms, with the bias and activation fused into
// cuBLASLt's epilogue where it has one (bias, GELU-tanh) and applied by a small in-place pass where it
// does not (GELU-erf, SiLU). Plans (descriptors, layouts and the heuristic's algorithm) are cached by
// shape, strides, dtype, epilogue and pointer alignment, so steady-state calls only enqueue the matmul —
// which is also what makes them legal inside CUDA graph capture (workspace is preallocated by the caller).
//
//   for q < batch:  C[q] = act( alpha · A[q] · op(B[q]) + bias[q] )
//   A[q]: [m, k]  at A + q·a_batch, rows lda apart
//   B[q]: b_nk ? [n, k] (nn.Linear weight; used transposed) : [k, n]; at B + q·b_batch, rows ldb apart
//   C[q]: [m, n]  at C + q·c_batch, rows ldc apart;   bias[q]: [n] at bias + q·bias_batch (or null)
//
// Accumulation is fp32 for every dtype; f32 storage uses strict fp32 (CUBLAS_COMPUTE_32F, no TF32), so
// the f32 path matches the CPU reference to ~1e-6.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/kernel_types.h"

struct cublasLtContext;

namespace blr::kern {

struct GemmArgs {
  DT dt = DT::BF16;
  int64_t m = 0, n = 0, k = 0;
  int batch = 1;
  const void* a = nullptr;
  int64_t lda = 0, a_batch = 0;
  const void* b = nullptr;
  int64_t ldb = 0, b_batch = 0;
  bool b_nk = true;
  void* c = nullptr;
  int64_t ldc = 0, c_batch = 0;
  const void* bias = nullptr;
  int64_t bias_batch = 0;
  Act act = Act::None;
  float alpha = 1.0f;
  // Which entry of cuBLASLt's heuristic list to run (0 = its first choice; others for experiments). An
  // index beyond the list is an error ("cublasLt offers only N algorithms").
  int algo_index = 0;
};

// True when cuBLASLt's epilogue computes `act` itself (None and GeluTanh); the others cost an extra pass.
bool lt_fuses_act(Act act);

class GemmPlanCache {
 public:
  GemmPlanCache();
  ~GemmPlanCache();
  GemmPlanCache(const GemmPlanCache&) = delete;
  GemmPlanCache& operator=(const GemmPlanCache&) = delete;

  // Enqueues the GEMM (and the activation pass if needed) on `stream`. Returns "" on success, otherwise a
  // message naming the failing call and the shape. `algo` (optional) receives what ran, e.g.
  // "#0/8 id 66 tile 128x128 stages 10 splitK 1 swizzle 0 cluster 2 waves 0.87 +bias pass".
  std::string run(cublasLtContext* lt, const GemmArgs& args, void* workspace, size_t workspace_bytes,
                  cudaStream_t stream, std::string* algo = nullptr);
  size_t plans() const;
  // Autotuning: when a plan is made outside a stream capture, time the heuristic's first few candidate
  // algorithms on the real operands (synchronising the stream) and keep the fastest, instead of taking the
  // heuristic's first choice. Off by default: timing noise may pick a different algorithm from run to run,
  // and with it different rounding, so results are no longer reproducible across processes.
  void set_autotune(bool on);
  bool autotune() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// In place: C[q](i, j) = act(C[q](i, j) + bias[q](j)) (bias may be null). Used after cuBLASLt for the
// activations its epilogue lacks.
cudaError_t bias_act_rows(DT dt, void* c, int64_t m, int64_t n, int64_t ldc, int batch, int64_t c_batch,
                          const void* bias, int64_t bias_batch, Act act, cudaStream_t stream);

}  // namespace blr::kern
