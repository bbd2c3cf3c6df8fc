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

}  // namespace
}  // namespace blr
