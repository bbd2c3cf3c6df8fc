// Dense -> block low-rank compression of one weight matrix W [out, in]:
//   lowrank  truncated SVD, W ≈ B·A with the singular values split evenly (√Σ on each side, so bf16/fp16
//            storage sees no large dynamic range on either factor);
//   monarch  per-block truncated SVD: block (k, j) keeps its r/b leading triplets (optimal in Frobenius
//            norm, exact when W is exactly Monarch of that rank);
//   blast    the BLAST authors' preconditioned alternating gradient descent (blast_factor.h).
// Each returns the layer (host f32 factors, no bias) and its relative error ‖W − Ŵ‖_F / ‖W‖_F.
// The CPU path uses Eigen; the GPU path (gpu_compress.h) uses cuSOLVER/cuBLAS and gives the same result
// up to floating-point differences. compress_weight() picks the GPU when asked and a device is present.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "engine/nn/linear.h"

namespace blr {

struct BlastParams {
  int iterations = 300;
  uint64_t seed = 0;
  // Step size schedule: lr_t = lr · (1 − (1 − end_factor)·t/T), as the authors' LinearLR (their DiT/Llama
  // scripts decay to 0).
  double lr = 1.0;
  double end_factor = 0.0;
  // Damping of the preconditioner: ε = delta · ‖W/σ − Ŵ/σ‖_F (the authors use 0.1).
  double delta = 0.1;
  // Extra damping relative to the Gram matrix's mean diagonal, so fp32 Cholesky stays positive definite
  // when ε → 0 on (near-)exact inputs; it changes a step by about this relative amount at most.
  double floor_rel = 1e-5;
};

struct CompressOptions {
  BlastParams blast;
  bool use_gpu = true;  // use the GPU when a CUDA device is present
  // Called during long factorisations with (iterations done, total); may be empty.
  std::function<void(int, int)> progress;
};

struct CompressResult {
  Linear layer;          // kind, in, out, factors (host f32), rel_error; name and bias left empty
  double rel_error = 0;  // same as layer.rel_error
  bool on_gpu = false;   // which path computed it
  double seconds = 0;    // wall time of the factorisation
};

// Dispatches to the GPU (when options.use_gpu and a device is present) or the CPU. W: any float dtype,
// host or device, [out, in]. Throws InputError when the spec cannot factor W (validate_spec) or W holds
// non-finite values.
CompressResult compress_weight(const Tensor& W, const LinearSpec& spec, const CompressOptions& options = {});

// The CPU path (Eigen), for tests and as the fallback.
CompressResult compress_weight_cpu(const Tensor& W, const LinearSpec& spec, const CompressOptions& options = {});

// ‖W − assemble_dense(layer)‖_F / ‖W‖_F in double (0 when W is all zeros and so is the layer).
double relative_error(const Tensor& W, const Linear& layer);

}  // namespace blr
