// The studio's engine side on the CUDA backend (bf16, own stream per worker): generation with and
// without CUDA graphs gives identical images, the device copy the studio hands to OpenGL matches the host
// image, cancel stops within two steps, and classification of a video replays its graph.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "engine/runtime/classify_task.h"
#include "engine/runtime/generation_task.h"
#include "engine/runtime/session.h"
#include "tests/app/studio_models_util.h"
#include "tests/app/studio_runtime_util.h"
#include "tests/common/test_util.h"

namespace blr::test {
namespace {

using namespace std::chrono_literals;

struct GpuModels {
  std::string dir;
  Session session;  // CUDA backend
  int dit = -1, blast = -1, vae = -1, vit = -1;
  GpuModels() {
    dir = temp_dir("studio_gpu");
    write_tiny_dit(dir + "/dit.safetensors", 21);
    write_tiny_vae(dir + "/vae.safetensors", 22);
    write_tiny_vit(dir + "/vit.safetensors", 23);
    dit = session.load(request(ModelKind::Dit, dir + "/dit.safetensors", "dense", ""));
    blast = session.load(request(ModelKind::Dit, dir + "/dit.safetensors", "blast", ""));
    vae = session.load(request(ModelKind::Vae, dir + "/vae.safetensors", "dense", ""));
    vit = session.load(request(ModelKind::Vit, dir + "/vit.safetensors", "dense", ""));
  }
};

GenerationStatus run(GenerationTask& task, const GenerationJob& job) {
  task.start(job);
  EXPECT_TRUE(wait_for([&] { return !task.busy(); }));
  return task.status();
}

TEST(StudioGpu, GraphsAndEagerGiveTheSameImageAndTheDeviceCopyMatches) {
  BLR_REQUIRE_CUDA();
  GpuModels m;
  ASSERT_TRUE(m.session.backend().gpu);
  EXPECT_EQ(m.session.backend().dtype, DType::BF16);
  GenerationTask task(m.session);
  GenerationJob job;
  job.dit_ids = {m.dit};
  job.vae_id = m.vae;
  job.classes = {3};
  job.seed = 77;
  job.steps = 12;
  job.use_graphs = true;
  const GenerationStatus a = run(task, job);
  ASSERT_EQ(a.state, GenerationStatus::State::Finished) << a.message;
  job.use_graphs = false;
  const GenerationStatus b = run(task, job);
  ASSERT_EQ(b.state, GenerationStatus::State::Finished) << b.message;
  const Tensor& ia = a.outputs[0].rgba;
  const Tensor& ib = b.outputs[0].rgba;
  ASSERT_EQ(ia.shape(), ib.shape());
  EXPECT_EQ(std::memcmp(ia.data(), ib.data(), ia.nbytes()), 0) << "graph replay and eager runs differ";
  EXPECT_TRUE(a.outputs[0].graphs);
  EXPECT_FALSE(b.outputs[0].graphs);

  // The device image the studio gives to CUDA-GL interop is the same picture.
  ASSERT_TRUE(a.outputs[0].device_rgba.defined());
  ASSERT_TRUE(a.outputs[0].device_rgba.on_cuda());
  const Tensor back = a.outputs[0].device_rgba.to_host();
  ASSERT_EQ(back.shape(), ia.shape());
  EXPECT_EQ(std::memcmp(back.data(), ia.data(), ia.nbytes()), 0);

  const auto effects = task.graph_effects();
  ASSERT_EQ(effects.count(m.dit), 1u);
  EXPECT_GT(effects.at(m.dit).with_graphs_ms, 0.0);
  EXPECT_GT(effects.at(m.dit).without_graphs_ms, 0.0);
  std::printf("tiny DiT median step: graphs %.3f ms, eager %.3f ms\n", effects.at(m.dit).with_graphs_ms,
              effects.at(m.dit).without_graphs_ms);
}

// The demo DiT samples pixels directly (no VAE): on the GPU its final image must still come back as a
// device RGBA8 buffer (what CUDA-GL interop uploads) equal to the host image, graph and eager alike.
TEST(StudioGpu, PixelSpaceModelGivesADeviceImageForInterop) {
  BLR_REQUIRE_CUDA();
  Session session;
  const std::string path = std::string(BLR_TEST_DATA_DIR) + "/../../assets/models/demo_dit.safetensors";
  const int dit = session.load(request(ModelKind::Dit, path, "dense", ""));
  GenerationTask task(session);
  GenerationJob job;
  job.dit_ids = {dit};
  job.classes = {3};
  job.seed = 5;
  job.steps = 6;
  for (bool graphs : {true, false}) {
    SCOPED_TRACE(graphs ? "graphs" : "eager");
    job.use_graphs = graphs;
    const GenerationStatus st = run(task, job);
    ASSERT_EQ(st.state, GenerationStatus::State::Finished) << st.message;
    const GenerationOutput& o = st.outputs[0];
    ASSERT_TRUE(o.rgba.defined());
    EXPECT_EQ(o.rgba.shape(), (Shape{1, 32, 32, 4}));
    ASSERT_TRUE(o.device_rgba.defined()) << "pixel-space image did not stay on the device";
    ASSERT_TRUE(o.device_rgba.on_cuda());
    const Tensor back = o.device_rgba.to_host();
    ASSERT_EQ(back.shape(), o.rgba.shape());
    EXPECT_EQ(std::memcmp(back.data(), o.rgba.data(), o.rgba.nbytes()), 0);
  }
}

TEST(StudioGpu, CancelStopsWithinTwoStepsAndCompareRuns) {
  BLR_REQUIRE_CUDA();
  GpuModels m;
  GenerationTask task(m.session);
  GenerationJob job;
  job.dit_ids = {m.dit};
  job.vae_id = m.vae;
  job.classes = {1};
  job.steps = 1000;
  task.start(job);
  ASSERT_TRUE(wait_for([&] { return task.status().step >= 3; }));
  task.cancel();
  const int seen = task.status().step;
  ASSERT_TRUE(wait_for([&] { return !task.busy(); }));
  GenerationStatus st = task.status();
  EXPECT_EQ(st.state, GenerationStatus::State::Cancelled);
  // One step in flight plus the one queued ahead of the callback (the generator's lookahead).
  EXPECT_LE(st.outputs[0].steps_done, seen + 2);

  job.dit_ids = {m.dit, m.blast};
  job.steps = 8;
  st = run(task, job);
  ASSERT_EQ(st.state, GenerationStatus::State::Finished) << st.message;
  ASSERT_TRUE(st.psnr.has_value());
  EXPECT_TRUE(std::isfinite(*st.psnr));
  EXPECT_LT(st.outputs[1].weight_bytes, st.outputs[0].weight_bytes);
}

TEST(StudioGpu, ClassifiesAVideoWithGraphReplay) {
  BLR_REQUIRE_CUDA();
  GpuModels m;
  if (!write_test_video(m.dir + "/clip.avi", 10)) GTEST_SKIP() << "skipped: OpenCV cannot write a video here";
  ClassifyTask task(m.session);
  ClassifyJob job;
  job.source.kind = SourceSpec::Kind::Video;
  job.source.text = m.dir + "/clip.avi";
  job.model_ids = {m.vit};
  task.start(job);
  ASSERT_TRUE(wait_for([&] { return !task.active(); }));
  const ClassifyStatus st = task.status(true);
  ASSERT_EQ(st.state, ClassifyStatus::State::Finished) << st.message;
  EXPECT_EQ(st.classified, 10);
  for (const auto& f : st.frames) EXPECT_EQ(f.predictions.at(0).classes.size(), 5u);
  ASSERT_EQ(st.models.size(), 1u);
  EXPECT_TRUE(st.models[0].graph) << "frames after the first replay the captured graph";
  EXPECT_GT(st.fps, 0.0);
}

}  // namespace
}  // namespace blr::test
