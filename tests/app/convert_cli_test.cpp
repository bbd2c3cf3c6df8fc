// `blr convert` and `blr info` on PyTorch files, run in-process through the CLI dispatcher: the copy holds
// exactly the checkpoint's tensors (converted when asked), --key picks a nested state dict, and the
// command refuses to overwrite its input, odd output names and malicious files with exit code 2.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "app/cli/command.h"
#include "engine/io/checkpoint.h"
#include "engine/io/safetensors.h"
#include "engine/io/torch_checkpoint.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

int blr_cli(std::vector<std::string> args) {
  args.insert(args.begin(), "blr");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return cli::run_cli(static_cast<int>(argv.size()), argv.data());
}

// The first fixture set written by tools/make_torch_fixtures.py (any torch version will do here).
std::string fixture(const std::string& file) {
  std::vector<std::string> sets;
  for (const auto& d : std::filesystem::directory_iterator(test::data_path("torch")))
    if (std::filesystem::exists(d.path() / "manifest.json")) sets.push_back(d.path().string());
  std::sort(sets.begin(), sets.end());
  return sets.empty() ? std::string("<no fixture set>") : sets[0] + "/" + file;
}

class ConvertCli : public testing::Test {
 protected:
  void SetUp() override {
    if (!torch_checkpoints_supported()) GTEST_SKIP() << "skipped: built without libzip (no PyTorch reader)";
    dir_ = test::temp_dir("convert_cli");
  }
  std::string dir_;
};

TEST_F(ConvertCli, CopiesEveryTensorExactly) {
  const std::string out = dir_ + "/module.safetensors";
  ASSERT_EQ(blr_cli({"convert", fixture("module.pt"), out}), 0);
  const Checkpoint in = Checkpoint::open(fixture("module.pt"));
  const Checkpoint copy = Checkpoint::open(out);
  EXPECT_EQ(copy.format(), "safetensors");
  auto a = in.names(), b = copy.names();
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  ASSERT_EQ(a, b);
  for (const auto& name : a) {
    const Tensor x = in.get(name), y = copy.get(name);
    ASSERT_EQ(x.dtype(), y.dtype()) << name;
    ASSERT_EQ(x.shape(), y.shape()) << name;
    EXPECT_EQ(std::memcmp(x.data(), y.data(), x.nbytes()), 0) << name;
  }
  EXPECT_EQ(copy.metadata_or("pytorch.state_dict", "?"), "(top level)");
}

TEST_F(ConvertCli, ConvertsFloatTensorsAndKeepsIntegers) {
  const std::string out = dir_ + "/module_bf16.safetensors";
  ASSERT_EQ(blr_cli({"convert", fixture("module.pt"), out, "--dtype", "bf16"}), 0);
  const Checkpoint in = Checkpoint::open(fixture("module.pt"));
  const Checkpoint copy = Checkpoint::open(out);
  size_t floats = 0;
  for (const auto& name : in.names()) {
    const Tensor x = in.get(name), y = copy.get(name);
    if (x.dtype() == DType::F32) {
      ++floats;
      ASSERT_EQ(y.dtype(), DType::BF16) << name;
      const Tensor want = x.to_dtype(DType::BF16);
      EXPECT_EQ(std::memcmp(want.data(), y.data(), want.nbytes()), 0) << name;
    } else {
      EXPECT_EQ(y.dtype(), x.dtype()) << name << " is not floating and must keep its dtype";
    }
  }
  EXPECT_GT(floats, 5u);
  EXPECT_EQ(copy.info("2.num_batches_tracked").dtype, DType::I64);
}

TEST_F(ConvertCli, KeyChoosesTheNestedStateDict) {
  const std::string ema = dir_ + "/ema.safetensors", opt = dir_ + "/opt.safetensors";
  ASSERT_EQ(blr_cli({"convert", fixture("nested.pt"), ema}), 0);
  ASSERT_EQ(blr_cli({"convert", fixture("nested.pt"), opt, "--key", "opt"}), 0);
  EXPECT_EQ(Checkpoint::open(ema).metadata_or("pytorch.state_dict", "?"), "ema");
  EXPECT_TRUE(Checkpoint::open(ema).has("0.weight"));
  EXPECT_TRUE(Checkpoint::open(opt).has("state.0.exp_avg"));
  EXPECT_FALSE(Checkpoint::open(opt).has("0.weight"));
  EXPECT_EQ(Checkpoint::open(ema).metadata_or("epoch", "?"), "7");
  EXPECT_EQ(blr_cli({"convert", fixture("nested.pt"), dir_ + "/x.safetensors", "--key", "missing"}), 2);
}

TEST_F(ConvertCli, RefusesToOverwriteItsInput) {
  // IN given three ways: the same path, through ../, and as a hard link.
  const std::string in = dir_ + "/weights.safetensors";
  ASSERT_EQ(blr_cli({"convert", fixture("module.pt"), in}), 0);
  const std::string before = test::read_file(in);
  std::filesystem::create_directories(dir_ + "/sub");
  const std::string link = dir_ + "/link.safetensors";
  ASSERT_EQ(::link(in.c_str(), link.c_str()), 0);
  for (const std::string& out : {in, dir_ + "/sub/../weights.safetensors", link}) {
    SCOPED_TRACE(out);
    EXPECT_EQ(blr_cli({"convert", in, out, "--dtype", "bf16"}), 2);
    EXPECT_EQ(test::read_file(in), before) << "the input was modified";
  }
}

TEST_F(ConvertCli, RefusesBadArguments) {
  const std::string out = dir_ + "/out.safetensors";
  EXPECT_EQ(blr_cli({"convert", fixture("module.pt"), dir_ + "/out.pt"}), 2);  // OUT must be .safetensors
  EXPECT_EQ(blr_cli({"convert", fixture("module.pt"), out, "--dtype", "i8"}), 2);
  EXPECT_EQ(blr_cli({"convert", fixture("module.pt"), out, "--dtype", "float128"}), 2);
  EXPECT_EQ(blr_cli({"convert", dir_ + "/does_not_exist.pt", out}), 2);
  EXPECT_EQ(blr_cli({"convert", fixture("module.pt")}), 2);
  EXPECT_FALSE(test::file_exists(out));
  EXPECT_FALSE(test::file_exists(dir_ + "/out.pt"));
}

TEST_F(ConvertCli, RefusesMaliciousFilesWithoutWritingAnything) {
  for (const char* evil : {"evil_os_system.pt", "evil_builtins_eval.pt", "evil_inside_state_dict.pt", "legacy.pt",
                           "bomb_storage.pt", "truncated.pt"}) {
    SCOPED_TRACE(evil);
    const std::string out = dir_ + "/evil.safetensors";
    EXPECT_EQ(blr_cli({"convert", fixture(evil), out}), 2);
    EXPECT_FALSE(test::file_exists(out));
    EXPECT_FALSE(test::file_exists(out + ".tmp"));
  }
}

TEST_F(ConvertCli, InfoListsPyTorchFilesAndHonoursKey) {
  testing::internal::CaptureStdout();
  const int rc = blr_cli({"info", fixture("nested.pt"), "--key", "opt"});
  const std::string text = testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc, 0);
  EXPECT_NE(text.find("(pytorch-zip)"), std::string::npos) << text;
  EXPECT_NE(text.find("state.0.exp_avg"), std::string::npos) << text;
  EXPECT_NE(text.find("pytorch.state_dict = opt"), std::string::npos) << text;
  EXPECT_EQ(text.find("0.weight "), std::string::npos) << "--key opt must not list the ema weights:\n" << text;

  testing::internal::CaptureStdout();
  EXPECT_EQ(blr_cli({"info", fixture("training.pt")}), 0);
  const std::string auto_text = testing::internal::GetCapturedStdout();
  EXPECT_NE(auto_text.find("pytorch.state_dict = ema"), std::string::npos) << auto_text;

  EXPECT_EQ(blr_cli({"info", fixture("evil_posix_system.pt")}), 2);
}

}  // namespace
}  // namespace blr
