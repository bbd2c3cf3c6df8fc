// The shipped demo models on the CUDA backend (bf16, CUDA graphs) against the CPU reference: what
// `blr generate`, `blr classify` and the studio run on a GPU machine out of the box.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/demo/demo_models.h"
#include "engine/demo/demo_shapes.h"
#include "engine/diffusion/schedule.h"
#include "engine/io/checkpoint.h"
#include "engine/models/dit/dit_model.h"
#include "engine/models/vit/vit_model.h"
#include "engine/runtime/generator.h"
#include "engine/runtime/pixel_decoder.h"
#include "engine/runtime/vit_classifier.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

std::vector<int> top1(Ops& ops, Arena& arena, const VitModel& model, const std::vector<demo::LabelledPicture>& pics,
                      bool graphs) {
  ClassifierOptions o;
  o.batch = 20;
  o.topk = 1;
  o.use_graphs = graphs;
  VitClassifier c(model, ops, arena, o);
  std::vector<int> out;
  for (size_t i = 0; i < pics.size(); i += 20) {
    std::vector<Tensor> frames;
    for (size_t j = i; j < i + 20 && j < pics.size(); ++j) frames.push_back(pics[j].image);
    for (const auto& p : c.classify(frames).predictions) out.push_back(p.classes[0]);
  }
  return out;
}

TEST(DemoModelsGpu, VitBf16AgreesWithTheCpuOnRenderedPictures) {
  BLR_REQUIRE_CUDA();
  const auto pics = demo::balanced_set(100, 7, 32, /*bgr=*/true);
  for (const std::string& mode : demo::vit_modes()) {
    const Checkpoint ck = Checkpoint::open(demo::vit_path(mode));
    CpuOps cpu;
    Arena host(Device::CPU, "cpu");
    const std::vector<int> ref = top1(cpu, host, load_vit(ck, VitLoadOptions{}), pics, false);
    Arena dev(Device::CUDA, "cuda");
    CudaOps cuda(dev);
    VitLoadOptions o;
    o.dtype = DType::BF16;
    o.arena = &dev;
    const VitModel gpu_model = load_vit(ck, o);
    const std::vector<int> got = top1(cuda, dev, gpu_model, pics, true);
    int agree = 0, correct_cpu = 0, correct_gpu = 0;
    for (size_t i = 0; i < pics.size(); ++i) {
      agree += got[i] == ref[i];
      correct_cpu += ref[i] == pics[i].params.cls;
      correct_gpu += got[i] == pics[i].params.cls;
    }
    // bf16 weights and activations move logits by ~1e-2: only near-ties may flip.
    EXPECT_GE(agree, 95) << mode << ": GPU bf16 and CPU f32 top-1 agree on " << agree << " of 100";
    EXPECT_NEAR(correct_gpu, correct_cpu, 3) << mode << ": accuracy GPU " << correct_gpu << "% vs CPU " << correct_cpu << "%";
  }
}

Tensor generate(Ops& ops, Arena& arena, const Checkpoint& ck, DType dtype, bool graphs) {
  DitLoadOptions o;
  o.dtype = dtype;
  o.arena = &arena;
  const DitModel dit = DitModel::load(ck, o);
  PixelDecoder decoder(dtype);
  GeneratorOptions go;
  go.use_graphs = graphs;
  Generator gen(ops, dit, &decoder, arena, go);
  const demo::SamplerDefaults d = demo::sampler_defaults(ck);
  GenerateRequest req;
  req.classes = {6, 0};
  req.seed = 0;
  req.steps = d.steps.value_or(25);
  req.sampler = parse_sampler(d.sampler.value_or("ddim"));
  req.guidance = static_cast<float>(d.cfg.value_or(3.0));
  return gen.generate(req).rgba;
}

double psnr(const Tensor& a, const Tensor& b) {
  double se = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (i % 4 == 3) continue;  // alpha
    const double d = double(a.data_as<uint8_t>()[i]) - double(b.data_as<uint8_t>()[i]);
    se += d * d;
    ++n;
  }
  return se == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / (se / static_cast<double>(n)));
}

TEST(DemoModelsGpu, DitBf16GraphsDrawTheCpuPicture) {
  BLR_REQUIRE_CUDA();
  for (const std::string& mode : demo::dit_modes()) {
    const Checkpoint ck = Checkpoint::open(demo::dit_path(mode));
    CpuOps cpu;
    Arena host(Device::CPU, "cpu");
    const Tensor ref = generate(cpu, host, ck, DType::F32, false);
    Arena dev(Device::CUDA, "cuda");
    CudaOps cuda(dev);
    const Tensor eager = generate(cuda, dev, ck, DType::BF16, false);
    const Tensor graph = generate(cuda, dev, ck, DType::BF16, true);
    ASSERT_EQ(ref.shape(), (Shape{2, 32, 32, 4}));
    EXPECT_EQ(psnr(eager, graph), 99.0) << mode << ": graph replay must give the eager picture exactly";
    // bf16 vs f32 over 25 deterministic DDIM steps: differences grow along the trajectory but stay far below
    // the picture's contrast; 25 dB is an RMS error of 14 levels of 255.
    const double p = psnr(graph, ref);
    std::printf("%s: PSNR GPU bf16 vs CPU f32 = %.1f dB\n", mode.c_str(), p);
    EXPECT_GE(p, 25.0) << mode;
  }
}

}  // namespace
}  // namespace blr
