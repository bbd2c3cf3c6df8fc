// The same tiny DiT saved with original (facebookresearch) names and with diffusers names must load to
// identical weights and give identical outputs; the diffusers file has no pos_embed (recomputed) and
// per-block embedder copies, which must be identical.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/error.h"

#include <cstring>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/io/checkpoint.h"
#include "engine/models/dit/dit_config.h"
#include "engine/models/dit/dit_keymap.h"
#include "engine/models/dit/dit_model.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

std::string tiny(const std::string& file) { return test::data_path("dit_tiny/" + file); }

TEST(DitKeymap, DetectsBothLayouts) {
  EXPECT_EQ(detect_dit_layout(Checkpoint::open(tiny("dit_tiny.safetensors"))), DitLayout::Original);
  EXPECT_EQ(detect_dit_layout(Checkpoint::open(tiny("dit_tiny_diffusers.safetensors"))), DitLayout::Diffusers);
}

TEST(DitKeymap, DiffusersViewPresentsOriginalNames) {
  const Checkpoint orig = Checkpoint::open(tiny("dit_tiny.safetensors"));
  const Checkpoint view = dit_original_view(Checkpoint::open(tiny("dit_tiny_diffusers.safetensors")));
  EXPECT_FALSE(view.has("pos_embed"));  // diffusers keeps none
  for (const std::string& n : orig.names()) {
    if (n == "pos_embed") continue;
    ASSERT_TRUE(view.has(n)) << n;
    const Tensor a = orig.get_as(n, DType::F32), b = view.get_as(n, DType::F32);
    ASSERT_EQ(a.shape(), b.shape()) << n;
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.nbytes()), 0) << n << " differs after renaming";
  }
  const DitConfig a = infer_dit_config(orig), b = infer_dit_config(view);
  EXPECT_EQ(a.describe(), b.describe());
}

TEST(DitKeymap, OriginalAndDiffusersGiveIdenticalOutputs) {
  Arena arena(Device::CPU, "cpu");
  CpuOps ops;
  DitLoadOptions o;
  o.dtype = DType::F32;
  o.arena = &arena;
  const DitModel a = DitModel::load(Checkpoint::open(tiny("dit_tiny.safetensors")), o);
  const DitModel b = DitModel::load(Checkpoint::open(tiny("dit_tiny_diffusers.safetensors")), o);
  const Checkpoint g = Checkpoint::open(tiny("forward.safetensors"));
  const Tensor x = g.get_as("x", DType::F32), t = g.get_as("t", DType::F32), y = g.get_as("y", DType::I32);
  Tensor oa = Tensor::zeros({3, 8, 8, 8}), ob = Tensor::zeros({3, 8, 8, 8});
  DitWorkspace wa = a.plan(3, arena), wb = b.plan(3, arena);
  a.forward(ops, x, t, y, wa, oa);
  b.forward(ops, x, t, y, wb, ob);
  // Identical weights and the pos_embed recomputed exactly as stored: bit-identical outputs.
  EXPECT_EQ(std::memcmp(oa.data(), ob.data(), oa.nbytes()), 0) << test::compare(oa, ob).str();
}

TEST(DitKeymap, DifferingEmbedderCopiesAreRejected) {
  const Checkpoint d = Checkpoint::open(tiny("dit_tiny_diffusers.safetensors"));
  std::map<std::string, Tensor> t;
  for (const auto& n : d.names()) t[n] = d.get(n).clone();
  const std::string copy = "transformer_blocks.1.norm1.emb.timestep_embedder.linear_1.weight";
  ASSERT_TRUE(t.count(copy));
  t[copy].data_as<float>()[0] += 1.0f;
  const Checkpoint bad(std::make_shared<TensorMapReader>("tampered", t, d.metadata()));
  try {
    dit_original_view(bad);
    FAIL() << "differing per-block embedders must be rejected";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(copy), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace blr
