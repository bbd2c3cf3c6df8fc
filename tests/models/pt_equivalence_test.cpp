// Issue 6: the same tiny ViT, DiT and VAE weights as a PyTorch file (tools/make_pt_copies.py: torch.save of
// the safetensors tensors, config as top-level strings) and as safetensors give identical outputs, bit for
// bit, through the same model loaders (Checkpoint::open picks the reader by the file's first bytes).
#include "engine/backend/cpu/cpu_ops.h"
#include "engine/io/checkpoint.h"
#include "engine/io/torch_checkpoint.h"
#include "tests/common/test_util.h"
#include "tests/models/checked_forward_util.h"
#include "tests/models/vae_test_util.h"

namespace blr {
namespace {

#define REQUIRE_TORCH_READER()                                                                        \
  do {                                                                                                \
    if (!torch_checkpoints_supported()) GTEST_SKIP() << "built without libzip: no PyTorch checkpoints"; \
  } while (0)

void expect_identical(const Tensor& a, const Tensor& b, const std::string& what) {
  const auto c = test::compare(a, b);
  EXPECT_EQ(c.max_abs, 0.0) << what << ": .pt and .safetensors outputs differ: " << c.str();
  EXPECT_GT(c.max_ref, 0.0) << what << ": output is all zeros, the comparison proves nothing";
}

TEST(PtEquivalence, VitLogitsAreIdentical) {
  REQUIRE_TORCH_READER();
  Arena arena(Device::CPU, "pt vit");
  CpuOps ops;
  const Checkpoint st = Checkpoint::open(test::data_path("vit_tiny/vit_tiny.safetensors"));
  const Checkpoint pt = Checkpoint::open(test::data_path("vit_tiny/vit_tiny.pt"));
  ASSERT_EQ(pt.format(), "pytorch-zip");
  EXPECT_EQ(pt.metadata_or("vit.heads", ""), "2") << "config must come through the .pt file's top-level strings";
  const Tensor x = test::vit_golden_input_nhwc();
  const Tensor a = test::vit_logits(ops, arena, test::load_vit_on(st, DType::F32, arena), x);
  const Tensor b = test::vit_logits(ops, arena, test::load_vit_on(pt, DType::F32, arena), x);
  expect_identical(b, a, "ViT logits");
}

TEST(PtEquivalence, DitOutputIsIdentical) {
  REQUIRE_TORCH_READER();
  Arena arena(Device::CPU, "pt dit");
  CpuOps ops;
  const Checkpoint st = Checkpoint::open(test::data_path("dit_tiny/dit_tiny.safetensors"));
  const Checkpoint pt = Checkpoint::open(test::data_path("dit_tiny/dit_tiny.pt"));
  const Checkpoint io = Checkpoint::open(test::data_path("dit_tiny/forward.safetensors"));
  const Tensor x = io.get_as("x", DType::F32), t = io.get_as("t", DType::F32), y = io.get("y");
  const Tensor a = test::dit_output(ops, arena, test::load_dit_on(st, DType::F32, arena), x, t, y);
  const Tensor b = test::dit_output(ops, arena, test::load_dit_on(pt, DType::F32, arena), x, t, y);
  expect_identical(b, a, "DiT output");
}

TEST(PtEquivalence, VaeImageIsIdentical) {
  REQUIRE_TORCH_READER();
  Arena arena(Device::CPU, "pt vae");
  CpuOps ops;
  const test::VaeGolden g = test::load_vae_golden();
  auto st = VaeDecoder::load(g.model, DType::F32, &arena);
  auto pt = VaeDecoder::load(Checkpoint::open(test::data_path("vae_tiny/model.pt")), DType::F32, &arena);
  const Tensor a = test::vae_image(ops, arena, *st, g.latent, DType::F32);
  const Tensor b = test::vae_image(ops, arena, *pt, g.latent, DType::F32);
  expect_identical(b, a, "VAE image");
}

}  // namespace
}  // namespace blr
