#include <cmath>

#include "engine/backend/cpu/cpu_ops.h"

namespace blr {

float apply_act(Act act, float v) {
  switch (act) {
    case Act::None: return v;
    // x·½·erfc(−x/√2) = x·½·(1 + erf(x/√2)) without the cancellation of 1 + erf for negative x (see
    // kernels/common.cuh, which computes the same form).
    case Act::GeluErf: return 0.5f * v * std::erfc(v * -0.70710678118654752f);
    case Act::GeluTanh: {
      const float c = 0.79788456080286536f;  // sqrt(2/pi)
      return 0.5f * v * (1.0f + std::tanh(c * (v + 0.044715f * v * v * v)));
    }
    case Act::Silu: return v / (1.0f + std::exp(-v));
  }
  return v;
}

}  // namespace blr
