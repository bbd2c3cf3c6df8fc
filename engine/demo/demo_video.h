// The demo video (assets/demo_video.avi): a few seconds of moving, changing demo-shapes pictures for the
// Classify tab and `blr classify` when no camera is present. Each class appears for a segment in turn (order
// shuffled by the seed) while its picture moves, turns, breathes and drifts, so a classifier is shown
// pictures it never saw with the class changing under it. MJPG in AVI through OpenCV (no OpenCV: Error).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/demo/demo_shapes.h"

namespace blr::demo {

struct VideoOptions {
  int size = 128;                // frame side in pixels (square)
  double fps = 12.0;
  double seconds_per_class = 1.0;
  int classes = kNumClasses;     // segments: this many classes, each once
  uint64_t seed = 7;
  int jpeg_quality = 90;
};

// Parameters of every frame (class changes at segment boundaries), without rendering: tests use this to
// know each frame's class.
std::vector<ShapeParams> video_frames(const VideoOptions& options);

// Renders and writes the video; returns the number of frames. Throws InputError for bad options or an
// unwritable path.
int write_video(const std::string& path, const VideoOptions& options);

}  // namespace blr::demo
