// Helpers for the CPU reference-op tests: element-wise comparison against expected values computed in
// the test itself (by hand or by a second formula), with failure messages naming where and by how much.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace blr::test {

// Expects every element of `got` (row-major order of the view) within `tol` of `want`; on failure
// reports the count, the worst element's flat index, its values, and the largest error.
inline void expect_all_near(const Tensor& got, const std::vector<double>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size())) << what << ": " << got.describe() << " vs " << want.size()
                                                            << " expected values";
  int64_t bad = 0, worst = -1;
  double max_err = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.flat(i), err = std::fabs(g - want[i]);
    if (!(err <= tol)) {
      ++bad;
      if (worst < 0 || !(err <= max_err)) worst = i, max_err = err;
    }
  }
  EXPECT_EQ(bad, 0) << what << " " << got.describe() << ": " << bad << " elements off by more than " << tol
                    << "; worst at flat index " << worst << ": got " << (worst >= 0 ? got.flat(worst) : 0.0)
                    << ", expected " << (worst >= 0 ? want[worst] : 0.0) << " (error " << max_err << ")";
}

// Largest |want| (for tolerances relative to an output's scale).
inline double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// Flat row-major index of a 4-D position.
inline int64_t idx4(const Shape& s, int64_t a, int64_t b, int64_t c, int64_t d) {
  return ((a * s[1] + b) * s[2] + c) * s[3] + d;
}

}  // namespace blr::test
