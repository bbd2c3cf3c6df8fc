// Counter-based normal noise shared by the host (CPU reference sampler, initial latents) and the device
// (the CUDA sampler kernel), bit-identical on both.
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) maps a 128-bit
// counter and a 64-bit key to 128 random bits with no state, so noise element e of image b at sampling
// step s is a pure function of (seed_b, s, e): it does not depend on batch position, thread layout or
// what ran before. Two pairs of 32-bit words become four normals through Box-Muller.
//
// Box-Muller needs log, sin and cos; those come from kernels/portable_math.h, which evaluates them with
// correctly rounded operations only, so host and device produce the same bits (libm and libdevice differ
// in the last bit, which a CPU reference that must reproduce GPU noise exactly cannot tolerate).
//
// Layout convention (engine/diffusion/noise.h documents it for users): key = the 64-bit seed,
// counter = {element / 4, step, stream, 0}; element e takes lane e % 4 of the block.
#pragma once

#include <stdint.h>

#include "kernels/portable_math.h"

namespace blr::philox {

// Noise streams: which random sequence a counter belongs to.
constexpr uint32_t kStreamStepNoise = 0;     // the noise added by sampling step `step`
constexpr uint32_t kStreamInitialLatent = 1; // the starting latent x_T (step word = 0)

struct Block {
  uint32_t v[4];
};

BLR_PM_HD uint32_t mulhi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// Philox4x32 with 10 rounds; matches the Random123 known-answer vectors.
BLR_PM_HD Block philox4x32_10(Block ctr, uint32_t key0, uint32_t key1) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key0 += W0;
      key1 += W1;
    }
    const uint32_t hi0 = mulhi32(M0, ctr.v[0]), lo0 = M0 * ctr.v[0];
    const uint32_t hi1 = mulhi32(M1, ctr.v[2]), lo1 = M1 * ctr.v[2];
    Block next;
    next.v[0] = hi1 ^ ctr.v[1] ^ key0;
    next.v[1] = lo1;
    next.v[2] = hi0 ^ ctr.v[3] ^ key1;
    next.v[3] = lo0;
    ctr = next;
  }
  return ctr;
}

// Box-Muller on two 32-bit words: u1 in (0, 1], u2 in [0, 1), 24 bits each.
BLR_PM_HD void box_muller(uint32_t a, uint32_t b, float* z0, float* z1) {
  const float u1 = fmul(static_cast<float>((a >> 8) + 1u), 5.9604644775390625e-8f);  // ·2^-24, exact
  const float u2 = fmul(static_cast<float>(b >> 8), 5.9604644775390625e-8f);
  const float radius = fsqrt(fmul(-2.0f, log_positive(u1)));
  float s, c;
  sincos_2pi(u2, &s, &c);
  *z0 = fmul(radius, c);
  *z1 = fmul(radius, s);
}

// Four standard normals for elements [4·group, 4·group + 4) of (seed, step, stream).
BLR_PM_HD void normal4(uint64_t seed, uint32_t step, uint32_t stream, uint32_t group, float out[4]) {
  Block ctr;
  ctr.v[0] = group;
  ctr.v[1] = step;
  ctr.v[2] = stream;
  ctr.v[3] = 0;
  const Block r = philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  box_muller(r.v[0], r.v[1], &out[0], &out[1]);
  box_muller(r.v[2], r.v[3], &out[2], &out[3]);
}

// One standard normal: element `index` of (seed, step, stream).
BLR_PM_HD float normal(uint64_t seed, uint32_t step, uint32_t stream, uint32_t index) {
  float z[4];
  normal4(seed, step, stream, index >> 2, z);
  return z[index & 3u];
}

}  // namespace blr::philox
