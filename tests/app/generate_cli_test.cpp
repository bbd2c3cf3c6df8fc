// `blr generate` in-process: bad input exits with code 2 and a message naming the problem; a tiny
// end-to-end run (tiny DiT, CPU backend, latent-preview decoder) writes PNGs whose tEXt chunk records the
// parameters, and a JSON report.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "engine/core/error.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "app/cli/command.h"
#include "engine/io/checkpoint.h"
#include "engine/io/png.h"
#include "engine/io/safetensors.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

std::string tiny_dit() { return test::data_path("dit_tiny/dit_tiny.safetensors"); }

struct CliRun {
  int code = 0;
  std::string err;
};

CliRun run(std::vector<std::string> args) {
  args.insert(args.begin(), {"blr", "generate"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStderr();
  CliRun r;
  r.code = cli::run_cli(static_cast<int>(argv.size()), argv.data());
  r.err = testing::internal::GetCapturedStderr();
  return r;
}

std::vector<std::string> base(const std::string& out) {
  return {"--dit", tiny_dit(), "--preview-decode", "--cpu", "--steps", "3", "--out", out, "--no-progress"};
}

TEST(GenerateCli, MissingAndCorruptFilesExitWith2) {
  const std::string dir = test::temp_dir("gen_cli_files");
  CliRun r = run({"--dit", dir + "/nope.safetensors", "--preview-decode", "--class", "1", "--out", dir + "/o.png"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("nope.safetensors"), std::string::npos) << r.err;
  test::write_file(dir + "/corrupt.safetensors", "this is not a checkpoint at all");
  r = run({"--dit", dir + "/corrupt.safetensors", "--preview-decode", "--class", "1", "--out", dir + "/o.png"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("corrupt.safetensors"), std::string::npos) << r.err;
  // Without --dit the built-in demo model is used; where it is not installed, that is a clear error.
  const char* old_assets = std::getenv("BLR_ASSETS_DIR");
  const std::string saved_assets = old_assets ? old_assets : "";
  setenv("BLR_ASSETS_DIR", dir.c_str(), 1);
  r = run({"--preview-decode", "--class", "1"});
  if (old_assets) setenv("BLR_ASSETS_DIR", saved_assets.c_str(), 1);
  else unsetenv("BLR_ASSETS_DIR");
  EXPECT_EQ(r.code, 2) << "no --dit and no demo model: " << r.err;
  EXPECT_NE(r.err.find("demo DiT"), std::string::npos) << r.err;
  r = run({"--dit", tiny_dit(), "--class", "1"});
  EXPECT_EQ(r.code, 2) << "--vae is required without --preview-decode: " << r.err;
}

TEST(GenerateCli, WrongShapeNamesTensorAndShapes) {
  const std::string dir = test::temp_dir("gen_cli_shape");
  const Checkpoint ck = Checkpoint::open(tiny_dit());
  std::vector<std::pair<std::string, Tensor>> t;
  for (const auto& n : ck.names())
    t.emplace_back(n, n == "blocks.0.attn.qkv.weight" ? Tensor::zeros({100, 64}) : ck.get(n));
  write_safetensors(dir + "/bad.safetensors", t, ck.metadata());
  const CliRun r = run([&] {
    auto a = base(dir + "/o.png");
    a.insert(a.end(), {"--class", "1"});
    a[1] = dir + "/bad.safetensors";
    return a;
  }());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("blocks.0.attn.qkv"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[100,64]"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[192,64]"), std::string::npos) << r.err;
}

TEST(GenerateCli, BadRequestValuesExitWith2) {
  const std::string dir = test::temp_dir("gen_cli_values");
  const std::string out = dir + "/o.png";
  auto with = [&](std::vector<std::string> extra) {
    auto a = base(out);
    a.insert(a.end(), extra.begin(), extra.end());
    return run(a);
  };
  CliRun r = with({"--class", "10"});  // the tiny model has classes 0..9
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("out of range"), std::string::npos) << r.err;
  r = with({"--class", "-1"});
  EXPECT_EQ(r.code, 2) << r.err;
  r = with({"--class", "no such animal"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("no such animal"), std::string::npos) << r.err;
  r = with({"--class", "1", "--steps", "0"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("steps"), std::string::npos) << r.err;
  r = with({"--class", "1", "--cfg", "-2"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("cfg"), std::string::npos) << r.err;
  r = with({"--class", "1", "--sampler", "euler"});
  EXPECT_EQ(r.code, 2) << r.err;
  r = with({"--class", "1", "--mode", "sparse"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_FALSE(test::file_exists(out)) << "nothing may be written on bad input";
}

TEST(GenerateCli, TinyEndToEndWritesPngWithParameters) {
  if (!png_supported()) GTEST_SKIP() << "built without stb_image_write";
  const std::string dir = test::temp_dir("gen_cli_e2e");
  const std::string out = dir + "/grid.png", json = dir + "/report.json";
  auto a = base(out);
  a.insert(a.end(), {"--class", "3", "--class", "7", "--seed", "5", "--sampler", "ddim", "--cfg", "2.5", "--json", json});
  const CliRun r = run(a);
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(test::file_exists(out));
  EXPECT_EQ(png_size(out), std::make_pair(128, 64)) << "two 64x64 images side by side";
  const PngText text = read_png_text(out);
  std::string params;
  for (const auto& [k, v] : text)
    if (k == "parameters") params = v;
  ASSERT_FALSE(params.empty()) << "no tEXt 'parameters' chunk";
  const auto p = nlohmann::json::parse(params);
  EXPECT_EQ(p["steps"], 3);
  EXPECT_EQ(p["seed"], 5);
  EXPECT_EQ(p["sampler"], "ddim");
  EXPECT_EQ(p["cfg"], 2.5);
  EXPECT_EQ(p["mode"], "dense");
  EXPECT_EQ(p["classes"], nlohmann::json({3, 7}));
  EXPECT_EQ(p["seeds"], nlohmann::json({5, 6}));
  EXPECT_NE(p["dit"].get<std::string>().find("dit_tiny.safetensors"), std::string::npos);
  const auto j = nlohmann::json::parse(test::read_file(json));
  EXPECT_EQ(j["timings"]["step_ms"].size(), 3u);
  EXPECT_EQ(j["outputs"][0], out);
  EXPECT_TRUE(j["memory"].contains("categories"));
}

TEST(GenerateCli, NumberedFilesAndClassNames) {
  if (!png_supported()) GTEST_SKIP() << "built without stb_image_write";
  const std::string dir = test::temp_dir("gen_cli_files_layout");
  auto a = base(dir + "/img.png");
  // "goldfish" is ImageNet class 1; the tiny model has 10 classes, so names below 10 resolve.
  a.insert(a.end(), {"--class", "goldfish", "--class", "2", "--layout", "files", "--cfg", "1"});
  const CliRun r = run(a);
  ASSERT_EQ(r.code, 0) << r.err;
  for (int i = 0; i < 2; ++i) {
    const std::string f = dir + "/img_" + std::to_string(i) + ".png";
    ASSERT_TRUE(test::file_exists(f)) << f;
    std::string params;
    for (const auto& [k, v] : read_png_text(f))
      if (k == "parameters") params = v;
    const auto p = nlohmann::json::parse(params);
    EXPECT_EQ(p["classes"][0], i == 0 ? 1 : 2);
    EXPECT_EQ(p["seed"], i);
  }
}

}  // namespace
}  // namespace blr
