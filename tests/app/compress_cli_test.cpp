// `blr compress` in-process: a round trip (compress -> open -> load_linear -> forward equals the assembled
// dense), the file's contents and metadata, and every refusal (bad rules, IN == OUT, missing file) exits
// with 2 and writes nothing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "app/cli/command.h"
#include "engine/backend/cpu/cpu_ops.h"
#include "engine/compress/compress.h"
#include "engine/io/checkpoint.h"
#include "engine/io/safetensors.h"
#include "engine/nn/linear.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

namespace fs = std::filesystem;
using test::compare;
using test::random_tensor;

int run(std::vector<std::string> args) {
  args.insert(args.begin(), "blr");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return cli::run_cli(static_cast<int>(argv.size()), argv.data());
}

class CompressCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_dir("compress_cli");
    in_ = dir_ + "/model.safetensors";
    // A tiny transformer-like file: two blocks of qkv (36x12) and fc1 (48x12), a head, a norm, an embedding.
    std::vector<std::pair<std::string, Tensor>> t;
    uint64_t seed = 1;
    for (int blk = 0; blk < 2; ++blk) {
      const std::string p = "blocks." + std::to_string(blk) + ".";
      t.emplace_back(p + "attn.qkv.weight", random_tensor({36, 12}, seed++, 0.02f));
      t.emplace_back(p + "attn.qkv.bias", random_tensor({36}, seed++));
      t.emplace_back(p + "mlp.fc1.weight", random_tensor({48, 12}, seed++, 0.02f));
      t.emplace_back(p + "mlp.fc1.bias", random_tensor({48}, seed++));
    }
    t.emplace_back("head.weight", random_tensor({10, 12}, seed++));
    t.emplace_back("norm.weight", random_tensor({12}, seed++));
    t.emplace_back("pos_embed", random_tensor({1, 4, 12}, seed++));
    write_safetensors(in_, t, {{"origin", "test"}});
    in_bytes_ = test::read_file(in_);
  }
  std::string dir_, in_, in_bytes_;
};

TEST_F(CompressCli, RoundTrip) {
  const std::string out = dir_ + "/out.safetensors";
  ASSERT_EQ(run({"compress", in_, out, "--rule", "blocks.0.*=dense", "--rule", "blocks.*.attn.qkv=blast:b=3,r=4,iters=40",
                 "--rule", "blocks.*.mlp.fc1=monarch:b=2,r=4", "--rule", "head=lowrank:r=3", "--cpu", "--seed", "5"}),
            0);
  EXPECT_EQ(test::read_file(in_), in_bytes_) << "the input must not change";
  const Checkpoint in = Checkpoint::open(in_);
  const Checkpoint ck = Checkpoint::open(out);
  // blocks.0 stays dense (first rule wins), blocks.1 is factored, the rest is copied unchanged.
  EXPECT_TRUE(ck.has("blocks.0.attn.qkv.weight"));
  EXPECT_FALSE(ck.has("blocks.1.attn.qkv.weight"));
  EXPECT_TRUE(ck.has("blocks.1.attn.qkv.blast_U") && ck.has("blocks.1.attn.qkv.blast_S") && ck.has("blocks.1.attn.qkv.blast_V"));
  EXPECT_TRUE(ck.has("blocks.1.mlp.fc1.monarch_R") && ck.has("blocks.1.mlp.fc1.monarch_L"));
  EXPECT_TRUE(ck.has("head.lowrank_A") && ck.has("head.lowrank_B"));
  for (const char* same : {"blocks.0.attn.qkv.weight", "blocks.1.attn.qkv.bias", "blocks.1.mlp.fc1.bias", "norm.weight",
                           "pos_embed"})
    EXPECT_EQ(compare(ck.get(same), in.get(same)).max_abs, 0.0) << same;
  const auto& meta = ck.metadata();
  EXPECT_EQ(meta.at("origin"), "test");
  EXPECT_EQ(meta.at("blr.blocks.1.attn.qkv.method"), "blast");
  EXPECT_EQ(meta.at("blr.blocks.1.attn.qkv.b"), "3");
  EXPECT_EQ(meta.at("blr.blocks.1.attn.qkv.r"), "4");
  EXPECT_EQ(meta.at("blr.blocks.1.mlp.fc1.method"), "monarch");
  EXPECT_EQ(meta.at("blr.head.method"), "lowrank");
  EXPECT_NE(meta.at("blr.rules").find("blocks.*.attn.qkv=blast:b=3,r=4,iters=40"), std::string::npos);
  EXPECT_EQ(meta.count("blr.blocks.0.attn.qkv.method"), 0u);

  CpuOps ops;
  struct Layer {
    const char* name;
    int64_t in, out;
    LinearKind kind;
  } layers[] = {{"blocks.1.attn.qkv", 12, 36, LinearKind::Blast},
                {"blocks.1.mlp.fc1", 12, 48, LinearKind::Monarch},
                {"head", 12, 10, LinearKind::LowRank},
                {"blocks.0.mlp.fc1", 12, 48, LinearKind::Dense}};
  for (const auto& L : layers) {
    const Linear l = load_linear(ck, L.name, L.in, L.out, {});
    EXPECT_EQ(l.kind, L.kind) << L.name;
    // forward == x·Ŵᵀ + bias with Ŵ assembled from the stored factors.
    const Tensor x = random_tensor({5, L.in}, 77);
    Tensor y = Tensor::zeros({5, L.out}), ref = Tensor::zeros({5, L.out});
    l.forward(ops, x, y);
    Linear dense;
    dense.kind = LinearKind::Dense;
    dense.in = L.in;
    dense.out = L.out;
    dense.weight = assemble_dense(l);
    dense.bias = l.bias;
    dense.forward(ops, x, ref);
    const auto c = compare(y, ref);
    EXPECT_LE(c.max_abs, 1e-5 * std::max(1.0, c.max_ref)) << L.name << ": " << c.str();  // fp32 summation order
    if (L.kind == LinearKind::Dense) continue;
    // The recorded error is the error of the stored factors against the original weight.
    const std::string key = std::string("blr.") + L.name + ".rel_error";
    const double recorded = std::strtod(meta.at(key).c_str(), nullptr);
    EXPECT_NEAR(recorded, relative_error(in.get(std::string(L.name) + ".weight"), l), 1e-5 + 1e-4 * recorded) << key;
    EXPECT_NEAR(l.rel_error, recorded, 1e-12);
    EXPECT_LT(recorded, 1.0);
  }
}

TEST_F(CompressCli, DtypeOptionStoresFactorsInBf16) {
  const std::string out = dir_ + "/bf16.safetensors";
  ASSERT_EQ(run({"compress", in_, out, "--rule", "*.fc1=monarch:b=4,r=8", "--dtype", "bf16", "--cpu"}), 0);
  const Checkpoint ck = Checkpoint::open(out);
  EXPECT_EQ(ck.info("blocks.0.mlp.fc1.monarch_R").dtype, DType::BF16);
  EXPECT_EQ(ck.info("blocks.0.mlp.fc1.bias").dtype, DType::F32) << "biases are copied unchanged";
  EXPECT_EQ(ck.info("head.weight").dtype, DType::F32);
}

TEST_F(CompressCli, RefusalsExitWith2AndWriteNothing) {
  const std::string out = dir_ + "/never.safetensors";
  struct Case {
    std::vector<std::string> args;
    const char* expect;
  } cases[] = {
      // b=5 does not divide 12: every impossible pair is listed before any work.
      {{"compress", in_, out, "--rule", "*.qkv=blast:b=3,r=4", "--rule", "*.fc1=monarch:b=5,r=5"}, "b=5 must divide"},
      {{"compress", in_, out, "--rule", "*.qkv=monarch:b=3,r=30"}, "r/b=10 exceeds"},
      {{"compress", in_, out, "--rule", "*.qkv=lowrank:r=13"}, "exceeds min(in, out)=12"},
      {{"compress", in_, out, "--rule", "*.qkv=blast:b=3"}, "needs a rank r"},
      {{"compress", in_, out, "--rule", "*.qkv"}, "expected PATTERN=METHOD"},
      {{"compress", in_, out}, "at least one --rule"},
      {{"compress", in_, out, "--rule", "nothing.here=blast:b=3,r=4"}, "nothing to do"},
      {{"compress", in_, out, "--rule", "*.qkv=blast:b=3,r=4", "--dtype", "i8"}, "--dtype must be f32, bf16 or f16"},
      {{"compress", in_, in_, "--rule", "*.qkv=blast:b=3,r=4"}, "refusing to overwrite the input"},
      {{"compress", in_, dir_ + "/./model.safetensors", "--rule", "*.qkv=blast:b=3,r=4"}, "refusing to overwrite"},
      {{"compress", dir_ + "/missing.safetensors", out, "--rule", "*.qkv=blast:b=3,r=4"}, "cannot open"},
  };
  for (const auto& c : cases) {
    testing::internal::CaptureStderr();
    const int code = run(c.args);
    const std::string err = testing::internal::GetCapturedStderr();
    std::string line;
    for (const auto& a : c.args) line += a + " ";
    EXPECT_EQ(code, 2) << line << "\n" << err;
    EXPECT_NE(err.find(c.expect), std::string::npos) << line << "\nstderr: " << err;
    EXPECT_FALSE(fs::exists(out)) << line;
    EXPECT_EQ(test::read_file(in_), in_bytes_) << line;
  }
  // A hard link to IN is the same file too.
  const std::string link = dir_ + "/link.safetensors";
  fs::create_hard_link(in_, link);
  EXPECT_EQ(run({"compress", in_, link, "--rule", "*.qkv=blast:b=3,r=4"}), 2);
  EXPECT_EQ(test::read_file(in_), in_bytes_);
}

TEST_F(CompressCli, WarnsAboutRulesThatMatchNothing) {
  const std::string out = dir_ + "/warn.safetensors";
  testing::internal::CaptureStderr();
  const int code = run({"compress", in_, out, "--rule", "*.fc1=monarch:b=2,r=2", "--rule", "blocks.*.mlp.fc1=blast:b=2,r=2",
                        "--rule", "nope=lowrank:r=1", "--cpu"});
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 0) << err;
  EXPECT_NE(err.find("rule 'nope=lowrank:r=1' matches no layer"), std::string::npos) << err;
  EXPECT_NE(err.find("rule 'blocks.*.mlp.fc1=blast:b=2,r=2' matches only layers that an earlier rule already takes"),
            std::string::npos)
      << err;
  EXPECT_TRUE(fs::exists(out));
}

}  // namespace
}  // namespace blr
