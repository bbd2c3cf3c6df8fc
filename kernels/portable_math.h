// Float functions that give bit-identical results on the host and on the GPU, for code that must agree
// exactly across backends (noise generation, the sampler update). Only correctly rounded IEEE operations
// are used: explicit fma, mul, add, div, sqrt and exact bit manipulation. On the device the _rn
// intrinsics also stop nvcc from contracting a mul and an add into an fma on its own; on the host every
// mul-add is an explicit std::fma and every plain product is rounded through a volatile, so contraction
// settings do not matter either. log/exp/sin/cos are short polynomials after exact argument reduction
// (≈1e-7 relative error): plenty for noise and a variance factor, and identical everywhere, unlike libm
// and libdevice.
// No engine includes: usable from kernels/ and from the CPU reference alike.
#pragma once

#include <stdint.h>

#include <cmath>
#include <cstring>

#if defined(__CUDACC__)
#define BLR_PM_HD __host__ __device__ __forceinline__
#else
#define BLR_PM_HD inline
#endif

namespace blr::philox {

BLR_PM_HD float fmul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  // The volatile store rounds the product, so no host compiler can fuse it into a following add (GCC
  // contracts across statements under -ffp-contract=fast, its default for C++ on FMA targets like aarch64).
  volatile float r = a * b;
  return r;
#endif
}
BLR_PM_HD float fadd(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
BLR_PM_HD float ffma(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
BLR_PM_HD float fdiv(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
BLR_PM_HD float fsqrt(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}
BLR_PM_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
BLR_PM_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// Natural log of a positive normal float: x = m·2^e with m in [√½, √2), ln m = 2·atanh(s),
// s = (m−1)/(m+1), |s| ≤ 0.172, series to s^11 (truncation < 1e-9).
BLR_PM_HD float log_positive(float x) {
  const uint32_t bits = float_bits(x);
  int e = static_cast<int>((bits >> 23) & 0xffu) - 127;
  float m = bits_float((bits & 0x7fffffu) | 0x3f800000u);  // [1, 2)
  if (m > 1.41421356f) {
    m = fmul(m, 0.5f);  // exact
    e += 1;
  }
  const float s = fdiv(fadd(m, -1.0f), fadd(m, 1.0f));
  const float s2 = fmul(s, s);
  float p = ffma(s2, 2.0f / 11.0f, 2.0f / 9.0f);
  p = ffma(s2, p, 2.0f / 7.0f);
  p = ffma(s2, p, 2.0f / 5.0f);
  p = ffma(s2, p, 2.0f / 3.0f);
  const float lnm = ffma(fmul(s, s2), p, fmul(2.0f, s));
  const float fe = static_cast<float>(e);
  // ln 2 split so that fe·hi is exact (|e| < 2^8, hi has 16 significant bits).
  return ffma(fe, 0.693145751953125f, ffma(fe, 1.428606820309417232e-6f, lnm));
}

// sin and cos of 2π·u for u = k·2^-24 in [0, 1): quadrant from 4u (exact), then the angle
// π/4 + φ with |φ| ≤ π/4 by Taylor series (truncation < 1e-9).
BLR_PM_HD void sincos_2pi(float u, float* s_out, float* c_out) {
  const float u4 = fmul(u, 4.0f);                // exact
  const int q = static_cast<int>(u4);            // 0..3
  const float g = fadd(fadd(u4, -static_cast<float>(q)), -0.5f);  // exact, in [-0.5, 0.5)
  const float phi = fmul(g, 1.57079632679489662f);
  const float p2 = fmul(phi, phi);
  float sp = ffma(p2, 1.0f / 362880.0f, -1.0f / 5040.0f);
  sp = ffma(p2, sp, 1.0f / 120.0f);
  sp = ffma(p2, sp, -1.0f / 6.0f);
  const float sin_phi = ffma(fmul(phi, p2), sp, phi);
  float cp = ffma(p2, -1.0f / 3628800.0f, 1.0f / 40320.0f);
  cp = ffma(p2, cp, -1.0f / 720.0f);
  cp = ffma(p2, cp, 1.0f / 24.0f);
  cp = ffma(p2, cp, -0.5f);
  const float cos_phi = ffma(p2, cp, 1.0f);
  const float r = 0.707106781186547524f;
  const float S = fmul(fadd(sin_phi, cos_phi), r);   // sin(π/4 + φ)
  const float C = fmul(fadd(cos_phi, -sin_phi), r);  // cos(π/4 + φ)
  switch (q & 3) {
    case 0: *s_out = S; *c_out = C; break;
    case 1: *s_out = C; *c_out = -S; break;
    case 2: *s_out = -S; *c_out = -C; break;
    default: *s_out = -C; *c_out = S; break;
  }
}

BLR_PM_HD float fround(float a) {  // to nearest, ties to even
#if defined(__CUDA_ARCH__)
  return rintf(a);
#else
  return std::nearbyint(a);
#endif
}

// e^x for x in [−87, 88] (clamped outside): x = n·ln2 + r with |r| ≤ ln2/2 (Cody-Waite, exact n·ln2_hi),
// Taylor series to r^7 (truncation < 1e-8), scaled by 2^n through the exponent bits.
BLR_PM_HD float exp_f(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = fround(fmul(x, 1.44269504088896341f));
  float r = ffma(-n, 0.693145751953125f, x);
  r = ffma(-n, 1.428606820309417232e-6f, r);
  float p = ffma(r, 1.0f / 5040.0f, 1.0f / 720.0f);
  p = ffma(r, p, 1.0f / 120.0f);
  p = ffma(r, p, 1.0f / 24.0f);
  p = ffma(r, p, 1.0f / 6.0f);
  p = ffma(r, p, 0.5f);
  p = ffma(r, p, 1.0f);
  p = ffma(r, p, 1.0f);
  const int e = static_cast<int>(n);  // −126 ≤ e ≤ 127 after the clamp
  return fmul(p, bits_float(static_cast<uint32_t>(e + 127) << 23));
}

}  // namespace blr::philox
