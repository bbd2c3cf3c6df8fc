// Device helpers shared by the memory-bound kernel families (norm, elementwise, image): packed vector
// loads/stores that convert to and from fp32, warp/block reductions that give every thread the same
// (bitwise) result in a fixed order, and a division by a run-time invariant that costs a multiply-high
// instead of a ~20-instruction integer divide in index arithmetic.
#pragma once

#include <cstdint>

#include "kernels/common.cuh"

namespace blr::kern {

// Raw integer type of a packed access of `Bytes` bytes.
template <int Bytes> struct RawVec;
template <> struct RawVec<16> { using type = uint4; };
template <> struct RawVec<8> { using type = uint2; };
template <> struct RawVec<4> { using type = unsigned int; };
template <> struct RawVec<2> { using type = unsigned short; };
template <> struct RawVec<1> { using type = unsigned char; };

// Widest element count per access: 16 bytes.
template <typename T> constexpr int kMaxVec = 16 / static_cast<int>(sizeof(T));

// Bit patterns of the storage types, so packing into 32-bit words is explicit integer work.
template <typename T> __device__ __forceinline__ uint32_t to_bits(T v);
template <> __device__ __forceinline__ uint32_t to_bits<float>(float v) { return __float_as_uint(v); }
template <> __device__ __forceinline__ uint32_t to_bits<__half>(__half v) { return __half_as_ushort(v); }
template <> __device__ __forceinline__ uint32_t to_bits<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat16_as_ushort(v);
}
template <typename T> __device__ __forceinline__ T from_bits(uint32_t b);
template <> __device__ __forceinline__ float from_bits<float>(uint32_t b) { return __uint_as_float(b); }
template <> __device__ __forceinline__ __half from_bits<__half>(uint32_t b) {
  return __ushort_as_half(static_cast<unsigned short>(b));
}
template <> __device__ __forceinline__ __nv_bfloat16 from_bits<__nv_bfloat16>(uint32_t b) {
  return __ushort_as_bfloat16(static_cast<unsigned short>(b));
}

// N·sizeof(T) bytes as 32-bit words (N·sizeof(T) is 4, 8 or 16), one aligned access.
template <int Words>
__device__ __forceinline__ void load_words(const void* p, uint32_t (&w)[Words]) {
  if constexpr (Words == 4) {
    const uint4 r = *static_cast<const uint4*>(p);
    w[0] = r.x, w[1] = r.y, w[2] = r.z, w[3] = r.w;
  } else if constexpr (Words == 2) {
    const uint2 r = *static_cast<const uint2*>(p);
    w[0] = r.x, w[1] = r.y;
  } else {
    w[0] = *static_cast<const uint32_t*>(p);
  }
}
template <int Words>
__device__ __forceinline__ void store_words(void* p, const uint32_t (&w)[Words]) {
  // __stwb is the ordinary (write-back) store, spelled so that it stays one vector instruction: a plain
  // struct assignment is sometimes split into 4-byte stores.
  if constexpr (Words == 4) {
    __stwb(static_cast<uint4*>(p), make_uint4(w[0], w[1], w[2], w[3]));
  } else if constexpr (Words == 2) {
    __stwb(static_cast<uint2*>(p), make_uint2(w[0], w[1]));
  } else {
    *static_cast<uint32_t*>(p) = w[0];
  }
}

// Loads N consecutive elements of T (address aligned to N*sizeof(T)) as fp32.
template <typename T, int N>
__device__ __forceinline__ void load_vec(const T* p, float (&out)[N]) {
  constexpr int kBytes = N * static_cast<int>(sizeof(T));
  if constexpr (kBytes < 4) {
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = to_f32<T>(p[i]);
  } else {
    uint32_t w[kBytes / 4];
    load_words<kBytes / 4>(p, w);
#pragma unroll
    for (int i = 0; i < N; ++i) {
      const uint32_t bits = sizeof(T) == 4 ? w[i] : (w[i / 2] >> (16 * (i % 2))) & 0xffffu;
      out[i] = to_f32<T>(from_bits<T>(bits));
    }
  }
}

// Stores N fp32 values as consecutive elements of T (address aligned to N*sizeof(T)).
template <typename T, int N>
__device__ __forceinline__ void store_vec(T* p, const float (&in)[N]) {
  constexpr int kBytes = N * static_cast<int>(sizeof(T));
  if constexpr (kBytes < 4) {
#pragma unroll
    for (int i = 0; i < N; ++i) p[i] = from_f32<T>(in[i]);
  } else {
    uint32_t w[kBytes / 4];
#pragma unroll
    for (int i = 0; i < kBytes / 4; ++i) w[i] = 0;
#pragma unroll
    for (int i = 0; i < N; ++i) {
      const uint32_t bits = to_bits<T>(from_f32<T>(in[i]));
      if (sizeof(T) == 4)
        w[i] = bits;
      else
        w[i / 2] |= bits << (16 * (i % 2));
    }
    store_words<kBytes / 4>(p, w);
  }
}

// Rounds v to T's precision and back: what a value reads as after a store/load round trip.
template <typename T>
__device__ __forceinline__ float round_to(float v) {
  return to_f32<T>(from_f32<T>(v));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Block-wide sum/max for blockDim.x a multiple of 32 (at most 1024); `sh` holds 32 floats. Every warp
// reduces the per-warp partials itself, so all threads return the same value with one barrier pair.
// The leading barrier lets the same `sh` be reused by consecutive calls.
__device__ __forceinline__ float block_sum(float v, float* sh) {
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  return warp_sum(lane < nwarps ? sh[lane] : 0.0f);
}

__device__ __forceinline__ float block_max(float v, float* sh) {
  v = warp_max(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  return warp_max(lane < nwarps ? sh[lane] : -INFINITY);
}

// A row is handled by a warp (several rows per block) or by the whole block.
template <bool kWarpRow>
struct RowGroup {
  static __device__ __forceinline__ int size() { return kWarpRow ? 32 : static_cast<int>(blockDim.x); }
  static __device__ __forceinline__ int rank() {
    return kWarpRow ? static_cast<int>(threadIdx.x & 31) : static_cast<int>(threadIdx.x);
  }
  static __device__ __forceinline__ int64_t row() {
    return kWarpRow ? static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5)
                    : static_cast<int64_t>(blockIdx.x);
  }
  static __device__ __forceinline__ float sum(float v, float* sh) { return kWarpRow ? warp_sum(v) : block_sum(v, sh); }
  static __device__ __forceinline__ float max(float v, float* sh) { return kWarpRow ? warp_max(v) : block_max(v, sh); }
};

// n / d for 0 <= n < 2^31 and 1 <= d < 2^31 with one multiply-high and a shift (Granlund & Montgomery,
// "Division by invariant integers using multiplication", 1994). Constructed on the host.
struct FastDiv {
  uint32_t d = 1, magic = 1, shift = 0;
  FastDiv() = default;
  __host__ explicit FastDiv(uint32_t divisor) : d(divisor) {
    shift = 0;
    while (shift < 32 && (uint64_t{1} << shift) < divisor) ++shift;
    magic = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - divisor)) / divisor + 1);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const { return (__umulhi(n, magic) + n) >> shift; }
};

// Launch sizes are kept below this so 32-bit index arithmetic (and FastDiv) is exact; larger problems are
// split into several launches by the host code.
constexpr int64_t kMaxIndex32 = (int64_t{1} << 31) - 1;

// True when p is aligned to `bytes`.
inline bool aligned_to(const void* p, int64_t bytes) {
  return (reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(bytes)) == 0;
}

}  // namespace blr::kern
