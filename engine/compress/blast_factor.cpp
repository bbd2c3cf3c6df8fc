// Shared pieces of the BLAST factorisation: the seeded initial factors and the step-size schedule.
#include "engine/compress/blast_factor.h"

#include <cmath>

namespace blr::blast_detail {

namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in (0, 1]: never 0, so log() below is finite.
double uniform01(uint64_t& state) { return (static_cast<double>(splitmix64(state) >> 11) + 1.0) * 0x1.0p-53; }

}  // namespace

void fill_normal(std::vector<float>& out, uint64_t seed, uint64_t stream, double scale) {
  uint64_t state = seed * 0x2545F4914F6CDD1Dull + stream * 0x9E3779B97F4A7C15ull + 0x1234567ull;
  const double two_pi = 6.283185307179586476925286766559;
  for (size_t i = 0; i < out.size(); i += 2) {
    const double u1 = uniform01(state), u2 = uniform01(state);
    const double rad = std::sqrt(-2.0 * std::log(u1));
    out[i] = static_cast<float>(scale * rad * std::cos(two_pi * u2));
    if (i + 1 < out.size()) out[i + 1] = static_cast<float>(scale * rad * std::sin(two_pi * u2));
  }
}

Init initial_factors(int64_t b, int64_t p, int64_t q, int64_t r, uint64_t seed) {
  Init init;
  init.U.resize(static_cast<size_t>(b * p * r));
  init.V.resize(static_cast<size_t>(b * r * q));
  init.S.resize(static_cast<size_t>(b * b * r));
  const double small = 0.001 / std::sqrt(static_cast<double>(r));
  fill_normal(init.U, seed, 1, small);
  fill_normal(init.V, seed, 2, small);
  fill_normal(init.S, seed, 3, 1.0);
  return init;
}

double step_size(double lr, double end_factor, int t, int T) {
  return lr * (1.0 - (1.0 - end_factor) * static_cast<double>(t) / static_cast<double>(T));
}

void moments(const float* w, int64_t n, double* stddev, double* sumsq) {
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum += w[i];
    sq += static_cast<double>(w[i]) * w[i];
  }
  *sumsq = sq;
  const double mean = n > 0 ? sum / static_cast<double>(n) : 0.0;
  double var = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = w[i] - mean;
    var += d * d;
  }
  *stddev = n > 1 ? std::sqrt(var / static_cast<double>(n - 1)) : 0.0;
}

}  // namespace blr::blast_detail
