#include "engine/demo/demo_video.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/core/error.h"

#ifdef BLR_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>
#endif

namespace blr::demo {

std::vector<ShapeParams> video_frames(const VideoOptions& o) {
  if (o.size < 16 || o.size > 2048) throw InputError(cat("demo video: size ", o.size, " must be in 16..2048"));
  if (!(o.fps > 0 && o.fps <= 120)) throw InputError(cat("demo video: fps ", o.fps, " must be in (0, 120]"));
  if (!(o.seconds_per_class > 0 && o.seconds_per_class <= 60))
    throw InputError(cat("demo video: seconds per class ", o.seconds_per_class, " must be in (0, 60]"));
  if (o.classes < 1 || o.classes > kNumClasses)
    throw InputError(cat("demo video: classes ", o.classes, " must be in 1..", kNumClasses));
  ShapeSampler sampler(o.seed);
  std::vector<int> order(kNumClasses);
  std::iota(order.begin(), order.end(), 0);
  for (int i = kNumClasses - 1; i > 0; --i)  // Fisher-Yates with the sampler's uniform numbers
    std::swap(order[i], order[std::min(i, static_cast<int>(sampler.uniform() * static_cast<float>(i + 1)))]);
  const int per_segment = std::max(1, static_cast<int>(std::lround(o.fps * o.seconds_per_class)));
  std::vector<ShapeParams> frames;
  constexpr float kTwoPi = 6.28318530717958647692f;
  for (int seg = 0; seg < o.classes; ++seg) {
    const ShapeParams start = sampler.sample(order[seg]);
    // Motion of this segment: a small loop of the centre, a turn, a breathing size, a drifting gradient.
    const float orbit = 0.05f + 0.05f * sampler.uniform(), phase = sampler.uniform() * kTwoPi;
    const float turn = (sampler.uniform() - 0.5f) * 1.5f, breathe = 0.12f * sampler.uniform();
    for (int f = 0; f < per_segment; ++f) {
      const float t = static_cast<float>(f) / static_cast<float>(per_segment);  // 0 .. 1 over the segment
      ShapeParams p = start;
      p.cx = std::clamp(start.cx + orbit * (std::cos(phase + kTwoPi * t) - std::cos(phase)), 0.25f, 0.75f);
      p.cy = std::clamp(start.cy + orbit * (std::sin(phase + kTwoPi * t) - std::sin(phase)), 0.25f, 0.75f);
      p.angle = start.angle + turn * t;
      p.radius = start.radius * (1.0f + breathe * std::sin(kTwoPi * t));
      p.period = start.period * (1.0f + 0.5f * breathe * std::sin(kTwoPi * t));
      p.grad_angle = start.grad_angle + 0.8f * t;
      p.noise_seed = start.noise_seed + static_cast<uint64_t>(f);  // fresh sensor noise every frame
      frames.push_back(p);
    }
  }
  return frames;
}

#ifdef BLR_HAVE_OPENCV
int write_video(const std::string& path, const VideoOptions& o) {
  const std::vector<ShapeParams> frames = video_frames(o);
  cv::VideoWriter writer;
  writer.open(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), o.fps, cv::Size(o.size, o.size), true);
  if (!writer.isOpened()) throw InputError(cat(path, ": cannot open an MJPG video for writing"));
  writer.set(cv::VIDEOWRITER_PROP_QUALITY, o.jpeg_quality);
  for (const ShapeParams& p : frames) {
    Tensor bgr = render(p, o.size, /*bgr=*/true);
    const cv::Mat m(o.size, o.size, CV_8UC3, bgr.data());
    writer.write(m);
  }
  writer.release();
  return static_cast<int>(frames.size());
}
#else
int write_video(const std::string& path, const VideoOptions&) {
  throw Error(cat(path, ": this build has no OpenCV, so it cannot write videos (install libopencv-dev and rebuild)"));
}
#endif

}  // namespace blr::demo
