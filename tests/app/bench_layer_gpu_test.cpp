// `blr bench-layer` end to end on the GPU: a small layer in every variant, JSON with every field the
// performance tables need, and outputs that agree with the CPU reference.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "app/cli/command.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

TEST(BenchLayerGpu, SmallLayerAllVariantsWritesJson) {
  BLR_REQUIRE_CUDA();
  const std::string json_path = test::temp_dir("bench_layer") + "/out.json";
  std::vector<std::string> args = {"blr", "bench-layer", "--in", "256", "--out", "384", "--tokens", "33",
                                   "--variants", "dense,lowrank,monarch,blast", "--b", "4", "--r", "64",
                                   "--act", "gelu_tanh", "--samples", "100", "--warmup", "2", "--json", json_path};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  ASSERT_EQ(cli::run_cli(static_cast<int>(argv.size()), argv.data()), 0);
  const nlohmann::json j = nlohmann::json::parse(test::read_file(json_path));
  ASSERT_TRUE(j.contains("environment") && j["environment"].contains("device"));
  ASSERT_EQ(j["variants"].size(), 4u);
  for (const auto& v : j["variants"]) {
    SCOPED_TRACE(v.dump());
    EXPECT_GT(v["timing"]["median_ms"].get<double>(), 0.0);
    EXPECT_GE(v["timing"]["samples"].get<int>(), 100);
    EXPECT_GT(v["tflops"].get<double>(), 0.0);
    EXPECT_GT(v["roofline_pct"].get<double>(), 0.0);
    EXPECT_GE(v["rotating_sets"].get<int>(), 2);
    EXPECT_TRUE(v["finite"].get<bool>());
    // bf16 storage: errors relative to the output scale stay within bf16 rounding (see linear parity test).
    EXPECT_LT(v["max_rel_error"].get<double>(), 3e-2);
    EXPECT_GT(v["cosine"].get<double>(), 0.999);
    EXPECT_FALSE(v["plan"].get<std::string>().empty());
  }
  EXPECT_NEAR(j["ratio_vs_dense"]["dense"].get<double>(), 1.0, 1e-12);
}

// --breakdown, --sweep and --probe on a ViT-sized layer: every timed configuration computed the right layer
// (the sweep checks each against the CPU reference and marks a wrong one), the stages were timed, and the
// digest lines are there.
TEST(BenchLayerGpu, BreakdownSweepAndProbeRun) {
  BLR_REQUIRE_CUDA();
  const std::string json_path = test::temp_dir("bench_layer_sweep") + "/out.json";
  std::vector<std::string> args = {"blr", "bench-layer", "--in", "768", "--out", "2304", "--tokens", "197",
                                   "--variants", "dense,blast,monarch", "--blast-b", "3", "--monarch-b", "4",
                                   "--r", "128", "--act", "gelu", "--samples", "100", "--warmup", "2",
                                   "--breakdown", "--sweep", "--probe", "--label", "vit-qkv", "--json", json_path};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  testing::internal::CaptureStdout();
  const int rc = cli::run_cli(static_cast<int>(argv.size()), argv.data());
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("S| vit-qkv 197tok blast b3 r128: "), std::string::npos) << out;
  EXPECT_NE(out.find("S|   bd: s1 "), std::string::npos) << out;
  EXPECT_NE(out.find("S|   sw: auto "), std::string::npos) << out;
  EXPECT_NE(out.find("S| probe (empty kernel"), std::string::npos) << out;
  EXPECT_EQ(out.find("WRONG OUTPUT"), std::string::npos) << out;
  const nlohmann::json j = nlohmann::json::parse(test::read_file(json_path));
  ASSERT_TRUE(j.contains("probe"));
  EXPECT_EQ(j["probe"].size(), 4u);
  for (const auto& pr : j["probe"]) EXPECT_GT(pr["us_per_node"].get<double>(), 0.0);
  for (const auto& v : j["variants"]) {
    SCOPED_TRACE(v["variant"].get<std::string>());
    ASSERT_TRUE(v.contains("breakdown"));
    if (v["variant"] == "dense") continue;
    const auto& b = v["breakdown"];
    EXPECT_GT(b["stage1_us"].get<double>(), 0.0);
    EXPECT_GT(b["stage2_us"].get<double>(), 0.0);
    EXPECT_GT(b["pair_us"].get<double>(), 0.0);
    EXPECT_GT(b["pdl_first_us"].get<double>(), 0.0);
    EXPECT_NE(b["plan_stage1"].get<std::string>().find("s1 tc"), std::string::npos) << b["plan_stage1"];
    ASSERT_TRUE(v.contains("sweep"));
    int timed = 0;
    for (const auto& row : v["sweep"]["rows"]) {
      const std::string err = row["error"].get<std::string>();
      EXPECT_EQ(err.find("WRONG OUTPUT"), std::string::npos) << row.dump();
      if (err.empty()) {
        ++timed;
        EXPECT_LT(row["rel_err"].get<double>(), 3e-2) << row.dump();  // bf16 rounding, as in the parity test
      }
    }
    EXPECT_GE(timed, 8) << v["sweep"].dump();
    EXPECT_GE(v["sweep"]["auto_rank"].get<int>(), 1);
  }
}

}  // namespace
}  // namespace blr
