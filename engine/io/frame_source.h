// Frames for classification: image files, a video file, a camera by index, or a GStreamer pipeline
// (e.g. a Jetson CSI camera: "nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720 !
// nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink"). Decoding is
// OpenCV's; frames come out as host u8 [H, W, 3] BGR tensors that keep their decoded buffer alive.
// Without OpenCV (BLR_HAVE_OPENCV unset) every opener throws an InputError saying so.
//
// Errors are InputErrors naming the source: an image that is missing or does not decode, a video that
// cannot be opened or has no frames, a camera index or pipeline that does not open. The end of a video
// is not an error: next() returns false.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace blr {

struct Frame {
  Tensor bgr;          // host u8 [H, W, 3]
  std::string source;  // file name, "camera 0", or the pipeline
  int64_t index = 0;   // frame number within the source
};

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // Reads the next frame; false at the end of the source (end of video, last image, camera closed).
  virtual bool next(Frame& frame) = 0;
  virtual std::string describe() const = 0;
  // True for sources without an end of their own (cameras, pipelines).
  virtual bool live() const { return false; }

  // Image files in order; each must exist when the source is opened (decode errors come from next()).
  static std::unique_ptr<FrameSource> images(const std::vector<std::string>& paths);
  static std::unique_ptr<FrameSource> video(const std::string& path);
  // A decimal number is a camera index (V4L2 on Linux); anything else is a GStreamer pipeline.
  static std::unique_ptr<FrameSource> camera(const std::string& spec);
};

bool have_opencv();
// Decodes one image file into a host u8 [H, W, 3] BGR tensor.
Tensor read_image_bgr(const std::string& path);

}  // namespace blr
