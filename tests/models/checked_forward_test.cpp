// CheckingOps (tests/common/checking_ops.h) on the CPU: wrapped around CpuOps it must find nothing in the
// ViT, DiT and VAE forwards (all their views, broadcasts and in-place ops go through its snapshots), and
// wrapped around a deliberately broken backend it must name the broken op and what is wrong with it: a
// wrong value, a write outside the output view, and a write outside every argument (found at the next
// op that touches the memory, or at the culprit itself with the sweep).
#include <gtest/gtest.h>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/forwarding_ops.h"
#include "engine/io/checkpoint.h"
#include "engine/models/vit/vit_random.h"
#include "tests/common/checking_ops.h"
#include "tests/common/test_util.h"
#include "tests/common/tiny_vit.h"
#include "tests/models/checked_forward_util.h"
#include "tests/models/vae_test_util.h"

namespace blr::test {
namespace {

// A CPU backend with one fault, switched on by the test.
class FaultyOps final : public ForwardingOps {
 public:
  enum class Fault { None, WrongNormValue, CopyWritesOutsideView, AttentionWritesElsewhere };
  explicit FaultyOps(Ops& inner) : ForwardingOps(inner) {}
  Fault fault = Fault::None;
  const VitBuffers* victim = nullptr;  // AttentionWritesElsewhere scribbles on its patch tokens, once
  int norm_calls = 0;

  void add_layer_norm(Tensor& x, const Tensor* delta, const Tensor* gate, const NormParams& p, Tensor& y) override {
    ForwardingOps::add_layer_norm(x, delta, gate, p, y);
    if (fault == Fault::WrongNormValue && ++norm_calls == 3) y.data_as<float>()[5] += 1.0f;
  }
  void copy(const Tensor& src, Tensor& dst) override {
    ForwardingOps::copy(src, dst);
    // The token rows of x for several images skip each image's class-token row: write into that gap.
    if (fault == Fault::CopyWritesOutsideView && !dst.is_contiguous() && dst.ndim() == 3 && dst.dim(0) > 1)
      dst.data_as<float>()[dst.stride(0) - dst.stride(1)] = 123.0f;
  }
  void attention(const Tensor& qkv, int heads, float scale, Tensor& out) override {
    ForwardingOps::attention(qkv, heads, scale, out);
    if (fault == Fault::AttentionWritesElsewhere && victim) {
      victim->patches.data_as<float>()[0] += 1.0f;
      victim = nullptr;
    }
  }
};

struct TinyVit {
  Arena arena{Device::CPU, "checked vit"};
  VitModel model;
  Tensor images;
  explicit TinyVit(int64_t batch, LinearSpec spec = {}) {
    model = load_vit_on(random_vit_checkpoint(test::tiny_vit_config(), spec, 7), DType::F32, arena);
    images = uniform_tensor({batch, 32, 32, 3}, 3, -1.0f, 1.0f);
  }
};

TEST(CheckingOps, FindsNothingInCorrectVitForwards) {
  for (int64_t batch : {1, 3}) {
    for (const LinearSpec& spec : {LinearSpec{}, LinearSpec{LinearKind::Blast, 2, 8}}) {
      SCOPED_TRACE(cat("batch ", batch, " ", spec.describe()));
      TinyVit v(batch, spec);
      CpuOps cpu;
      const Tensor plain = vit_logits(cpu, v.arena, v.model, v.images);
      CheckingOptions o;
      o.sweep_after_each_op = true;
      CheckingOps checker(cpu, o);
      const Tensor checked = vit_logits(checker, v.arena, v.model, v.images);
      EXPECT_TRUE(checker.ok()) << checker.report();
      EXPECT_GT(checker.calls(), 15u);  // patchify, patch linear, adds/copies, 2 blocks, head, top-k
      EXPECT_EQ(compare(checked, plain).max_abs, 0.0) << "the checker must not change what the backend computes";
    }
  }
}

TEST(CheckingOps, FindsNothingInCorrectDitAndVaeForwards) {
  {
    Arena arena(Device::CPU, "checked dit");
    const DitModel m = load_dit_on(Checkpoint::open(data_path("dit_tiny/dit_tiny.safetensors")), DType::F32, arena);
    const Checkpoint g = Checkpoint::open(data_path("dit_tiny/forward.safetensors"));
    CpuOps cpu;
    CheckingOps checker(cpu);
    const Tensor out = dit_output(checker, arena, m, g.get_as("x", DType::F32), g.get_as("t", DType::F32),
                                  g.get_as("y", DType::I32));
    EXPECT_TRUE(checker.ok()) << checker.report();
    EXPECT_LT(compare(out, g.get_as("out", DType::F32)).rel_fro, 1e-5);
  }
  {
    const VaeGolden g = load_vae_golden();
    Arena arena(Device::CPU, "checked vae");
    auto vae = VaeDecoder::load(g.model, DType::F32, &arena);
    CpuOps cpu;
    CheckingOps checker(cpu);
    const Tensor image = vae_image(checker, arena, *vae, g.latent, DType::F32);
    EXPECT_TRUE(checker.ok()) << checker.report();
    EXPECT_LE(compare(image, g.image).rel_fro, 1e-4);
  }
}

TEST(CheckingOps, NamesTheOpThatComputesAWrongValue) {
  TinyVit v(2);
  CpuOps cpu;
  FaultyOps faulty(cpu);
  faulty.fault = FaultyOps::Fault::WrongNormValue;
  CheckingOps checker(faulty);
  vit_logits(checker, v.arena, v.model, v.images);
  ASSERT_FALSE(checker.ok());
  const OpFinding& f = checker.findings().front();
  EXPECT_EQ(f.op, "add_layer_norm") << checker.report();
  EXPECT_EQ(f.kind, "mismatch");
  EXPECT_EQ(f.arg, "y");
  EXPECT_NE(f.detail.find("worst at [0,0,5]"), std::string::npos) << f.detail;
  // Later ops compute correctly on the (wrong) data they are given: the fault is reported once.
  EXPECT_EQ(checker.findings().size(), 1u) << checker.report();
}

TEST(CheckingOps, NamesAWriteOutsideTheOutputView) {
  TinyVit v(2);
  CpuOps cpu;
  FaultyOps faulty(cpu);
  faulty.fault = FaultyOps::Fault::CopyWritesOutsideView;
  CheckingOps checker(faulty);
  vit_logits(checker, v.arena, v.model, v.images);
  ASSERT_FALSE(checker.ok());
  const OpFinding& f = checker.findings().front();
  EXPECT_EQ(f.op, "copy") << checker.report();
  EXPECT_EQ(f.kind, "write outside the view");
  EXPECT_EQ(f.arg, "dst");
}

TEST(CheckingOps, FindsMemoryChangedOutsideEveryArgument) {
  for (bool sweep : {false, true}) {
    SCOPED_TRACE(sweep ? "sweep" : "no sweep");
    TinyVit v(1);
    CpuOps cpu;
    FaultyOps faulty(cpu);
    CheckingOptions o;
    o.sweep_after_each_op = sweep;
    CheckingOps checker(faulty, o);
    // The patch tokens are written by patchify and read by the patch linear; block 0's attention then
    // scribbles on them (their memory is next used by the projection's output).
    VitBuffers b;  // vit_logits fills it in before the forward runs
    faulty.fault = FaultyOps::Fault::AttentionWritesElsewhere;
    faulty.victim = &b;
    vit_logits(checker, v.arena, v.model, v.images, &b);
    ASSERT_FALSE(checker.ok());
    const OpFinding& f = checker.findings().front();
    if (sweep) {
      EXPECT_EQ(f.op, "attention") << checker.report();
      EXPECT_EQ(f.kind, "memory outside the op's arguments changed");
    } else {
      EXPECT_EQ(f.op, "linear") << checker.report();  // the projection, whose output is that memory
      EXPECT_EQ(f.kind, "memory changed between ops");
      EXPECT_EQ(f.arg, "y");
    }
  }
}

}  // namespace
}  // namespace blr::test
