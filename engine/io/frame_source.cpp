#include "engine/io/frame_source.h"

#include <sys/stat.h>

#include <cctype>

#include "engine/core/error.h"

#ifdef BLR_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#endif

namespace blr {

#ifdef BLR_HAVE_OPENCV

namespace {

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_index(const std::string& s) {
  if (s.empty() || s.size() > 6) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// Host u8 [H, W, 3] BGR tensor owning (a reference to) the Mat's pixels. `copy` detaches the pixels from
// buffers a VideoCapture reuses for its next frame.
Tensor wrap(cv::Mat m, bool copy, const std::string& source) {
  if (m.empty()) throw InputError(cat(source, ": empty frame"));
  if (m.depth() != CV_8U) throw InputError(cat(source, ": frames of OpenCV type ", m.type(), " are not 8-bit"));
  if (m.channels() == 1 || m.channels() == 4) {
    cv::Mat bgr;  // a fresh buffer, so no copy is needed afterwards
    cv::cvtColor(m, bgr, m.channels() == 1 ? cv::COLOR_GRAY2BGR : cv::COLOR_BGRA2BGR);
    m = bgr;
    copy = false;
  } else if (m.channels() != 3) {
    throw InputError(cat(source, ": frames with ", m.channels(), " channels are not supported"));
  }
  if (copy || !m.isContinuous()) m = m.clone();
  auto holder = std::make_shared<cv::Mat>(m);
  return Tensor::from_blob(holder->data, {holder->rows, holder->cols, 3}, DType::U8, Device::CPU, holder);
}

class ImageFiles final : public FrameSource {
 public:
  explicit ImageFiles(std::vector<std::string> paths) : paths_(std::move(paths)) {}
  bool next(Frame& f) override {
    if (pos_ >= paths_.size()) return false;
    f.source = paths_[pos_];
    f.index = static_cast<int64_t>(pos_);
    f.bgr = read_image_bgr(paths_[pos_]);
    ++pos_;
    return true;
  }
  std::string describe() const override { return cat(paths_.size(), " image file", paths_.size() == 1 ? "" : "s"); }

 private:
  std::vector<std::string> paths_;
  size_t pos_ = 0;
};

class Capture final : public FrameSource {
 public:
  Capture(std::unique_ptr<cv::VideoCapture> cap, std::string name, bool live)
      : cap_(std::move(cap)), name_(std::move(name)), live_(live) {}
  bool next(Frame& f) override {
    cv::Mat m;
    if (pending_.empty()) {
      if (!cap_->read(m) || m.empty()) return false;
    } else {
      m = pending_;
      pending_.release();
    }
    f.bgr = wrap(m, true, name_);
    f.source = name_;
    f.index = count_++;
    return true;
  }
  std::string describe() const override { return name_; }
  bool live() const override { return live_; }
  // Reads the first frame now, so a source that opens but yields nothing fails at open time.
  void prime() {
    if (!cap_->read(pending_) || pending_.empty())
      throw InputError(cat(name_, ": opened, but no frame could be read"));
    pending_ = pending_.clone();
  }

 private:
  std::unique_ptr<cv::VideoCapture> cap_;
  std::string name_;
  bool live_ = false;
  cv::Mat pending_;
  int64_t count_ = 0;
};

}  // namespace

bool have_opencv() { return true; }

Tensor read_image_bgr(const std::string& path) {
  if (!is_regular_file(path)) throw InputError(cat(path, ": no such image file"));
  cv::Mat m;
  try {
    m = cv::imread(path, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    throw InputError(cat(path, ": cannot decode the image: ", e.what()));
  }
  if (m.empty()) throw InputError(cat(path, ": cannot read the image (unreadable, or not a format OpenCV decodes)"));
  return wrap(m, false, path);
}

std::unique_ptr<FrameSource> FrameSource::images(const std::vector<std::string>& paths) {
  if (paths.empty()) throw InputError("no image files given");
  for (const auto& p : paths)
    if (!is_regular_file(p)) throw InputError(cat(p, ": no such image file"));
  return std::make_unique<ImageFiles>(paths);
}

std::unique_ptr<FrameSource> FrameSource::video(const std::string& path) {
  if (!is_regular_file(path)) throw InputError(cat(path, ": no such video file"));
  auto cap = std::make_unique<cv::VideoCapture>();
  if (!cap->open(path)) throw InputError(cat(path, ": cannot open the video (not a format OpenCV's backends decode?)"));
  auto src = std::make_unique<Capture>(std::move(cap), path, false);
  src->prime();
  return src;
}

std::unique_ptr<FrameSource> FrameSource::camera(const std::string& spec) {
  if (spec.empty()) throw InputError("--camera: empty camera index or pipeline");
  auto cap = std::make_unique<cv::VideoCapture>();
  std::string name;
  // OpenCV warns on stderr for every backend it tries; our own error says what failed.
  const auto level = cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
  bool opened = false;
  try {
    if (is_index(spec)) {
      name = cat("camera ", spec);
      opened = cap->open(std::stoi(spec));
    } else {
      name = cat("pipeline '", spec, "'");
      opened = cap->open(spec, cv::CAP_GSTREAMER);
    }
  } catch (const cv::Exception& e) {
    cv::utils::logging::setLogLevel(level);
    throw InputError(cat(name, ": cannot open: ", e.what()));
  }
  cv::utils::logging::setLogLevel(level);
  if (!opened)
    throw InputError(is_index(spec) ? cat(name, ": cannot open (no such camera, or it is busy)")
                                    : cat(name, ": cannot open the GStreamer pipeline (is OpenCV built with "
                                               "GStreamer, and does the pipeline end in appsink?)"));
  auto src = std::make_unique<Capture>(std::move(cap), name, true);
  src->prime();
  return src;
}

#else  // !BLR_HAVE_OPENCV

namespace {
[[noreturn]] void no_opencv(const std::string& what) {
  throw InputError(cat(what, ": this build has no OpenCV, so image, video and camera input are unavailable "
                             "(install libopencv-dev and rebuild)"));
}
}  // namespace

bool have_opencv() { return false; }
Tensor read_image_bgr(const std::string& path) { no_opencv(path); }
std::unique_ptr<FrameSource> FrameSource::images(const std::vector<std::string>& paths) {
  no_opencv(paths.empty() ? std::string("images") : paths.front());
}
std::unique_ptr<FrameSource> FrameSource::video(const std::string& path) { no_opencv(path); }
std::unique_ptr<FrameSource> FrameSource::camera(const std::string& spec) { no_opencv(cat("camera ", spec)); }

#endif

}  // namespace blr
