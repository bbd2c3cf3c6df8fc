// The GPU compression path: cuSOLVER Jacobi SVDs (gesvdj) for low-rank and Monarch, and the BLAST
// factorisation with cuBLAS GEMMs, batched Cholesky (potrfBatched + trsmBatched / potrsBatched) and a few
// elementwise kernels (kernels/blast_factor.cu). It starts from the same seeded factors as the CPU path
// and evaluates the same formulas, so the two agree up to floating-point differences.
#pragma once

#include "engine/compress/compress.h"

namespace blr {

// True when a CUDA device is usable (cached after the first call).
bool gpu_compression_available();

// Throws Error when no device is usable. W: any float dtype, host or device, [out, in].
CompressResult compress_weight_gpu(const Tensor& W, const LinearSpec& spec, const CompressOptions& options = {});

}  // namespace blr
