// Whole forward passes on the CUDA backend with every op checked against the CPU reference as it runs
// (CheckingOps, tests/common/checking_ops.h): a model that is wrong on the GPU fails here naming the
// first op that computes something else than the CPU would on the same data, with its arguments' shapes,
// strides and dtypes — or, if every op agrees and the output is still wrong, the fault is in how the ops
// are sequenced (buffers, inputs), not in any op.
//   - the tiny timm ViT (golden logits) in fp32 and bf16, dense and BLR, batch 2 and 1;
//   - ViT-B/16 with random weights in fp32 at batch 1 and 2 (dense) and batch 1 (BLAST), against a full
//     CPU forward as well;
//   - the tiny DiT and tiny VAE goldens in fp32.
#include <gtest/gtest.h>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/io/checkpoint.h"
#include "engine/models/vit/vit_random.h"
#include "tests/common/checking_ops.h"
#include "tests/common/test_util.h"
#include "tests/models/checked_forward_util.h"
#include "tests/models/vae_test_util.h"

namespace blr::test {
namespace {

double rel_err(const Tensor& got, const Tensor& want) {
  const Closeness c = compare(got, want);
  return c.max_abs / std::max(c.max_ref, 1e-30);
}

bool have_vit_golden() {
  const std::string d = data_path("vit_tiny");
  return file_exists(d + "/vit_tiny.safetensors") && file_exists(d + "/vit_tiny_blr.safetensors") &&
         file_exists(d + "/golden.safetensors");
}

TEST(CheckedForwardGpu, VitTinyGoldenOpByOp) {
  BLR_REQUIRE_CUDA();
  if (!have_vit_golden()) GTEST_SKIP() << "tests/data/vit_tiny missing";
  const std::string d = data_path("vit_tiny");
  const Checkpoint golden = Checkpoint::open(d + "/golden.safetensors");
  const Tensor x = vit_golden_input_nhwc();
  for (const char* which : {"vit_tiny", "vit_tiny_blr"})
    for (DType dt : {DType::F32, DType::BF16})
      for (int64_t batch : {x.dim(0), int64_t{1}}) {
        const std::string what = cat(which, " ", dtype_name(dt), " batch ", batch);
        SCOPED_TRACE(what);
        Arena arena(Device::CUDA, "checked vit tiny");
        CudaOps cuda(arena);
        const VitModel m = load_vit_on(Checkpoint::open(d + "/" + which + ".safetensors"), dt, arena);
        CheckingOptions o;
        o.sweep_after_each_op = true;  // tiny: also watch every byte seen so far after every op
        CheckingOps checker(cuda, o);
        const Tensor got = vit_logits(checker, arena, m, x.slice(0, 0, batch).to_host());
        EXPECT_TRUE(checker.ok()) << what << "\n" << checker.report();
        const Tensor want = golden.get_as(std::string(which) == "vit_tiny" ? "logits" : "logits_blr", DType::F32)
                                .slice(0, 0, batch)
                                .to_host();
        // fp32: the same budget as the golden tests (summation order only). bf16: the golden tests' cosine.
        if (dt == DType::F32) EXPECT_LE(rel_err(got, want), 1e-4) << what << ": " << compare(got, want).str();
        else EXPECT_GE(compare(got, want).cosine, 0.999) << what << ": " << compare(got, want).str();
      }
}

TEST(CheckedForwardGpu, VitB16RandomOpByOp) {
  BLR_REQUIRE_CUDA();
  struct Case {
    LinearSpec spec;
    int64_t batch;
  };
  LinearSpec blast;
  blast.kind = LinearKind::Blast;
  blast.blocks = 3;
  blast.rank = 128;
  for (const Case& cs : {Case{LinearSpec{}, 1}, Case{LinearSpec{}, 2}, Case{blast, 1}}) {
    const std::string what = cat(cs.spec.describe(), " batch ", cs.batch);
    SCOPED_TRACE(what);
    const Checkpoint ck = random_vit_checkpoint(VitConfig::vit_b16(), cs.spec, 17);
    const Tensor img = uniform_tensor({cs.batch, 224, 224, 3}, 5, -1.0f, 1.0f);
    Arena host(Device::CPU, "cpu");
    CpuOps cpu;
    const Tensor want = vit_logits(cpu, host, load_vit_on(ck, DType::F32, host), img);
    Arena arena(Device::CUDA, "checked vit-b16");
    CudaOps cuda(arena);
    const VitModel m = load_vit_on(ck, DType::F32, arena);
    CheckingOps checker(cuda);  // no sweep: the mirror holds all 86M weights
    const Tensor got = vit_logits(checker, arena, m, img);
    EXPECT_TRUE(checker.ok()) << what << "\n" << checker.report();
    // As VitB16GpuVsCpu: 12 blocks in fp32 with another summation order, ~1e-5 relative.
    EXPECT_LE(rel_err(got, want), 1e-3) << what << ": " << compare(got, want).str();
  }
}

TEST(CheckedForwardGpu, DitTinyOpByOp) {
  BLR_REQUIRE_CUDA();
  const Checkpoint ck = Checkpoint::open(data_path("dit_tiny/dit_tiny.safetensors"));
  const Checkpoint g = Checkpoint::open(data_path("dit_tiny/forward.safetensors"));
  Arena arena(Device::CUDA, "checked dit");
  CudaOps cuda(arena);
  const DitModel m = load_dit_on(ck, DType::F32, arena);
  CheckingOptions o;
  o.sweep_after_each_op = true;
  CheckingOps checker(cuda, o);
  const Tensor out = dit_output(checker, arena, m, g.get_as("x", DType::F32), g.get_as("t", DType::F32),
                                g.get_as("y", DType::I32));
  EXPECT_TRUE(checker.ok()) << checker.report();
  // As DitGpu.TinyForwardMatchesCpuInFp32AndBf16: fp32, summation order only.
  EXPECT_LT(compare(out, g.get_as("out", DType::F32)).rel_fro, 1e-4);
}

TEST(CheckedForwardGpu, VaeTinyOpByOp) {
  BLR_REQUIRE_CUDA();
  const VaeGolden g = load_vae_golden();
  Arena arena(Device::CUDA, "checked vae");
  CudaOps cuda(arena);
  auto vae = VaeDecoder::load(g.model, DType::F32, &arena);
  CheckingOptions o;
  o.sweep_after_each_op = true;
  CheckingOps checker(cuda, o);
  const Tensor image = vae_image(checker, arena, *vae, g.latent, DType::F32);
  EXPECT_TRUE(checker.ok()) << checker.report();
  // As VaeDecoderGpu.Fp32MatchesGolden: fp32 against float64, rounding only.
  const Closeness c = compare(image, g.image);
  EXPECT_LE(c.max_abs, 1e-4 * c.max_ref) << c.str();
}

}  // namespace
}  // namespace blr::test
