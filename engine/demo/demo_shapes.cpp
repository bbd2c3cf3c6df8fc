#include "engine/demo/demo_shapes.h"

#include <algorithm>
#include <cmath>

#include "engine/core/error.h"

namespace blr::demo {

namespace {

// The distributions (normalised units), as in tools/demo_data.py: change both together.
constexpr float kCenterJitter = 0.16f;
constexpr float kRadius[2] = {0.20f, 0.34f};
constexpr float kPeriod[2] = {0.17f, 0.27f};
constexpr float kGradient = 0.30f;
constexpr float kNoise = 0.04f;
constexpr float kMinContrast = 0.45f;
constexpr float kPi = 3.14159265358979323846f;

float fract(float v) { return v - std::floor(v); }

// Signed distance (negative inside) to bands half a period wide, centred on multiples of the period.
float stripe(float coord, float period) { return (std::fabs(fract(coord / period) - 0.5f) - 0.25f) * period; }

float clamp01(float v) { return std::min(1.0f, std::max(0.0f, v)); }

// Standard normal from two uniforms (Box-Muller): portable, unlike std::normal_distribution.
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) : rng_(seed) {}
  float next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = (static_cast<double>(rng_() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    const double m = std::sqrt(-2.0 * std::log(u1));
    spare_ = static_cast<float>(m * std::sin(2.0 * 3.14159265358979323846 * u2));
    has_spare_ = true;
    return static_cast<float>(m * std::cos(2.0 * 3.14159265358979323846 * u2));
  }

 private:
  std::mt19937_64 rng_;
  float spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace

const std::vector<std::string>& class_names() {
  static const std::vector<std::string> names = {"circle",  "square",       "triangle", "ring", "cross",
                                                 "star",    "stripes",      "checkerboard", "dots", "target"};
  return names;
}

float ShapeSampler::uniform() { return static_cast<float>(static_cast<double>(rng_() >> 11) * 0x1.0p-53); }

ShapeParams ShapeSampler::sample(int cls) {
  if (cls >= kNumClasses) throw InputError(cat("demo shapes: class ", cls, " is out of range 0..", kNumClasses - 1));
  ShapeParams p;
  const int drawn = static_cast<int>(rng_() % kNumClasses);
  p.cls = cls >= 0 ? cls : drawn;
  for (float& c : p.bg) c = uniform();
  for (float& c : p.fg) c = uniform();
  p.cx = 0.5f + (uniform() * 2 - 1) * kCenterJitter;
  p.cy = 0.5f + (uniform() * 2 - 1) * kCenterJitter;
  p.radius = kRadius[0] + uniform() * (kRadius[1] - kRadius[0]);
  p.angle = uniform() * 2 * kPi;
  p.period = kPeriod[0] + uniform() * (kPeriod[1] - kPeriod[0]);
  p.grad_angle = uniform() * 2 * kPi;
  p.grad_amp = uniform() * kGradient;
  p.noise = uniform() * kNoise;
  p.noise_seed = rng_();
  float dist2 = 0;
  for (int c = 0; c < 3; ++c) dist2 += (p.fg[c] - p.bg[c]) * (p.fg[c] - p.bg[c]);
  if (std::sqrt(dist2) < kMinContrast)
    for (int c = 0; c < 3; ++c) p.fg[c] = fract(p.bg[c] + 0.5f);
  return p;
}

float coverage(const ShapeParams& p, float x, float y, float pixel) {
  const float dx = x - p.cx, dy = y - p.cy;
  const float c = std::cos(p.angle), s = std::sin(p.angle);
  const float a = c * dx + s * dy, b = -s * dx + c * dy;  // rotated coordinates
  const float R = p.radius, P = p.period;
  const float rad = std::sqrt(a * a + b * b);
  auto alpha = [&](float d) { return clamp01(0.5f - d / pixel); };
  switch (p.cls) {
    case 0: return alpha(rad - R);                                             // circle
    case 1: return alpha(std::max(std::fabs(a), std::fabs(b)) - 0.8f * R);    // square
    case 2: {                                                                  // triangle, circumradius R
      float e = -1e30f;
      for (int k = 0; k < 3; ++k) {
        const float phi = kPi / 2 + 2 * kPi * static_cast<float>(k) / 3;
        e = std::max(e, a * std::cos(phi) + b * std::sin(phi));
      }
      return alpha(e - 0.5f * R);
    }
    case 3: return alpha(std::fabs(rad - 0.75f * R) - 0.18f * R);             // ring
    case 4: {                                                                  // cross (plus sign)
      const float t = 0.28f * R, aa = std::fabs(a), bb = std::fabs(b);
      return alpha(std::min(std::max(aa - R, bb - t), std::max(aa - t, bb - R)));
    }
    case 5: {                                                                  // star, 5 points
      const float g = fract(std::atan2(b, a) * (5 / (2 * kPi)));
      return alpha(rad - R * (0.45f + 0.55f * (1 - 2 * std::fabs(g - 0.5f))));
    }
    case 6: return alpha(stripe(a, P));                                        // stripes
    case 7: {                                                                  // checkerboard: XOR of stripes
      const float sa = alpha(stripe(a, 1.4f * P)), sb = alpha(stripe(b, 1.4f * P));
      return sa + sb - 2 * sa * sb;
    }
    case 8: {                                                                  // dots
      const float cell = 1.25f * P;
      const float la = fract(a / cell) - 0.5f, lb = fract(b / cell) - 0.5f;
      return alpha(std::sqrt(la * la + lb * lb) * cell - 0.3f * P);
    }
    case 9: return alpha(stripe(rad, P));                                      // target
    default: throw InputError(cat("demo shapes: class ", p.cls, " is out of range 0..", kNumClasses - 1));
  }
}

Tensor render(const ShapeParams& p, int size, bool bgr) {
  if (size < 1) throw InputError(cat("demo shapes: picture size ", size, " must be positive"));
  Tensor img = Tensor::zeros({size, size, 3}, DType::U8);
  uint8_t* px = img.data_as<uint8_t>();
  Gaussian noise(p.noise_seed);
  const float pixel = 1.0f / static_cast<float>(size);
  const float gc = std::cos(p.grad_angle), gs = std::sin(p.grad_angle);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const float u = (static_cast<float>(x) + 0.5f) * pixel, v = (static_cast<float>(y) + 0.5f) * pixel;
      const float al = coverage(p, u, v, pixel);
      const float shade = p.grad_amp * (gc * (u - 0.5f) + gs * (v - 0.5f));
      for (int c = 0; c < 3; ++c) {
        const float val = (p.bg[c] + shade) * (1 - al) + p.fg[c] * al + noise.next() * p.noise;
        const int ch = bgr ? 2 - c : c;
        px[(static_cast<int64_t>(y) * size + x) * 3 + ch] = static_cast<uint8_t>(std::lround(clamp01(val) * 255.0f));
      }
    }
  return img;
}

std::vector<LabelledPicture> balanced_set(int count, uint64_t seed, int size, bool bgr) {
  if (count < 0) throw InputError(cat("demo shapes: picture count ", count, " must be >= 0"));
  ShapeSampler sampler(seed);
  std::vector<LabelledPicture> out;
  out.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    LabelledPicture lp;
    lp.params = sampler.sample(i % kNumClasses);
    lp.image = render(lp.params, size, bgr);
    out.push_back(std::move(lp));
  }
  return out;
}

}  // namespace blr::demo
