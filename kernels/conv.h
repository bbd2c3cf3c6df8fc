// Convolution helpers next to cuDNN (see conv.cu): a direct NHWC convolution for shapes cuDNN does not
// serve, and the per-channel bias add after a cuDNN convolution. Raw pointers, shapes, dtypes, streams.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_types.h"

namespace blr::kern {

// x [batch, height, width, in_channels], w [out_channels, kernel_h, kernel_w, in_channels] (KRSC),
// y [batch, out_height, out_width, out_channels]; all contiguous. Symmetric zero padding.
struct Conv2dShape {
  int batch = 0;
  int height = 0;
  int width = 0;
  int in_channels = 0;
  int out_channels = 0;
  int kernel_h = 0;
  int kernel_w = 0;
  int stride = 1;
  int pad = 0;
  int out_height = 0;
  int out_width = 0;
};

// y = conv(x, w) + bias (bias [out_channels] or null), fp32 accumulation, any shape and dtype.
cudaError_t conv2d_direct(DT dt, const Conv2dShape& s, const void* x, const void* w, const void* bias, void* y,
                          cudaStream_t stream);

// y[p, c] += bias[c] for p < pixels, c < channels (y contiguous [pixels, channels]).
cudaError_t add_channel_bias(DT dt, void* y, const void* bias, int64_t pixels, int channels, cudaStream_t stream);

}  // namespace blr::kern
