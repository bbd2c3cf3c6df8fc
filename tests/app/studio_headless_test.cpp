// blr-studio end to end: the real app in a real GLFW window (Xvfb when there is no display), driven by
// the scripts in tests/app/scripts/ on the CPU backend with tiny random models, asserting on the state
// JSON, the screenshots and the saved files. Skips when the studio is not built or no display exists.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/io/frame_source.h"
#include "tests/app/studio_models_util.h"
#include "tests/app/studio_util.h"
#include "tests/common/test_util.h"

#include "engine/io/png.h"

namespace blr::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

#define REQUIRE_STUDIO()                                   \
  do {                                                     \
    const std::string why = studio_unavailable();          \
    if (!why.empty()) GTEST_SKIP() << "skipped: " << why;  \
  } while (0)

// tests/ in the source tree (BLR_TEST_DATA_DIR is tests/data, which need not exist).
fs::path tests_dir() { return fs::path(BLR_TEST_DATA_DIR).parent_path(); }

std::string script(const std::string& name) {
  const fs::path p = tests_dir() / "app" / "scripts" / name;
  if (!fs::exists(p)) throw std::runtime_error("missing test script " + p.string());
  return read_file(p.string());
}

// Model files and a video for one test, and the environment the scripts read them from.
struct Fixture {
  std::string dir, dit, vae, vit, video;
  std::string env() const {
    return "STUDIO_DIT='" + dit + "' STUDIO_VAE='" + vae + "' STUDIO_VIT='" + vit + "' STUDIO_VIDEO='" + video +
           "' STUDIO_OUT='" + dir + "/out'";
  }
};

Fixture make_fixture(const std::string& name, bool video) {
  Fixture f;
  f.dir = temp_dir(name);
  f.dit = f.dir + "/tiny_dit.safetensors";
  f.vae = f.dir + "/tiny_vae.safetensors";
  f.vit = f.dir + "/tiny_vit.safetensors";
  f.video = f.dir + "/clip.avi";
  write_tiny_dit(f.dit, 11);
  write_tiny_vae(f.vae, 12);
  write_tiny_vit(f.vit, 13);
  if (video && !write_test_video(f.video, 12)) f.video.clear();
  return f;
}

std::string describe(const StudioRun& r) { return "exit " + std::to_string(r.exit_code) + ", log:\n" + r.log; }

TEST(StudioHeadless, GenerateRecordsStepsScreenshotAndSavesPngWithParameters) {
  REQUIRE_STUDIO();
  const Fixture f = make_fixture("studio", false);
  const StudioRun r = run_studio_script(f.dir, script("generate.txt"), "", f.env());
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const json& g = r.state["generation"];
  ASSERT_EQ(g["state"], "finished") << g.dump(2);
  ASSERT_EQ(g["outputs"].size(), 1u);
  const json& out = g["outputs"][0];
  ASSERT_EQ(out["step_ms"].size(), 8u) << "one time per sampling step";
  for (const auto& ms : out["step_ms"]) EXPECT_GT(ms.get<double>(), 0.0);
  EXPECT_EQ(out["steps_done"], 8);
  EXPECT_EQ(out["decoder"], "SD-VAE");
  EXPECT_EQ(out["image"]["width"], 64) << "8x8 latent through the 8x tiny VAE";
  EXPECT_GE(g["preview_version"].get<int>(), 1) << "live previews were produced while sampling";
  ASSERT_EQ(r.state["history"].size(), 1u);
  EXPECT_EQ(r.state["history"][0]["class"], 2) << "'triangle' is class 2 of the model's own names";

  // What a GPU run is judged by (scripts/device_studio.sh): the GL driver and whether images reached it
  // through CUDA-GL interop. On the CPU backend interop must be off, with that reason, and unused.
  const json& backend = r.state["backend"];
  for (const char* key : {"gl_vendor", "gl_renderer", "gl_version", "interop_reason"}) {
    ASSERT_TRUE(backend.contains(key) && backend[key].is_string()) << key << " missing in " << backend.dump(2);
    EXPECT_FALSE(backend[key].get<std::string>().empty()) << key;
  }
  ASSERT_TRUE(backend.contains("interop") && backend["interop"].is_boolean()) << backend.dump(2);
  EXPECT_FALSE(backend["interop"].get<bool>()) << "interop needs the CUDA backend";
  EXPECT_NE(backend["interop_reason"].get<std::string>().find("CPU backend"), std::string::npos) << backend.dump(2);
  EXPECT_EQ(backend["interop_uploads"], 0);

  // The screenshot's image region shows the generated image, not a flat fill.
  const json& rect = r.state["ui"]["image_visible"];
  const double sd = region_stddev(r.dir + "/out/generate.png", rect["x"].get<int>() + 2, rect["y"].get<int>() + 2,
                                  rect["w"].get<int>() - 4, rect["h"].get<int>() - 4);
  EXPECT_GT(rect["w"].get<double>(), 100.0);
  EXPECT_GT(sd, 3.0) << "the image region of the screenshot is uniform";

  // Save wrote a PNG whose tEXt chunk records the parameters.
  ASSERT_EQ(g["saved"].size(), 1u);
  const std::string saved = g["saved"][0];
  ASSERT_TRUE(fs::exists(saved)) << saved;
  EXPECT_EQ(read_image_bgr(saved).dim(1), 64);
  const PngText text = read_png_text(saved);
  json params;
  for (const auto& [k, v] : text)
    if (k == "parameters") params = json::parse(v);
  ASSERT_FALSE(params.is_null()) << "no 'parameters' tEXt chunk";
  EXPECT_EQ(params["seed"], 42);
  EXPECT_EQ(params["class"], 2);
  EXPECT_EQ(params["label"], "triangle");
  EXPECT_EQ(params["steps"], 8);
  EXPECT_EQ(params["sampler"], "ddim");
  EXPECT_DOUBLE_EQ(params["cfg"].get<double>(), 3.0);
  EXPECT_EQ(params["mode"], "dense");
}

TEST(StudioHeadless, ClassifiesEveryFrameOfAVideo) {
  REQUIRE_STUDIO();
  const Fixture f = make_fixture("studio", true);
  if (f.video.empty()) GTEST_SKIP() << "skipped: OpenCV cannot write the test video here";
  const StudioRun r = run_studio_script(f.dir, script("classify.txt"), "", f.env());
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const json& c = r.state["classify"];
  EXPECT_EQ(c["state"], "finished");
  EXPECT_EQ(c["classified"], 12) << "a file source is classified frame by frame, none dropped";
  EXPECT_EQ(c["dropped"], 0);
  EXPECT_GT(c["fps"].get<double>(), 0.0);
  ASSERT_EQ(c["frames"].size(), 12u);
  for (size_t i = 0; i < 12; ++i) {
    const json& fr = c["frames"][i];
    EXPECT_EQ(fr["index"], static_cast<int>(i));
    ASSERT_EQ(fr["predictions"].size(), 1u);
    const json& top = fr["predictions"][0];
    ASSERT_EQ(top.size(), 5u) << "frame " << i;
    double prev = 2.0;
    for (const auto& e : top) {
      EXPECT_GE(e["class"].get<int>(), 0);
      EXPECT_LT(e["class"].get<int>(), 10);
      EXPECT_LE(e["prob"].get<double>(), prev) << "top-k sorted by probability";
      prev = e["prob"].get<double>();
    }
  }
  const json& rect = r.state["ui"]["image_visible"];
  EXPECT_GT(region_stddev(r.dir + "/out/classify.png", rect["x"].get<int>() + 2, rect["y"].get<int>() + 2,
                          rect["w"].get<int>() - 4, rect["h"].get<int>() - 4),
            3.0);
}

TEST(StudioHeadless, CompareShowsBothModelsAgreementAndPsnr) {
  REQUIRE_STUDIO();
  const Fixture f = make_fixture("studio", true);
  if (f.video.empty()) GTEST_SKIP() << "skipped: OpenCV cannot write the test video here";
  const StudioRun r = run_studio_script(f.dir, script("compare.txt"), "", f.env());
  ASSERT_EQ(r.exit_code, 0) << describe(r);

  const json cls = json::parse(read_file(r.dir + "/out/state_classify.json"))["classify"];
  ASSERT_EQ(cls["models"].size(), 2u);
  EXPECT_EQ(cls["models"][0]["variant"].get<std::string>().find("dense"), 0u) << cls["models"][0]["variant"];
  EXPECT_NE(cls["models"][1]["variant"].get<std::string>().find("blast"), std::string::npos) << cls["models"][1]["variant"];
  EXPECT_EQ(cls["compared"], 12);
  ASSERT_FALSE(cls["agreement"].is_null());
  const double agreement = cls["agreement"];
  EXPECT_GE(agreement, 0.0);
  EXPECT_LE(agreement, 1.0);
  EXPECT_EQ(cls["agreed"].get<int>(), static_cast<int>(std::lround(agreement * 12)));
  for (const auto& fr : cls["frames"]) ASSERT_EQ(fr["predictions"].size(), 2u) << "both models on every frame";

  const json& g = r.state["generation"];
  EXPECT_EQ(g["state"], "finished");
  ASSERT_EQ(g["outputs"].size(), 2u);
  EXPECT_EQ(g["outputs"][0]["mode"], "dense");
  EXPECT_EQ(g["outputs"][1]["mode"], "blast");
  EXPECT_LT(g["outputs"][1]["params"].get<int64_t>(), g["outputs"][0]["params"].get<int64_t>());
  ASSERT_FALSE(g["psnr"].is_null());
  if (g["psnr"].is_number()) {
    EXPECT_GT(g["psnr"].get<double>(), 0.0);
  }

  // The compressed variants report each layer's factorisation error.
  int compressed_models = 0;
  for (const auto& m : r.state["models"]) {
    if (m["mode"] != "blast") continue;
    ++compressed_models;
    ASSERT_FALSE(m["compressed_layers"].empty()) << m.dump(2);
    for (const auto& l : m["compressed_layers"]) {
      EXPECT_GT(l["rel_error"].get<double>(), 0.0) << l.dump();
      EXPECT_LT(l["rel_error"].get<double>(), 1.0) << l.dump();
    }
  }
  EXPECT_EQ(compressed_models, 2);
  EXPECT_TRUE(fs::exists(r.dir + "/out/compare_generate.png"));
}

TEST(StudioHeadless, MissingModelAndCameraBecomeMessagesWhileTheAppKeepsRunning) {
  REQUIRE_STUDIO();
  const Fixture f = make_fixture("studio", false);
  const StudioRun r = run_studio_script(f.dir, script("errors.txt"), "", f.env());
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  bool file_msg = false, camera_msg = false;
  for (const auto& m : r.state["messages"]) {
    const std::string text = m["text"];
    if (m["level"] == "error" && text.find("does_not_exist.safetensors") != std::string::npos) file_msg = true;
    if (m["level"] == "error" && text.find("camera 99") != std::string::npos) camera_msg = true;
  }
  EXPECT_TRUE(file_msg) << r.state["messages"].dump(2);
  EXPECT_TRUE(camera_msg) << r.state["messages"].dump(2);
  EXPECT_EQ(r.state["classify"]["state"], "failed");
  ASSERT_EQ(r.state["models"].size(), 1u) << "only the ViT loaded";
  EXPECT_EQ(r.state["models"][0]["kind"], "ViT");
  EXPECT_GT(r.state["ui"]["frames_total"].get<int>(), 5) << "the UI kept drawing frames after the failures";
}

TEST(StudioHeadless, UnexpectedErrorsAndFailedExpectationsGiveNonZeroExit) {
  REQUIRE_STUDIO();
  const std::string dir = temp_dir("studio");
  // An error message the script did not announce with expect_message.
  const StudioRun unexpected =
      run_studio_script(dir + "/a", "set models.dit /nonexistent/x.safetensors\npress models.load\nwait_idle 30\n");
  EXPECT_EQ(unexpected.exit_code, 3) << describe(unexpected);
  // A failed expectation.
  const StudioRun failed = run_studio_script(dir + "/b", "expect /generation/state == finished\n");
  EXPECT_EQ(failed.exit_code, 1) << describe(failed);
  EXPECT_NE(failed.log.find("script line 1"), std::string::npos) << failed.log;
  // A script that cannot be parsed.
  const StudioRun bad = run_studio_script(dir + "/c", "frobnicate now\n");
  EXPECT_EQ(bad.exit_code, 2) << describe(bad);
  EXPECT_NE(bad.log.find("unknown command 'frobnicate'"), std::string::npos) << bad.log;
}

TEST(StudioHeadless, SettingsPersistAcrossTwoRuns) {
  REQUIRE_STUDIO();
  const std::string dir = temp_dir("studio");
  const std::string config = dir + "/shared_config";
  const StudioRun first = run_studio_script(dir + "/first", script("settings_first.txt"), config);
  ASSERT_EQ(first.exit_code, 0) << describe(first);
  ASSERT_TRUE(fs::exists(config + "/settings.json"));
  EXPECT_TRUE(fs::exists(config + "/imgui.ini")) << "ImGui's window/table layout is kept too";
  const json saved = json::parse(read_file(config + "/settings.json"));
  EXPECT_EQ(saved["generate"]["seed"], 1234);
  const StudioRun second = run_studio_script(dir + "/second", script("settings_second.txt"), config);
  EXPECT_EQ(second.exit_code, 0) << describe(second);
}

TEST(StudioHeadless, BrokenShaderIsReportedWithTheCompilerLog) {
  REQUIRE_STUDIO();
  const std::string dir = temp_dir("studio");
  const std::string shaders = dir + "/shaders";
  fs::create_directories(shaders);
  const std::string src = (tests_dir().parent_path() / "shaders").string() + "/";
  fs::copy_file(src + "fullscreen.vert", shaders + "/fullscreen.vert");
  fs::copy_file(src + "diff_heatmap.frag", shaders + "/diff_heatmap.frag");
  write_file(shaders + "/image_view.frag", "#version 330 core\nout vec4 frag;\nvoid main() { frag = undefined_thing; }\n");
  const StudioRun r = run_studio_script(
      dir, "wait_frames 3\nexpect /shaders/ok == false\nexpect_message image_view.frag\nstate state.json\n", "",
      "BLR_SHADER_DIR='" + shaders + "'");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_EQ(r.state["shaders"]["errors"].size(), 1u) << r.state["shaders"].dump(2);
  const std::string err = r.state["shaders"]["errors"][0];
  EXPECT_NE(err.find("compile error"), std::string::npos) << err;
  EXPECT_NE(err.find("undefined_thing"), std::string::npos) << "the compiler's log is in the message: " << err;
  EXPECT_EQ(r.state["shaders"]["diff"], true) << "the other program still built";
}

// Without a TrueType font (--builtin-font stands in for a machine that has none) the app runs on ImGui's
// Latin-1 font and draws its typographic glyphs in ASCII instead of '?'.
TEST(StudioHeadless, BuiltinFontFallsBackToAsciiGlyphs) {
  REQUIRE_STUDIO();
  const std::string dir = temp_dir("studio");
  const StudioRun r = run_studio_script(dir, "tab Compare\nwait_frames 3\nscreenshot compare.png\nstate state.json\n",
                                        "", "", "--cpu --builtin-font");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.state["fonts"], "ImGui default (no TrueType font found)");
  EXPECT_EQ(r.state["typographic_glyphs"], false);
}

}  // namespace
}  // namespace blr::test

namespace blr::test {
namespace {

// Not a check: writes the tiny models, a DiT-S/2-sized random DiT (384 wide, 12 deep, 32x32 latent) and
// the test video to $STUDIO_MODELS_OUT, for documentation screenshots and for measuring the UI frame
// rate by hand (docs/STUDIO.md). Skips unless that variable is set.
TEST(StudioModels, WriteFilesForManualRuns) {
  const char* out = std::getenv("STUDIO_MODELS_OUT");
  if (!out || !*out) GTEST_SKIP() << "skipped: set STUDIO_MODELS_OUT to write the files";
  fs::create_directories(out);
  const std::string d = out;
  write_tiny_dit(d + "/tiny_dit.safetensors", 11);
  write_tiny_vae(d + "/tiny_vae.safetensors", 12);
  write_tiny_vit(d + "/tiny_vit.safetensors", 13);
  write_random_dit(d + "/dit_s2_random.safetensors", 14, 384, 12, 6, 32);
  EXPECT_TRUE(write_test_video(d + "/clip.avi", 48));
  EXPECT_TRUE(fs::exists(d + "/dit_s2_random.safetensors"));
}

}  // namespace
}  // namespace blr::test
