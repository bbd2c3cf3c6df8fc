// Small helpers shared by the CPU and GPU compression paths: input checks and trivial results.
#pragma once

#include "engine/nn/linear.h"

namespace blr::compress_detail {

// Contiguous host f32 copy (no copy when it already is one).
Tensor host_f32(const Tensor& t);
// host_f32(W) after checking it is a 2-D matrix of finite values that `spec` can factor (InputError).
Tensor checked_host_f32(const Tensor& W, const LinearSpec& spec);
bool all_zero(const Tensor& host_f32);
// A layer of `spec`'s kind and shape whose factors are all zero (the exact answer for W = 0).
Linear zero_layer(const LinearSpec& spec, int64_t in, int64_t out);

}  // namespace blr::compress_detail
