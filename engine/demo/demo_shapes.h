// The demo-shapes pictures in C++: the ten classes the built-in demo models were trained on (circle,
// square, triangle, ring, cross, star, stripes, checkerboard, dots, target), drawn from the same
// distributions as tools/demo_data.py — same parameters, same formulas, in normalised coordinates so any
// resolution shows the same picture. Not pixel-identical to Python (its own random numbers), but the same
// classes from the same distributions. Used by tests (a fixed, seeded set of pictures the demo ViT must
// name), by `blr demo` (test pictures, the demo video) and anywhere a picture of a known class is needed.
// Random numbers come from std::mt19937_64 with hand-written uniform/normal transforms, so a seed gives
// the same pictures with every compiler and library.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace blr::demo {

constexpr int kNumClasses = 10;
const std::vector<std::string>& class_names();  // index order, as in the models' "class_names" metadata

// Everything that decides one picture (normalised units: the picture spans [0, 1]²).
struct ShapeParams {
  int cls = 0;
  float bg[3] = {0, 0, 0}, fg[3] = {1, 1, 1};  // RGB in [0, 1]
  float cx = 0.5f, cy = 0.5f;                   // centre
  float radius = 0.25f;                         // shape size R
  float angle = 0;                              // rotation (radians)
  float period = 0.2f;                          // pattern period P
  float grad_angle = 0, grad_amp = 0;           // background brightness gradient
  float noise = 0;                              // per-pixel Gaussian noise sigma
  uint64_t noise_seed = 0;
};

// Seeded source of pictures. sample(-1) draws the class too; sample(k) forces class k and draws the rest
// exactly as it would have otherwise.
class ShapeSampler {
 public:
  explicit ShapeSampler(uint64_t seed) : rng_(seed) {}
  ShapeParams sample(int cls = -1);
  float uniform();  // [0, 1)

 private:
  std::mt19937_64 rng_;
};

// Foreground coverage of pixel centre (x, y) in normalised coordinates, anti-aliased over `pixel` (the
// size of one pixel in normalised units): 1 inside, 0 outside.
float coverage(const ShapeParams& p, float x, float y, float pixel);

// Host u8 [size, size, 3] picture, RGB (or BGR for OpenCV/ViT frames). Noise from p.noise_seed.
Tensor render(const ShapeParams& p, int size, bool bgr = false);

// `count` pictures with classes cycling 0, 1, ..., 9, 0, ... (balanced), parameters from `seed`.
struct LabelledPicture {
  ShapeParams params;
  Tensor image;  // u8 [size, size, 3]
};
std::vector<LabelledPicture> balanced_set(int count, uint64_t seed, int size, bool bgr = false);

}  // namespace blr::demo
