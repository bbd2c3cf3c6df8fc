// `blr info` run in-process: output for a file the test writes, and exit code 2 for bad input.
#include <algorithm>

#include "app/cli/command.h"
#include "engine/io/safetensors.h"
#include "tests/common/test_util.h"

namespace blr {

static int run_blr(std::vector<std::string> args, std::string* out = nullptr, std::string* err = nullptr) {
  args.insert(args.begin(), "blr");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  const int rc = cli::run_cli(static_cast<int>(argv.size()), argv.data());
  const std::string o = ::testing::internal::GetCapturedStdout();
  const std::string e = ::testing::internal::GetCapturedStderr();
  if (out) *out = o;
  if (err) *err = e;
  return rc;
}

TEST(InfoCli, ListsTensorsTotalsAndMetadata) {
  const std::string path = test::temp_dir("info") + "/m.safetensors";
  write_safetensors(path,
                    {{"blocks.0.attn.qkv.weight", Tensor::zeros({2304, 768}).to_dtype(DType::BF16)},
                     {"blocks.0.attn.qkv.bias", Tensor::zeros({2304})}},
                    {{"blr.blocks.0.attn.qkv.method", "dense"}});
  std::string out;
  ASSERT_EQ(run_blr({"info", path}, &out), 0);
  EXPECT_NE(out.find("blocks.0.attn.qkv.weight"), std::string::npos) << out;
  EXPECT_NE(out.find("bf16"), std::string::npos) << out;
  EXPECT_NE(out.find("[2304,768]"), std::string::npos) << out;
  EXPECT_NE(out.find("3.375 MiB"), std::string::npos) << out;  // 2304·768·2 bytes
  EXPECT_NE(out.find("2 tensors, 1771776 parameters"), std::string::npos) << out;
  EXPECT_NE(out.find("blr.blocks.0.attn.qkv.method = dense"), std::string::npos) << out;
}

TEST(InfoCli, MissingFileIsAUsageErrorWithOneLine) {
  std::string err;
  EXPECT_EQ(run_blr({"info", "/nonexistent/model.safetensors"}, nullptr, &err), 2);
  EXPECT_NE(err.find("/nonexistent/model.safetensors: cannot open"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

TEST(InfoCli, CorruptFileExitsTwo) {
  const std::string path = test::temp_dir("info") + "/corrupt.safetensors";
  test::write_file(path, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10));
  std::string err;
  EXPECT_EQ(run_blr({"info", path}, nullptr, &err), 2);
  EXPECT_NE(err.find("runs past the end of the file"), std::string::npos) << err;
}

TEST(InfoCli, UnknownFlagsAndCommandsExitTwo) {
  std::string err;
  EXPECT_EQ(run_blr({"info", "--bogus", "x"}, nullptr, &err), 2);
  EXPECT_NE(err.find("unknown option --bogus"), std::string::npos) << err;
  EXPECT_EQ(run_blr({"info"}, nullptr, &err), 2);
  EXPECT_NE(err.find("missing argument FILE"), std::string::npos) << err;
  EXPECT_EQ(run_blr({"frobnicate"}, nullptr, &err), 2);
  EXPECT_NE(err.find("unknown command 'frobnicate'"), std::string::npos) << err;
  std::string out;
  EXPECT_EQ(run_blr({"info", "--help"}, &out), 0);
  EXPECT_NE(out.find("usage: blr info FILE"), std::string::npos) << out;
}

}  // namespace blr
