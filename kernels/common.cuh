// Shared device helpers for kernels/: the element-type tag launchers take, conversions between storage
// types and fp32, and a launch-error helper. Nothing here knows about the engine or any model.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/kernel_types.h"

namespace blr::kern {

template <typename T> __device__ __forceinline__ float to_f32(T v);
template <> __device__ __forceinline__ float to_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f32<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// GELU-erf is written x·½·erfc(−x/√2), which equals x·½·(1 + erf(x/√2)) but has no cancellation for
// negative x: there 1 + erf(·) loses all but a few bits (at x = −4, a 1-ulp difference in erff changed the
// result by 1e-3 relative), while erfc of a positive argument keeps full relative precision. The CPU
// reference (engine/backend/cpu/cpu_act.cpp) uses the same form.
__device__ __forceinline__ float apply_act(Act act, float v) {
  switch (act) {
    case Act::GeluErf: return 0.5f * v * erfcf(v * -0.70710678118654752f);
    case Act::GeluTanh: return 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    case Act::Silu: return v / (1.0f + __expf(-v));
    default: return v;
  }
}

// Calls f.template operator()<T>() with T the C++ type for `dt`: dispatch_dtype(dt, [&](auto tag) {...}).
template <typename F>
cudaError_t dispatch_dtype(DT dt, F&& f) {
  switch (dt) {
    case DT::F32: return f(float{});
    case DT::F16: return f(__half{});
    case DT::BF16: return f(__nv_bfloat16{});
  }
  return cudaErrorInvalidValue;
}

inline unsigned ceil_div(long long a, long long b) { return static_cast<unsigned>((a + b - 1) / b); }

}  // namespace blr::kern
