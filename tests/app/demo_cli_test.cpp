// The built-in demo from the command line: `blr generate` and `blr classify` with no model arguments use the
// shipped demo models (and --mode picks their compressed twins), a missing demo file is a clear exit-2
// error, `blr demo` draws pictures and the video, and scripts/demo_headless.sh — what scripts/run.sh runs
// without a display — produces its outputs (reduced: 2 sampling steps, 3 video frames).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "app/cli/command.h"
#include "engine/demo/demo_models.h"
#include "engine/demo/demo_shapes.h"
#include "engine/io/frame_source.h"
#include "engine/io/png.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int code = 0;
  std::string out, err;
};

CliRun run(std::vector<std::string> args) {
  args.insert(args.begin(), "blr");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  CliRun r;
  r.code = cli::run_cli(static_cast<int>(argv.size()), argv.data());
  r.out = testing::internal::GetCapturedStdout();
  r.err = testing::internal::GetCapturedStderr();
  return r;
}

nlohmann::json png_parameters(const std::string& path) {
  for (const auto& [k, v] : read_png_text(path))
    if (k == "parameters") return nlohmann::json::parse(v);
  return nullptr;
}

TEST(DemoCli, GenerateWithoutModelArgumentsUsesTheDemoDitAndItsModes) {
  const std::string dir = test::temp_dir("demo_cli_generate");
  for (const std::string mode : {"dense", "blast"}) {
    const std::string out = dir + "/" + mode + ".png";
    const CliRun r = run({"generate", "--cpu", "--steps", "2", "--class", "star", "--mode", mode, "--out", out,
                          "--no-progress"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("built-in demo model"), std::string::npos) << "must say it uses the demo model: " << r.err;
    const nlohmann::json p = png_parameters(out);
    ASSERT_FALSE(p.is_null()) << out << " has no parameters chunk";
    EXPECT_EQ(p["dit"], demo::dit_path(mode));
    EXPECT_EQ(p["vae"], "none (pixel space)");
    EXPECT_EQ(p["classes"], nlohmann::json::array({5})) << "'star' is class 5 by the model's own names";
    EXPECT_EQ(p["sampler"], "ddim") << "the demo model's default sampler";
    EXPECT_EQ(png_size(out), std::make_pair(32, 32));
  }
}

TEST(DemoCli, ClassifyWithoutArgumentsClassifiesTheDemoVideoWithClassNames) {
  const std::string dir = test::temp_dir("demo_cli_classify");
  const CliRun r = run({"classify", "--cpu", "--frames", "3", "--json", dir + "/c.json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("demo video"), std::string::npos) << r.err;
  const nlohmann::json j = nlohmann::json::parse(test::read_file(dir + "/c.json"));
  ASSERT_EQ(j["frames"].size(), 3u);
  const auto& names = demo::class_names();
  for (const auto& f : j["frames"]) {
    EXPECT_EQ(f["source"], demo::video_path());
    for (const auto& label : f["labels"])
      EXPECT_NE(std::find(names.begin(), names.end(), label.get<std::string>()), names.end())
          << "label " << label << " is not a demo class name";
  }
  const CliRun bt = run({"classify", "--cpu", "--frames", "1", "--mode", "blast-trained"});
  EXPECT_EQ(bt.code, 0) << bt.err;
  EXPECT_NE(bt.out.find("blast"), std::string::npos) << "mode label should show BLAST layers: " << bt.out;
  const CliRun bad = run({"classify", "--cpu", "--frames", "1", "--mode", "nonsense"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("nonsense"), std::string::npos) << bad.err;
}

TEST(DemoCli, MissingDemoFilesAreAClearError) {
  const std::string empty = test::temp_dir("demo_cli_no_assets");
  const char* old = std::getenv("BLR_ASSETS_DIR");
  const std::string saved = old ? old : "";
  setenv("BLR_ASSETS_DIR", empty.c_str(), 1);
  const CliRun g = run({"generate", "--cpu", "--class", "1", "--out", empty + "/x.png"});
  const CliRun c = run({"classify", "--cpu", "--frames", "1"});
  if (old) setenv("BLR_ASSETS_DIR", saved.c_str(), 1);
  else unsetenv("BLR_ASSETS_DIR");
  EXPECT_EQ(g.code, 2);
  EXPECT_NE(g.err.find("demo DiT"), std::string::npos) << g.err;
  EXPECT_NE(g.err.find("docs/MODELS.md"), std::string::npos) << g.err;
  EXPECT_EQ(c.code, 2);
  EXPECT_NE(c.err.find("demo"), std::string::npos) << c.err;
}

TEST(DemoCli, DemoCommandDrawsPicturesAndVideo) {
  const std::string dir = test::temp_dir("demo_cli_draw");
  CliRun r = run({"demo", "pictures", "--out", dir + "/pics", "--count", "12", "--seed", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  int pngs = 0;
  for (const auto& e : fs::directory_iterator(dir + "/pics")) pngs += e.path().extension() == ".png";
  EXPECT_EQ(pngs, 12);
  EXPECT_TRUE(test::file_exists(dir + "/pics/00011_square.png")) << "picture 11 is class 1 (square)";
  EXPECT_EQ(png_size(dir + "/pics/00000_circle.png"), std::make_pair(32, 32));
  r = run({"demo", "video", "--out", dir + "/v.avi", "--fps", "8", "--seconds-per-class", "0.25", "--classes", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto src = FrameSource::video(dir + "/v.avi");
  Frame f;
  int frames = 0;
  while (src->next(f)) {
    EXPECT_EQ(f.bgr.shape(), (Shape{128, 128, 3}));
    ++frames;
  }
  EXPECT_EQ(frames, 4);
  EXPECT_EQ(run({"demo", "sketch", "--out", dir}).code, 2);
  EXPECT_EQ(run({"demo", "pictures"}).code, 2) << "--out is required";
}

TEST(DemoCli, HeadlessDemoScriptWritesItsOutputs) {
  const std::string blr = std::string(BLR_BINARY_DIR) + "/app/cli/blr";
  ASSERT_TRUE(test::file_exists(blr)) << blr << " is not built (build the blr_cli target)";
  const std::string out = test::temp_dir("demo_headless");
  const std::string cmd = "BLR_DEMO_STEPS=2 BLR_DEMO_FRAMES=3 bash " + std::string(BLR_SOURCE_DIR) +
                          "/scripts/demo_headless.sh '" + blr + "' '" + out + "' > '" + out + "/log.txt' 2>&1";
  const int rc = std::system(cmd.c_str());
  ASSERT_EQ(rc, 0) << cmd << "\n" << test::read_file(out + "/log.txt");
  for (const char* f : {"generated_dense.png", "generated_blast.png", "generate_dense.json", "classify_dense.json",
                        "classify_blast_trained.json"})
    EXPECT_TRUE(test::file_exists(out + "/" + f)) << f << " missing; log:\n" << test::read_file(out + "/log.txt");
  EXPECT_NE(test::read_file(out + "/log.txt").find("Outputs in"), std::string::npos);
}

}  // namespace
}  // namespace blr
