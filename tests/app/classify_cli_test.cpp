// `blr classify` run in-process on the CPU backend: a tiny random ViT written by the test, images and a
// video written with OpenCV, the text and JSON outputs checked against the library's own answer, and
// every kind of bad input mapped to exit code 2 with a message naming the problem.
#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "app/cli/command.h"
#include "engine/backend/cpu/cpu_ops.h"
#include "engine/io/frame_source.h"
#include "engine/io/safetensors.h"
#include "engine/models/vit/vit_model.h"
#include "engine/models/vit/vit_random.h"
#include "engine/runtime/vit_classifier.h"
#include "tests/common/test_util.h"
#include "tests/common/tiny_vit.h"

#ifdef BLR_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#endif

namespace blr {
namespace {

int run_blr(std::vector<std::string> args, std::string* out = nullptr, std::string* err = nullptr) {
  args.insert(args.begin(), "blr");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  const int rc = cli::run_cli(static_cast<int>(argv.size()), argv.data());
  std::fflush(stdout);
  const std::string o = ::testing::internal::GetCapturedStdout();
  const std::string e = ::testing::internal::GetCapturedStderr();
  if (out) *out = o;
  if (err) *err = e;
  return rc;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class ClassifyCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_dir("classify_cli");
    model_ = dir_ + "/tiny.safetensors";
    const Checkpoint ck = random_vit_checkpoint(test::tiny_vit_config(), LinearSpec{}, 42);
    std::vector<std::pair<std::string, Tensor>> list;
    for (const auto& n : ck.names()) list.emplace_back(n, ck.get(n));
    write_safetensors(model_, list, test::tiny_vit_config().to_metadata());
  }
  // The library's answer for one image (what the CLI must print).
  Prediction expected(const std::string& image, int topk) {
    VitLoadOptions o;
    const VitModel m = load_vit(Checkpoint::open(model_), o);
    CpuOps ops;
    Arena arena(Device::CPU, "expected");
    ClassifierOptions co;
    co.topk = topk;
    VitClassifier clf(m, ops, arena, co);
    return clf.classify({read_image_bgr(image)}).predictions.at(0);
  }
  // Exit code 2 and one error line of ours containing `part` (decoders such as FFmpeg may print their
  // own diagnostics before it; those are not ours to silence).
  void expect_usage_error(std::vector<std::string> args, const std::string& part) {
    std::string err;
    const int rc = run_blr(std::move(args), nullptr, &err);
    EXPECT_EQ(rc, 2) << err;
    const size_t at = err.find("blr classify: error: ");
    ASSERT_NE(at, std::string::npos) << err;
    const std::string line = err.substr(at);
    EXPECT_TRUE(contains(line, part)) << "expected '" << part << "' in: " << line;
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
  }
  std::string dir_, model_;
};

#ifdef BLR_HAVE_OPENCV
std::string write_image(const std::string& path, int w, int h, int seed) {
  cv::Mat img(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      img.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>((x * 7 + seed * 50) % 256),
                                          static_cast<uchar>((y * 5 + seed * 90) % 256),
                                          static_cast<uchar>(((x ^ y) + seed * 30) % 256));
  cv::circle(img, {w / 2, h / 2}, std::min(w, h) / 4, cv::Scalar(20, 200, 240), -1);
  EXPECT_TRUE(cv::imwrite(path, img)) << path;
  return path;
}
#endif

TEST_F(ClassifyCli, ImageToTextAndJsonMatchesTheLibrary) {
#ifndef BLR_HAVE_OPENCV
  GTEST_SKIP() << "built without OpenCV: no image input";
#else
  const std::string img = write_image(dir_ + "/a.png", 61, 45, 1);
  const std::string json_path = dir_ + "/out.json";
  std::string out, err;
  ASSERT_EQ(run_blr({"classify", "--model", model_, "--image", img, "--cpu", "--topk", "3", "--json", json_path}, &out,
                    &err),
            0)
      << err;
  const Prediction want = expected(img, 3);
  const auto doc = nlohmann::json::parse(test::read_file(json_path));
  EXPECT_EQ(doc["backend"], "cpu");
  EXPECT_EQ(doc["mode"], "dense");
  EXPECT_EQ(doc["dtype"], "f32");
  EXPECT_EQ(doc["config"]["num_classes"], 10);
  ASSERT_EQ(doc["frames"].size(), 1u);
  const auto& f = doc["frames"][0];
  EXPECT_EQ(f["source"], img);
  EXPECT_EQ(f["frame"], 0);
  EXPECT_EQ(f["width"], 61);
  EXPECT_EQ(f["height"], 45);
  EXPECT_EQ(f["mode"], "dense");
  EXPECT_EQ(f["classes"].get<std::vector<int>>(), want.classes);
  const auto probs = f["probabilities"].get<std::vector<float>>();
  ASSERT_EQ(probs.size(), 3u);
  for (size_t j = 0; j < 3; ++j) EXPECT_FLOAT_EQ(probs[j], want.probs[j]);
  EXPECT_TRUE(std::is_sorted(probs.rbegin(), probs.rend()));
  EXPECT_EQ(f["labels"][0], "class " + std::to_string(want.classes[0]));  // 10 classes: no ImageNet names
  EXPECT_GT(f["timings_ms"]["total"].get<double>(), 0.0);
  EXPECT_GT(doc["memory"]["weights_bytes"].get<double>(), 0.0);
  // The text names the file, the classes with their probabilities and the latency.
  EXPECT_TRUE(contains(out, "a.png (61x45)")) << out;
  EXPECT_TRUE(contains(out, "class " + std::to_string(want.classes[0]) + " (" + std::to_string(want.classes[0]) + ")"))
      << out;
  EXPECT_TRUE(contains(out, "latency")) << out;
  EXPECT_TRUE(contains(out, "memory: weights")) << out;
#endif
}

TEST_F(ClassifyCli, JsonToStdoutLabelsFileAndBatches) {
#ifndef BLR_HAVE_OPENCV
  GTEST_SKIP() << "built without OpenCV: no image input";
#else
  const std::string a = write_image(dir_ + "/a.png", 40, 40, 2), b = write_image(dir_ + "/b.jpg", 90, 33, 3),
                    c = write_image(dir_ + "/c.bmp", 33, 90, 4);
  std::string names;
  for (int i = 0; i < 10; ++i) names += "thing number " + std::to_string(i) + "\n";
  test::write_file(dir_ + "/labels.txt", names);
  std::string out, err;
  ASSERT_EQ(run_blr({"classify", "--model", model_, "--image", a, b, c, "--batch", "2", "--cpu", "--json", "-",
                     "--labels", dir_ + "/labels.txt", "--topk", "2"},
                    &out, &err),
            0)
      << err;
  const auto doc = nlohmann::json::parse(out);  // stdout holds only the JSON; the text went to stderr
  ASSERT_EQ(doc["frames"].size(), 3u);
  const std::string files[] = {a, b, c};
  for (size_t i = 0; i < 3; ++i) {
    const auto& f = doc["frames"][i];
    EXPECT_EQ(f["source"], files[i]);
    EXPECT_EQ(f["frame"], static_cast<int>(i));
    EXPECT_EQ(f["batch_size"], i < 2 ? 2 : 1);
    const Prediction want = expected(files[i], 2);
    EXPECT_EQ(f["classes"].get<std::vector<int>>(), want.classes) << files[i];
    EXPECT_EQ(f["labels"][0], "thing number " + std::to_string(want.classes[0]));
  }
  EXPECT_TRUE(contains(err, "batch of 2")) << err;
#endif
}

TEST_F(ClassifyCli, VideoFramesUntilTheEndOrTheLimit) {
#ifndef BLR_HAVE_OPENCV
  GTEST_SKIP() << "built without OpenCV: no video input";
#else
  const std::string video = dir_ + "/clip.avi";
  {
    cv::VideoWriter w(video, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10, cv::Size(64, 48));
    if (!w.isOpened()) GTEST_SKIP() << "OpenCV cannot write MJPG AVI here";
    for (int i = 0; i < 7; ++i) {
      cv::Mat m(48, 64, CV_8UC3, cv::Scalar(i * 30, 255 - i * 30, 100));
      w.write(m);
    }
  }
  const std::string json_path = dir_ + "/video.json";
  std::string out, err;
  ASSERT_EQ(run_blr({"classify", "--model", model_, "--video", video, "--batch", "3", "--cpu", "--json", json_path},
                    &out, &err),
            0)
      << err;
  auto doc = nlohmann::json::parse(test::read_file(json_path));
  ASSERT_EQ(doc["frames"].size(), 7u);
  EXPECT_EQ(doc["frames"][6]["frame"], 6);
  EXPECT_EQ(doc["frames"][6]["batch_size"], 1);
  EXPECT_TRUE(contains(out, "end of video after 7 frames")) << out;
  ASSERT_EQ(run_blr({"classify", "--model", model_, "--video", video, "--frames", "4", "--batch", "3", "--cpu",
                     "--json", json_path},
                    &out, &err),
            0)
      << err;
  doc = nlohmann::json::parse(test::read_file(json_path));
  EXPECT_EQ(doc["frames"].size(), 4u);
#endif
}

TEST_F(ClassifyCli, BadInputExitsTwoWithAClearMessage) {
  const std::string img = dir_ + "/x.png";
#ifdef BLR_HAVE_OPENCV
  write_image(img, 20, 20, 0);
#else
  test::write_file(img, "not decoded without OpenCV");
#endif
  {  // Without --model the built-in demo ViT is used; where it is not installed, that is a clear error.
    const char* old_assets = std::getenv("BLR_ASSETS_DIR");
    const std::string saved = old_assets ? old_assets : "";
    setenv("BLR_ASSETS_DIR", dir_.c_str(), 1);
    expect_usage_error({"classify", "--image", img, "--cpu"}, "demo ViT (dense) not found");
    if (old_assets) setenv("BLR_ASSETS_DIR", saved.c_str(), 1);
    else unsetenv("BLR_ASSETS_DIR");
  }
  expect_usage_error({"classify", "--model", model_, "--image", img, "--batch", "0", "--cpu"}, "--batch must be at least 1");
  expect_usage_error({"classify", "--model", model_, "--image", img, "--batch", "two", "--cpu"}, "--batch expects an integer");
  expect_usage_error({"classify", "--model", model_, "--image", img, "--topk", "0", "--cpu"}, "--topk must be at least 1");
  expect_usage_error({"classify", "--model", model_, "--cpu"}, "give exactly one input");
  expect_usage_error({"classify", "--model", model_, "--image", img, "--video", img, "--cpu"}, "got several");
  expect_usage_error({"classify", "--model", model_, "--image", img, "--mode", "sparse", "--cpu"}, "unknown mode 'sparse'");
  expect_usage_error({"classify", "--model", model_, "--image", img, "--compress", "blocks.*", "--cpu"}, "blocks.*");
  expect_usage_error({"classify", "--model", model_, "--image", img, "--memory-budget", "lots", "--cpu"}, "lots");
  expect_usage_error({"classify", "--model", model_, "--image", img, "--dtype", "bf16", "--cpu"}, "the CPU backend computes in f32");
  expect_usage_error({"classify", "--model", model_, "--image", img, "--bogus", "--cpu"}, "unknown option --bogus");
  expect_usage_error({"classify", "--model", model_, "--image", img, "--labels", dir_ + "/none.txt", "--cpu"}, "none.txt");
  expect_usage_error({"classify", "--model", model_, "--image", dir_ + "/missing.png", "--cpu"}, "missing.png");
  expect_usage_error({"classify", "--model", dir_ + "/missing.safetensors", "--image", img, "--cpu"}, "missing.safetensors");
  test::write_file(dir_ + "/corrupt.safetensors", "\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":");
  expect_usage_error({"classify", "--model", dir_ + "/corrupt.safetensors", "--image", img, "--cpu"}, "corrupt.safetensors");
#ifdef BLR_HAVE_OPENCV
  // Needs a real model: the checks below happen after loading it.
  expect_usage_error({"classify", "--model", model_, "--image", img, "--topk", "11", "--cpu"}, "10 classes");
  expect_usage_error({"classify", "--model", model_, "--image", img, "--mode", "monarch", "--cpu"}, "blocks.0.attn.qkv");
  test::write_file(dir_ + "/three.txt", "a\nb\nc\n");
  expect_usage_error({"classify", "--model", model_, "--image", img, "--labels", dir_ + "/three.txt", "--cpu"},
                     "3 names for a model with 10 classes");
  test::write_file(dir_ + "/text.png", "this is text, not a PNG");
  expect_usage_error({"classify", "--model", model_, "--image", dir_ + "/text.png", "--cpu"}, "cannot read the image");
  expect_usage_error({"classify", "--model", model_, "--video", dir_ + "/none.mp4", "--cpu"}, "no such video file");
  expect_usage_error({"classify", "--model", model_, "--video", dir_ + "/text.png", "--cpu"}, "text.png");
  expect_usage_error({"classify", "--model", model_, "--camera", "97", "--cpu"}, "camera 97");
#else
  expect_usage_error({"classify", "--model", model_, "--image", img, "--cpu"}, "no OpenCV");
#endif
}

TEST_F(ClassifyCli, MemoryBudgetTooSmallIsARuntimeFailure) {
#ifndef BLR_HAVE_OPENCV
  GTEST_SKIP() << "built without OpenCV: no image input";
#else
  const std::string img = write_image(dir_ + "/x.png", 20, 20, 0);
  std::string err;
  EXPECT_EQ(run_blr({"classify", "--model", model_, "--image", img, "--cpu", "--memory-budget", "64KiB"}, nullptr, &err), 1)
      << err;
  EXPECT_TRUE(contains(err, "memory budget exceeded")) << err;
#endif
}

}  // namespace
}  // namespace blr
