// ViT on the CUDA backend: timm's golden logits in fp32 and bf16, full-size random ViT-B/16 (dense,
// Monarch, BLAST) against the CPU backend, CUDA graph replay against eager launches, preprocessing of odd
// frame sizes against the CPU reference inside the runner, and the memory targets at batch 1.
#include <algorithm>
#include <cmath>
#include <memory>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/io/checkpoint.h"
#include "engine/models/vit/vit_model.h"
#include "engine/models/vit/vit_random.h"
#include "engine/runtime/vit_classifier.h"
#include "tests/common/test_util.h"
#include "tests/common/tiny_vit.h"

namespace blr {
namespace {

LinearSpec spec(LinearKind kind, int64_t b, int64_t r) {
  LinearSpec s;
  s.kind = kind;
  s.blocks = b;
  s.rank = r;
  return s;
}

VitModel load(const Checkpoint& ck, DType dtype, Arena* arena, std::vector<LayerRule> rules = {}) {
  VitLoadOptions o;
  o.dtype = dtype;
  o.arena = arena;
  o.rules = std::move(rules);
  return load_vit(ck, o);
}

// Logits (host f32 [B, classes]) of `m` on `ops` for NHWC f32 images.
Tensor logits_of(const VitModel& m, Ops& ops, Arena& arena, const Tensor& nhwc, bool graphs = false) {
  ClassifierOptions o;
  o.batch = nhwc.dim(0);
  o.topk = 1;
  o.use_graphs = graphs;
  VitClassifier clf(m, ops, arena, o);
  clf.input().copy_from(nhwc.to_dtype(m.dtype));
  clf.classify_input();
  return clf.buffers().logits.to_host().to_dtype(DType::F32);
}

double rel_err(const Tensor& got, const Tensor& want) {
  const auto c = test::compare(got, want);
  return c.max_abs / std::max(c.max_ref, 1e-30);
}

int argmax_row(const Tensor& t, int64_t row) {
  int best = 0;
  for (int64_t k = 1; k < t.dim(1); ++k)
    if (t.at({row, k}) > t.at({row, best})) best = static_cast<int>(k);
  return best;
}

Tensor golden_input_nhwc(const Checkpoint& data) {
  return data.get_as("input", DType::F32).transpose(1, 2).transpose(2, 3).to_host();
}

bool have_golden() {
  const std::string d = test::data_path("vit_tiny");
  return test::file_exists(d + "/vit_tiny.safetensors") && test::file_exists(d + "/vit_tiny_blr.safetensors") &&
         test::file_exists(d + "/golden.safetensors");
}
#define REQUIRE_GOLDEN()                                                                                       \
  do {                                                                                                         \
    if (!have_golden())                                                                                        \
      GTEST_SKIP() << "golden data missing: run tools/make_vit_golden.py on the GPU machine (writes tests/data/vit_tiny/)"; \
  } while (0)

// A BGR frame with gradients, a bright square and per-pixel noise: resizing has edges and texture to get
// right, and the noise keeps neighbouring pixels from being equal by accident.
Tensor synthetic_frame(int64_t h, int64_t w, int seed) {
  Tensor f = Tensor::zeros({h, w, 3}, DType::U8);
  auto* p = f.data_as<uint8_t>();
  uint32_t s = 2463534242u + static_cast<uint32_t>(seed);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      s ^= s << 13;
      s ^= s >> 17;
      s ^= s << 5;
      const bool square = y > h / 3 && y < 2 * h / 3 && x > w / 4 && x < w / 2;
      const int noise = static_cast<int>(s % 21) - 10;
      p[(y * w + x) * 3 + 0] = static_cast<uint8_t>(std::clamp<int64_t>(x * 255 / std::max<int64_t>(w - 1, 1) + noise, 0, 255));
      p[(y * w + x) * 3 + 1] = static_cast<uint8_t>(std::clamp<int64_t>(y * 255 / std::max<int64_t>(h - 1, 1) - noise, 0, 255));
      p[(y * w + x) * 3 + 2] = square ? 250 : static_cast<uint8_t>((x + 2 * y + seed * 13) % 256);
    }
  return f;
}

// fp32 on the GPU vs a double/fp32 reference for the tiny model: the same budget as the CPU golden test
// (different summation order only; any indexing error is of order 1).
constexpr double kFp32Tol = 1e-4;

// ---------------------------------------------------------------------------------------------------

TEST(VitGpu, GoldenFp32MatchesTimm) {
  BLR_REQUIRE_CUDA();
  REQUIRE_GOLDEN();
  const std::string d = test::data_path("vit_tiny");
  const Checkpoint data = Checkpoint::open(d + "/golden.safetensors");
  const Tensor x = golden_input_nhwc(data);
  Arena arena(Device::CUDA, "vit golden fp32");
  CudaOps ops(arena);
  for (const char* which : {"vit_tiny", "vit_tiny_blr"}) {
    SCOPED_TRACE(which);
    const VitModel m = load(Checkpoint::open(d + "/" + which + ".safetensors"), DType::F32, &arena);
    const Tensor want = data.get_as(std::string(which) == "vit_tiny" ? "logits" : "logits_blr", DType::F32);
    const Tensor got = logits_of(m, ops, arena, x);
    EXPECT_LE(rel_err(got, want), kFp32Tol) << test::compare(got, want).str();
  }
}

TEST(VitGpu, GoldenBf16CosineAndTop1) {
  BLR_REQUIRE_CUDA();
  REQUIRE_GOLDEN();
  const std::string d = test::data_path("vit_tiny");
  const Checkpoint data = Checkpoint::open(d + "/golden.safetensors");
  const Tensor x = golden_input_nhwc(data);
  Arena arena(Device::CUDA, "vit golden bf16");
  CudaOps ops(arena);
  for (const char* which : {"vit_tiny", "vit_tiny_blr"}) {
    SCOPED_TRACE(which);
    const VitModel m = load(Checkpoint::open(d + "/" + which + ".safetensors"), DType::BF16, &arena);
    const Tensor want = data.get_as(std::string(which) == "vit_tiny" ? "logits" : "logits_blr", DType::F32);
    const Tensor got = logits_of(m, ops, arena, x);
    for (int64_t b = 0; b < want.dim(0); ++b) {
      // bf16 keeps 8 significant bits in weights and activations; through two blocks the logits keep
      // a cosine of ~0.9999 with fp32. 0.999 is the bar, and a wrong layout gives ~0.
      const auto c = test::compare(got.slice(0, b, b + 1), want.slice(0, b, b + 1));
      EXPECT_GE(c.cosine, 0.999) << "image " << b << ": " << c.str();
      EXPECT_EQ(argmax_row(got, b), argmax_row(want, b)) << "image " << b << ": " << c.str();
    }
  }
}

// Full-size ViT-B/16 with random weights, one image, GPU against the CPU reference.
class VitB16GpuVsCpu : public ::testing::TestWithParam<LinearSpec> {};

TEST_P(VitB16GpuVsCpu, OneImage) {
  BLR_REQUIRE_CUDA();
  const LinearSpec s = GetParam();
  const Checkpoint ck = random_vit_checkpoint(VitConfig::vit_b16(), s, 17);
  const Tensor img = test::uniform_tensor({1, 224, 224, 3}, 5, -1.0f, 1.0f);
  Arena host(Device::CPU, "cpu");
  CpuOps cpu;
  const Tensor want = logits_of(load(ck, DType::F32, &host), cpu, host, img);
  Arena arena(Device::CUDA, "vit-b16 gpu");
  CudaOps ops(arena);
  {
    const Tensor got = logits_of(load(ck, DType::F32, &arena), ops, arena, img);
    // 12 blocks, sums of up to 3072 terms and softmax over 197 tokens, all in fp32 with a different
    // summation order: errors ~1e-5 relative. 1e-3 keeps margin; any wrong index gives O(1).
    EXPECT_LE(rel_err(got, want), 1e-3) << "fp32 " << s.describe() << ": " << test::compare(got, want).str();
  }
  {
    const Tensor got = logits_of(load(ck, DType::BF16, &arena), ops, arena, img);
    // bf16 storage (8-bit mantissa) of every weight and activation through 12 blocks: cosine ~0.999+.
    const auto c = test::compare(got, want);
    EXPECT_GE(c.cosine, 0.995) << "bf16 " << s.describe() << ": " << c.str();
    EXPECT_EQ(c.nonfinite, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, VitB16GpuVsCpu,
                         ::testing::Values(LinearSpec{}, spec(LinearKind::Monarch, 4, 128), spec(LinearKind::Blast, 3, 128)),
                         [](const auto& info) { return std::string(linear_kind_name(info.param.kind)); });

TEST(VitGpu, GraphReplayIsIdenticalToEager) {
  BLR_REQUIRE_CUDA();
  const Checkpoint ck = random_vit_checkpoint(VitConfig::vit_b16(), spec(LinearKind::Blast, 3, 128), 23);
  Arena arena(Device::CUDA, "graphs");
  CudaOps ops(arena);
  const VitModel m = load(ck, DType::BF16, &arena);
  const Tensor img = test::uniform_tensor({2, 224, 224, 3}, 9, -1.0f, 1.0f).to_dtype(DType::BF16);
  ClassifierOptions o;
  o.batch = 2;
  o.topk = 5;
  VitClassifier graph(m, ops, arena, o);
  o.use_graphs = false;
  VitClassifier eager(m, ops, arena, o);
  eager.input().copy_from(img);
  const ClassifyResult re = eager.classify_input();
  EXPECT_FALSE(re.graph);
  const Tensor le = eager.buffers().logits.to_host();
  for (int run = 0; run < 3; ++run) {
    graph.input().copy_from(img);  // the network reuses the input's memory: refill it every run
    const ClassifyResult rg = graph.classify_input();
    EXPECT_TRUE(rg.graph) << "run " << run;
    const auto c = test::compare(graph.buffers().logits.to_host(), le);
    EXPECT_EQ(c.max_abs, 0.0) << "run " << run << ": graph and eager launch the same kernels on the same data; " << c.str();
    for (size_t i = 0; i < 2; ++i) EXPECT_EQ(rg.predictions[i].classes, re.predictions[i].classes);
  }
  EXPECT_EQ(graph.graph_captures(), 1u);  // captured once, then replayed

  // Frames: preprocessing is inside the graph; a larger frame grows the upload buffer and re-captures.
  for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{{480, 640}, {720, 1280}, {480, 640}}) {
    const std::vector<Tensor> frames = {synthetic_frame(h, w, 1), synthetic_frame(h, w, 2)};
    const ClassifyResult rg = graph.classify(frames);
    const ClassifyResult rf = eager.classify(frames);
    EXPECT_TRUE(rg.graph);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(rg.predictions[i].classes, rf.predictions[i].classes) << h << "x" << w << " frame " << i;
      EXPECT_EQ(rg.predictions[i].probs, rf.predictions[i].probs) << h << "x" << w << " frame " << i;
    }
    EXPECT_GE(rg.times.network_ms, 0.0) << "network time from the event inside the graph";
    EXPECT_GE(rg.times.preprocess_ms, 0.0);
  }
}

// classify_input() on a new shape warms up first (eager: one extra run; graphs: the planning run and the
// capture), and the network overwrites input() as it runs. Every call must still classify the input as
// the caller gave it: the same logits, bit for bit, as one run with nothing before it. (The warm-up used
// to consume the input, so the timed run classified leftover activations: the golden and GPU-vs-CPU tests
// failed with cosines of 0.46-0.98 while every op matched the CPU.)
TEST(VitGpu, ClassifyInputSeesTheInputAsGivenThroughItsWarmUp) {
  BLR_REQUIRE_CUDA();
  const Checkpoint ck = random_vit_checkpoint(test::tiny_vit_config(), LinearSpec{}, 11);
  Arena arena(Device::CUDA, "warm-up");
  CudaOps ops(arena);
  const VitModel m = load(ck, DType::F32, &arena);
  const Tensor img = test::uniform_tensor({2, 32, 32, 3}, 4, -1.0f, 1.0f);
  ClassifierOptions o;
  o.batch = 2;
  o.topk = 3;
  o.use_graphs = false;
  o.warm_up = false;
  VitClassifier once(m, ops, arena, o);
  once.input().copy_from(img);
  once.classify_input();
  const Tensor want = once.buffers().logits.to_host();
  for (bool graphs : {false, true}) {
    o.use_graphs = graphs;
    o.warm_up = true;
    VitClassifier clf(m, ops, arena, o);
    for (int call = 0; call < 2; ++call) {  // the first call warms up, the second does not
      clf.input().copy_from(img);
      const ClassifyResult r = clf.classify_input();
      const auto c = test::compare(clf.buffers().logits.to_host(), want);
      EXPECT_EQ(c.max_abs, 0.0) << (graphs ? "graphs" : "eager") << ", call " << call << ": " << c.str();
      EXPECT_EQ(r.graph, graphs);
    }
  }
}

TEST(VitGpu, PreprocessingMatchesTheCpuReferenceInsideTheRunner) {
  BLR_REQUIRE_CUDA();
  VitConfig c = test::tiny_vit_config();
  c.image_size = 224;  // the real crop (248 -> 224) on a small network
  c.patch = 16;
  c.mean = {0.485f, 0.456f, 0.406f};
  c.std = {0.229f, 0.224f, 0.225f};
  const Checkpoint ck = random_vit_checkpoint(c, LinearSpec{}, 3);
  const std::vector<Tensor> frames = {synthetic_frame(37, 53, 1), synthetic_frame(480, 640, 2), synthetic_frame(300, 200, 3),
                                      synthetic_frame(17, 1000, 4), synthetic_frame(248, 248, 5), synthetic_frame(1080, 1920, 6)};
  ClassifierOptions o;
  o.batch = static_cast<int64_t>(frames.size());
  Arena host(Device::CPU, "cpu");
  CpuOps cpu;
  const VitModel mc = load(ck, DType::F32, &host);
  VitClassifier rc(mc, cpu, host, o);
  rc.prepare_input(frames);
  Arena arena(Device::CUDA, "gpu");
  CudaOps ops(arena);
  const VitModel mg = load(ck, DType::F32, &arena);
  VitClassifier rg(mg, ops, arena, o);
  rg.prepare_input(frames);
  const Tensor a = rg.input().to_host(), b = rc.input().to_host();
  for (int64_t i = 0; i < a.dim(0); ++i)
    for (int ch = 0; ch < 3; ++ch) {
      double worst = 0;
      for (int64_t y = 0; y < 224; ++y)
        for (int64_t x = 0; x < 224; ++x)
          worst = std::max(worst, std::fabs(a.at({i, y, x, ch}) - b.at({i, y, x, ch})) * c.std[ch] * 255.0);
      // The bar: at most one level of 255 per pixel after de-normalising (both compute the same
      // bicubic weights in fp32; they may differ in the last bits of the sums).
      EXPECT_LE(worst, 1.0) << "frame " << frames[i].describe() << " channel " << ch;
    }
  // End to end with the network: GPU and CPU classify the same frames to the same logits.
  rc.classify(frames);
  rg.classify(frames);
  const Tensor lg = rg.buffers().logits.to_host(), lc = rc.buffers().logits.to_host();
  // ≤1 level of input difference moves logits of a 2-block random model by ~1e-3 relative at most.
  EXPECT_LE(rel_err(lg, lc), 1e-2) << test::compare(lg, lc).str();
}

TEST(VitGpu, MemoryTargetsAtBatch1) {
  BLR_REQUIRE_CUDA();
  const struct {
    LinearSpec spec;
    size_t limit;
  } cases[] = {{LinearSpec{}, size_t{200} << 20}, {spec(LinearKind::Blast, 3, 128), size_t{90} << 20}};
  for (const auto& cs : cases) {
    SCOPED_TRACE(cs.spec.describe());
    const Checkpoint ck = random_vit_checkpoint(VitConfig::vit_b16(), cs.spec, 29);
    Arena arena(Device::CUDA, "memory");
    {
      CudaOps ops(arena);
      const VitModel m = load(ck, DType::BF16, &arena);
      ClassifierOptions o;
      VitClassifier clf(m, ops, arena, o);
      clf.classify({synthetic_frame(480, 640, 1)});  // preprocessing, planning run, capture, replay
      const MemoryReport r = arena.report();
      // The targets for ViT-B/16 at batch 1 (weights are most of it).
      EXPECT_LE(r.high_water, cs.limit) << r.summary();
      EXPECT_LE(r.peak_of(MemCategory::Activations), size_t{4} << 20) << r.summary();
    }
  }
}

}  // namespace
}  // namespace blr
