// The C++ demo-shapes renderer (engine/demo): deterministic by seed, a forced class changes nothing but the
// class, each class has the geometry it is named for, and the demo video's frames walk through every class.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "engine/core/error.h"
#include "engine/demo/demo_shapes.h"
#include "engine/demo/demo_video.h"

namespace blr {
namespace {

using demo::ShapeParams;

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

TEST(DemoShapes, SameSeedGivesSamePicturesAndAnotherSeedOthers) {
  const auto a = demo::balanced_set(20, 7, 32), b = demo::balanced_set(20, 7, 32), c = demo::balanced_set(20, 8, 32);
  ASSERT_EQ(a.size(), 20u);
  int differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(same_bytes(a[i].image, b[i].image)) << "picture " << i << " differs between two runs of seed 7";
    EXPECT_EQ(a[i].params.cls, static_cast<int>(i % demo::kNumClasses)) << "classes must cycle 0..9";
    differ += same_bytes(a[i].image, c[i].image) ? 0 : 1;
  }
  EXPECT_EQ(differ, 20) << "seed 8 should give different pictures from seed 7";
}

TEST(DemoShapes, ForcingTheClassKeepsEveryOtherDraw) {
  demo::ShapeSampler free(11), forced(11);
  for (int i = 0; i < 30; ++i) {
    const ShapeParams p = free.sample(), q = forced.sample(i % demo::kNumClasses);
    EXPECT_EQ(q.cls, i % demo::kNumClasses);
    EXPECT_EQ(p.cx, q.cx);
    EXPECT_EQ(p.radius, q.radius);
    EXPECT_EQ(p.noise_seed, q.noise_seed);
    for (int c = 0; c < 3; ++c) EXPECT_EQ(p.fg[c], q.fg[c]);
  }
}

TEST(DemoShapes, ColoursAreInRangeWithContrast) {
  demo::ShapeSampler s(3);
  for (int i = 0; i < 500; ++i) {
    const ShapeParams p = s.sample();
    float d2 = 0;
    for (int c = 0; c < 3; ++c) {
      EXPECT_GE(p.fg[c], 0.0f);
      EXPECT_LT(p.fg[c], 1.0f);
      d2 += (p.fg[c] - p.bg[c]) * (p.fg[c] - p.bg[c]);
    }
    // fg is replaced by (bg + 0.5) mod 1 below the minimum contrast: then every channel differs by 0.5.
    EXPECT_GE(d2, 0.45f * 0.45f - 1e-5f) << "picture " << i << ": foreground too close to the background";
    EXPECT_GE(p.cls, 0);
    EXPECT_LT(p.cls, demo::kNumClasses);
  }
}

// Mean coverage over a fine grid, for a centred, unrotated picture.
double mean_coverage(int cls, float period = 0.2f) {
  ShapeParams p;
  p.cls = cls;
  p.radius = 0.3f;
  p.period = period;
  double sum = 0;
  const int n = 200;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) sum += demo::coverage(p, (x + 0.5f) / n, (y + 0.5f) / n, 1.0f / n);
  return sum / (n * n);
}

TEST(DemoShapes, EachClassHasItsGeometry) {
  ShapeParams p;
  p.radius = 0.3f;
  const float px = 1.0f / 256;
  auto at = [&](int cls, float x, float y) {
    p.cls = cls;
    return demo::coverage(p, x, y, px);
  };
  // Filled shapes cover their centre; the ring does not, but covers 0.75 R out.
  for (int cls : {0, 1, 2, 4, 5}) EXPECT_EQ(at(cls, 0.5f, 0.5f), 1.0f) << demo::class_names()[cls];
  EXPECT_EQ(at(3, 0.5f, 0.5f), 0.0f) << "ring centre";
  EXPECT_EQ(at(3, 0.5f + 0.75f * 0.3f, 0.5f), 1.0f) << "ring band";
  // Circle area π R², square (1.6 R)², cross: two 2R × 0.56R bars overlapping in a 0.56R square.
  EXPECT_NEAR(mean_coverage(0), 3.14159 * 0.09, 0.003);
  EXPECT_NEAR(mean_coverage(1), 0.48 * 0.48, 0.003);
  EXPECT_NEAR(mean_coverage(4), 2 * 0.6 * 0.168 - 0.168 * 0.168, 0.003);
  // Corners of the picture are background for shapes.
  for (int cls = 0; cls < 6; ++cls) EXPECT_EQ(at(cls, 0.02f, 0.02f), 0.0f) << demo::class_names()[cls];
  // Patterns fill the picture: stripes, checkerboard and target about half, dots less.
  for (int cls : {6, 7, 9}) EXPECT_NEAR(mean_coverage(cls), 0.5, 0.06) << demo::class_names()[cls];
  EXPECT_NEAR(mean_coverage(8), 3.14159 * 0.06 * 0.06 / (0.25 * 0.25), 0.03) << "dots";
}

TEST(DemoShapes, RenderIsRgbOrBgrAndRejectsBadInput) {
  demo::ShapeSampler s(5);
  const ShapeParams p = s.sample(0);
  const Tensor rgb = demo::render(p, 32), bgr = demo::render(p, 32, true);
  ASSERT_EQ(rgb.shape(), (Shape{32, 32, 3}));
  ASSERT_EQ(rgb.dtype(), DType::U8);
  for (int64_t i = 0; i < 32 * 32; ++i) {
    ASSERT_EQ(rgb.data_as<uint8_t>()[i * 3], bgr.data_as<uint8_t>()[i * 3 + 2]);
    ASSERT_EQ(rgb.data_as<uint8_t>()[i * 3 + 1], bgr.data_as<uint8_t>()[i * 3 + 1]);
  }
  EXPECT_THROW(demo::render(p, 0), InputError);
  EXPECT_THROW(s.sample(10), InputError);
  ShapeParams bad = p;
  bad.cls = 12;
  EXPECT_THROW(demo::coverage(bad, 0.5f, 0.5f, 0.01f), InputError);
}

TEST(DemoVideo, FramesShowEveryClassOnceInSegments) {
  demo::VideoOptions o;
  o.fps = 10;
  o.seconds_per_class = 0.5;
  const auto frames = demo::video_frames(o);
  ASSERT_EQ(frames.size(), 50u);
  std::set<int> seen;
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].cls, frames[i - i % 5].cls) << "frame " << i << " changed class inside its segment";
    seen.insert(frames[i].cls);
    if (i % 5) {
      const bool moved = frames[i].cx != frames[i - 1].cx || frames[i].cy != frames[i - 1].cy;
      EXPECT_TRUE(moved || frames[i].angle != frames[i - 1].angle) << "frame " << i << " neither moves nor turns";
      EXPECT_NE(frames[i].noise_seed, frames[i - 1].noise_seed) << "frame " << i << " repeats the sensor noise";
    }
  }
  EXPECT_EQ(seen.size(), 10u);
  o.fps = 0;
  EXPECT_THROW(demo::video_frames(o), InputError);
}

}  // namespace
}  // namespace blr
