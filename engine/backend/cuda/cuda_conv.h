// Choice of implementation behind CudaOps::conv2d, exposed for tests and benchmarks.
//   Cudnn:  cuDNN 9's legacy convolution API on NHWC tensors (KRSC filters), tensor-op math with fp32
//           accumulation for bf16/f16 and FMA-only math for f32 (no TF32, so fp32 stays tight); the
//           algorithm is chosen once per shape and cached; bias added by a small kernel afterwards.
//   Direct: kernels/conv.cu's direct convolution (fp32 accumulation, any shape), the fallback when
//           cuDNN has no working algorithm for a shape.
// Auto (the default) tries cuDNN first and falls back to Direct per shape.
// The algorithm comes from cuDNN's heuristics (cudnnGetConvolutionForwardAlgorithm_v7), restricted to
// deterministic algorithms, so a given GPU and cuDNN version always compute the same bits. Setting the
// environment variable BLR_CUDNN_FIND=1 benchmarks the candidates instead
// (cudnnFindConvolutionForwardAlgorithmEx, during the first eager run only): sometimes faster, but the
// choice can change from run to run.
#pragma once

#include <cstdint>
#include <string>

namespace blr {

class CudaOps;

enum class ConvPath : uint8_t { Auto, Cudnn, Direct };

// Forces the path for convolution shapes first seen after this call (cached plans are dropped).
// Cudnn then throws where cuDNN has no working algorithm.
void set_conv_path(CudaOps& ops, ConvPath path);
// What the last conv2d call on `ops` ran, e.g. "cudnn:IMPLICIT_PRECOMP_GEMM(ws=0 B)" or "direct".
std::string last_conv_path(CudaOps& ops);

}  // namespace blr
