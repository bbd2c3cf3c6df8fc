// `blr bench-layer` refuses bad requests with one clear line and exit code 2 before touching the GPU,
// and says "no CUDA device" (exit 2) where there is none.
#include <string>
#include <vector>

#include "app/cli/command.h"
#include "engine/core/device.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

struct CliResult {
  int code = 0;
  std::string err;
};

CliResult run_blr(std::vector<std::string> args) {
  args.insert(args.begin(), "blr");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  testing::internal::CaptureStderr();
  testing::internal::CaptureStdout();
  CliResult r;
  r.code = cli::run_cli(static_cast<int>(argv.size()), argv.data());
  testing::internal::GetCapturedStdout();
  r.err = testing::internal::GetCapturedStderr();
  return r;
}

void expect_usage_error(const std::vector<std::string>& args, const std::string& needle) {
  const CliResult r = run_blr(args);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "expected one line, got: " << r.err;
}

TEST(BenchLayerCli, UnknownVariant) {
  expect_usage_error({"bench-layer", "--variants", "dense,monarhc"}, "unknown variant 'monarhc'");
}

TEST(BenchLayerCli, BlocksMustDivideBothSides) {
  expect_usage_error({"bench-layer", "--variants", "blast", "--b", "7"}, "b=7 does not divide --in 1152");
  expect_usage_error({"bench-layer", "--variants", "blast", "--in", "1152", "--out", "1000", "--b", "9"},
                     "b=9 does not divide --out 1000");
}

TEST(BenchLayerCli, RankTooLarge) {
  expect_usage_error({"bench-layer", "--variants", "lowrank", "--r", "5000"}, "r=5000 is too large");
  expect_usage_error({"bench-layer", "--variants", "monarch", "--monarch-b", "4", "--monarch-r", "130", "--in", "768",
                      "--out", "3072"},
                     "r=130 must be a multiple of b=4");
  expect_usage_error({"bench-layer", "--variants", "blast", "--in", "64", "--out", "96", "--b", "2", "--r", "65"},
                     "r=65 is too large");
}

TEST(BenchLayerCli, TooFewSamplesAndBadNumbers) {
  expect_usage_error({"bench-layer", "--samples", "50"}, "at least 100");
  expect_usage_error({"bench-layer", "--tokens", "0"}, "at least 1");
  expect_usage_error({"bench-layer", "--tokens", "many"}, "expects an integer");
  expect_usage_error({"bench-layer", "--stage2", "fast"}, "unknown stage path 'fast'");
}

TEST(BenchLayerCli, NoDeviceIsAUsageError) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  expect_usage_error({"bench-layer", "--variants", "dense,blast", "--in", "64", "--out", "96", "--b", "2", "--r", "16"},
                     "no CUDA device");
}

}  // namespace
}  // namespace blr
