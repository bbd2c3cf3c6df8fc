// The engine side of the studio on the CPU backend: the model catalog (modes, scaled paper presets,
// costs, labels), the Session (loading, compression with per-layer error, failures, budget, cancel), the
// classification task (file sources, lost live sources, stop) and the generation task (cancel within a
// step, dense-vs-BLR comparison, determinism).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/compress/compress.h"
#include "engine/core/error.h"
#include "engine/io/checkpoint.h"
#include "engine/io/frame_source.h"
#include "engine/runtime/classify_task.h"
#include "engine/runtime/generation_task.h"
#include "engine/runtime/model_catalog.h"
#include "engine/runtime/session.h"
#include "tests/app/studio_models_util.h"
#include "tests/app/studio_runtime_util.h"
#include "tests/common/test_util.h"

namespace blr::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

SourceSpec video_source(const std::string& path, bool loop) {
  SourceSpec s;
  s.kind = SourceSpec::Kind::Video;
  s.text = path;
  s.loop = loop;
  return s;
}

SessionOptions cpu_session() {
  SessionOptions o;
  o.force_cpu = true;
  return o;
}

std::vector<LinearShape> dit_xl_layers() {
  std::vector<LinearShape> layers;
  for (int l = 0; l < 28; ++l) {
    const std::string b = cat("blocks.", l, ".");
    layers.push_back({b + "attn.qkv", 1152, 3456, true, LinearKind::Dense, 1152 * 3456 + 3456});
    layers.push_back({b + "attn.proj", 1152, 1152, true, LinearKind::Dense, 1152 * 1152 + 1152});
    layers.push_back({b + "mlp.fc1", 1152, 4608, true, LinearKind::Dense, 1152 * 4608 + 4608});
    layers.push_back({b + "mlp.fc2", 4608, 1152, true, LinearKind::Dense, 4608 * 1152 + 1152});
    layers.push_back({b + "adaLN_modulation.1", 1152, 6912, true, LinearKind::Dense, 1152 * 6912 + 6912});
  }
  return layers;
}

// ---- model catalog ----

TEST(ModelCatalog, PaperPresetIsUnchangedAtTheReferenceWidth) {
  const ModeRules m = mode_rules(ModelKind::Dit, "blast", dit_xl_layers(), 1152);
  EXPECT_FALSE(m.scaled);
  EXPECT_EQ(m.text,
            "blocks.*.attn.qkv=blast:b=9,r=384\nblocks.*.mlp.fc1=blast:b=9,r=256\nblocks.*.adaLN_modulation.1=blast:b=9,r=256");
  const ModeRules v = mode_rules(ModelKind::Vit, "monarch",
                                 {{"blocks.0.attn.qkv", 768, 2304, true, LinearKind::Dense, 0},
                                  {"blocks.0.mlp.fc1", 768, 3072, true, LinearKind::Dense, 0},
                                  {"blocks.0.mlp.fc2", 3072, 768, true, LinearKind::Dense, 0}},
                                 768);
  EXPECT_FALSE(v.scaled);
  ASSERT_EQ(v.rules.size(), 3u);
  EXPECT_EQ(v.rules[0].spec.describe(), "monarch:b=4,r=128");
}

TEST(ModelCatalog, ScaledPresetsAreValidForATinyModel) {
  const std::string dir = temp_dir("studio_rt");
  write_tiny_dit(dir + "/dit.safetensors", 1);
  const Checkpoint ck = Checkpoint::open(dir + "/dit.safetensors");
  const auto layers = linear_layers(ck);
  for (const char* mode : {"blast", "monarch", "lowrank"}) {
    const ModeRules m = mode_rules(ModelKind::Dit, mode, layers, 64);
    EXPECT_TRUE(m.scaled) << mode;
    EXPECT_NE(m.note.find("1152"), std::string::npos) << m.note;
    int matched = 0;
    for (const auto& l : layers) {
      const auto spec = match_rules(m.rules, l.name);
      if (!spec) continue;
      ++matched;
      EXPECT_NO_THROW(validate_spec(*spec, l.in, l.out, l.name)) << mode << " " << l.name << " " << spec->describe();
    }
    EXPECT_EQ(matched, 6) << mode << ": qkv, fc1 and adaLN of both blocks";
  }
}

TEST(ModelCatalog, SpecParametersMatchTheFactorsCompressionProduces) {
  const Tensor W = random_tensor({48, 32}, 5);
  for (const char* text : {"x=lowrank:r=8", "x=monarch:b=4,r=8", "x=blast:b=4,r=6,iters=5"}) {
    const LinearSpec spec = parse_layer_rule(text).spec;
    const CompressResult r = compress_weight_cpu(W, spec);
    EXPECT_EQ(spec_parameters(spec, 32, 48), r.layer.parameter_count()) << text;
  }
}

TEST(ModelCatalog, ModeCostCountsCompressedLayersAndReportsInvalidRules) {
  const std::vector<LinearShape> layers = {{"a", 64, 64, true, LinearKind::Dense, 64 * 64 + 64},
                                           {"b", 64, 64, false, LinearKind::Dense, 64 * 64}};
  const ModeCost dense = mode_cost("dense", {}, layers, 100, DType::F32);
  EXPECT_EQ(dense.params, 100 + 64 * 64 + 64 + 64 * 64);
  EXPECT_EQ(dense.bytes, static_cast<size_t>(dense.params) * 4);
  EXPECT_DOUBLE_EQ(dense.ratio, 1.0);
  const ModeCost low = mode_cost("lowrank", {parse_layer_rule("a=lowrank:r=4")}, layers, 100, DType::BF16);
  EXPECT_EQ(low.params, 100 + 4 * (64 + 64) + 64 + 64 * 64);
  EXPECT_EQ(low.compressed_layers, 1);
  EXPECT_GT(low.ratio, 1.0);
  const ModeCost bad = mode_cost("bad", {parse_layer_rule("b=monarch:b=3,r=6")}, layers, 100, DType::F32);
  EXPECT_NE(bad.error.find("b=3 must divide"), std::string::npos) << bad.error;
  EXPECT_EQ(bad.compressed_layers, 0);
}

TEST(ModelCatalog, RulesTextParsesCommentsAndSeparatorsAndRejectsNonsense) {
  const auto rules = parse_rules_text("# a comment\nblocks.*.attn.qkv=blast:b=3,r=8 ; blocks.*.mlp.fc1=lowrank:r=4\n\n");
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[1].spec.kind, LinearKind::LowRank);
  EXPECT_THROW(parse_rules_text("blocks.*=squash:r=3"), InputError);
}

TEST(ModelCatalog, LabelsComeFromMetadataInEitherForm) {
  auto ck = [](std::map<std::string, std::string> meta) {
    return Checkpoint(std::make_shared<TensorMapReader>("m", std::map<std::string, Tensor>{}, meta));
  };
  EXPECT_EQ(metadata_labels(ck({{"class_names", "[\"a\",\"b\"]"}})), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(metadata_labels(ck({{"vit.labels", "x\ny\nz"}})), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_TRUE(metadata_labels(ck({})).empty());
  EXPECT_THROW(class_labels(ck({{"class_names", "[\"a\"]"}}), 3), InputError) << "fewer names than classes";
  EXPECT_THROW(metadata_labels(ck({{"class_names", "[1, 2"}})), InputError);
}

// ---- session ----

TEST(Session, LoadsDenseAndCompressesWithPerLayerError) {
  const std::string dir = temp_dir("studio_rt");
  write_tiny_vit(dir + "/vit.safetensors", 2);
  Session s(cpu_session());
  EXPECT_FALSE(s.backend().gpu);
  EXPECT_EQ(s.backend().dtype, DType::F32);
  const int dense = s.load(request(ModelKind::Vit, dir + "/vit.safetensors", "dense", ""));
  const int blast = s.load(request(ModelKind::Vit, dir + "/vit.safetensors", "blast", ""));
  const auto d = s.model(dense), b = s.model(blast);
  ASSERT_TRUE(d && b);
  EXPECT_EQ(d->labels, tiny_class_names());
  EXPECT_TRUE(d->compressed.empty());
  EXPECT_GE(d->memory.of(MemCategory::Weights), d->weight_bytes);
  ASSERT_EQ(b->compressed.size(), 6u) << "qkv, fc1, fc2 of two blocks";
  for (const auto& l : b->compressed) {
    EXPECT_GT(l.rel_error, 0.0) << l.name;
    EXPECT_LT(l.rel_error, 1.0) << l.name;
  }
  EXPECT_LT(b->params, d->params);
  EXPECT_NE(b->variant.find("blast"), std::string::npos) << b->variant;
  EXPECT_TRUE(b->can_save);
  // The saved compressed file loads as it is, with the same parameter count, and no further compression.
  s.save_compressed(blast, dir + "/vit_blast.safetensors");
  const int again = s.load(request(ModelKind::Vit, dir + "/vit_blast.safetensors", "dense", ""));
  EXPECT_EQ(s.model(again)->params, b->params);
  EXPECT_TRUE(s.model(again)->compressed.empty());
  EXPECT_EQ(s.model(again)->mode, "blast") << "a file of BLAST factors is named by what it holds";
  const int labelled = s.load(request(ModelKind::Vit, dir + "/vit_blast.safetensors", "dense", "", "blast-trained"));
  EXPECT_EQ(s.model(labelled)->mode, "blast-trained");
  s.unload(labelled);
  EXPECT_EQ(s.ids(ModelKind::Vit).size(), 3u);
  s.unload(again);
  EXPECT_EQ(s.ids(ModelKind::Vit).size(), 2u);
}

TEST(Session, FailedJobsBecomeEventsAndTheSessionKeepsWorking) {
  const std::string dir = temp_dir("studio_rt");
  write_tiny_dit(dir + "/dit.safetensors", 3);
  Session s(cpu_session());
  s.submit(request(ModelKind::Dit, dir + "/missing.safetensors", "dense", ""));
  s.submit(request(ModelKind::Vit, dir + "/dit.safetensors", "dense", ""));  // a DiT is not a ViT
  s.submit(request(ModelKind::Dit, dir + "/dit.safetensors", "dense", ""));
  ASSERT_TRUE(wait_for([&] { return !s.busy(); }));
  std::vector<SessionEvent> events = s.take_events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].level, SessionEvent::Level::Error);
  EXPECT_NE(events[0].text.find("missing.safetensors"), std::string::npos) << events[0].text;
  EXPECT_EQ(events[1].level, SessionEvent::Level::Error);
  EXPECT_EQ(events[2].level, SessionEvent::Level::Info);
  EXPECT_EQ(s.ids(ModelKind::Dit).size(), 1u);
  EXPECT_EQ(s.job().stage, "done");
}

// Whoever sees the session idle must also see the event of the job that just ended: polled without sleeping,
// over many quick failing jobs (with the event pushed after the job stopped counting as busy, this failed at
// the first job).
TEST(Session, AJobsEventIsThereAsSoonAsTheSessionIsIdle) {
  const std::string dir = temp_dir("studio_rt");
  Session s(cpu_session());
  for (int i = 0; i < 300; ++i) {
    s.submit(request(ModelKind::Dit, dir + "/missing.safetensors", "dense", ""));
    ASSERT_TRUE(wait_for([&] { return !s.busy(); }, 20s, 0ms)) << "job " << i << " did not end";
    const std::vector<SessionEvent> events = s.take_events();
    ASSERT_EQ(events.size(), 1u) << "job " << i;
    EXPECT_EQ(events[0].level, SessionEvent::Level::Error);
  }
}

TEST(Session, BudgetRefusesAModelThatDoesNotFit) {
  const std::string dir = temp_dir("studio_rt");
  write_tiny_dit(dir + "/dit.safetensors", 4);
  Session s(cpu_session());
  s.set_budget(parse_bytes("64KiB"));
  try {
    s.load(request(ModelKind::Dit, dir + "/dit.safetensors", "dense", ""));
    FAIL() << "a 700 KiB model loaded under a 64 KiB budget";
  } catch (const OutOfMemoryError& e) {
    EXPECT_NE(std::string(e.what()).find("budget"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(s.ids(ModelKind::Dit).empty());
  s.set_budget(std::nullopt);
  EXPECT_NO_THROW(s.load(request(ModelKind::Dit, dir + "/dit.safetensors", "dense", "")));
}

TEST(Session, CancelStopsALongCompressionWithinALayer) {
  const std::string dir = temp_dir("studio_rt");
  write_tiny_dit(dir + "/dit.safetensors", 5);
  Session s(cpu_session());
  // Many BLAST iterations: minutes if cancel only took effect between layers.
  s.submit(request(ModelKind::Dit, dir + "/dit.safetensors", "custom", "blocks.*.mlp.fc1=blast:b=4,r=16,iters=2000000"));
  ASSERT_TRUE(wait_for([&] { return s.job().stage == "compressing"; }));
  const auto t0 = std::chrono::steady_clock::now();
  s.cancel_job();
  ASSERT_TRUE(wait_for([&] { return !s.busy(); }, 20s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
  EXPECT_EQ(s.job().stage, "cancelled");
  EXPECT_TRUE(s.ids(ModelKind::Dit).empty());
}

// ---- classification ----

TEST(ClassifyTask, FileSourceGetsEveryFrameAndABadSourceFails) {
  const std::string dir = temp_dir("studio_rt");
  write_tiny_vit(dir + "/vit.safetensors", 6);
  if (!write_test_video(dir + "/clip.avi", 9)) GTEST_SKIP() << "skipped: OpenCV cannot write a video here";
  Session s(cpu_session());
  const int a = s.load(request(ModelKind::Vit, dir + "/vit.safetensors", "dense", ""));
  const int b = s.load(request(ModelKind::Vit, dir + "/vit.safetensors", "dense", ""));
  ClassifyTask task(s);
  ClassifyJob job;
  job.source = video_source(dir + "/clip.avi", false);
  job.model_ids = {a, b};
  job.topk = 3;
  task.start(job);
  ASSERT_TRUE(wait_for([&] { return !task.active(); }));
  ClassifyStatus st = task.status(true);
  EXPECT_EQ(st.state, ClassifyStatus::State::Finished) << st.message;
  EXPECT_EQ(st.classified, 9);
  ASSERT_EQ(st.frames.size(), 9u);
  for (const auto& f : st.frames) {
    ASSERT_EQ(f.predictions.size(), 2u);
    EXPECT_EQ(f.predictions[0].classes.size(), 3u);
    // Two copies of the same weights on the same frame: the same answer, so agreement must be total.
    EXPECT_EQ(f.predictions[0].classes, f.predictions[1].classes);
  }
  EXPECT_EQ(st.compared, 9);
  EXPECT_EQ(st.agreed, 9);

  job.source = video_source(dir + "/no_such_clip.avi", false);
  task.start(job);
  ASSERT_TRUE(wait_for([&] { return !task.active(); }));
  st = task.status();
  EXPECT_EQ(st.state, ClassifyStatus::State::Failed);
  EXPECT_NE(st.message.find("no_such_clip.avi"), std::string::npos) << st.message;
}

// A "camera" that delivers a few frames and then stops, like one that is unplugged.
class DyingCamera final : public FrameSource {
 public:
  explicit DyingCamera(int frames) : left_(frames) {}
  bool next(Frame& f) override {
    if (left_-- <= 0) return false;
    f.bgr = Tensor::zeros({48, 64, 3}, DType::U8);
    f.bgr.data_as<uint8_t>()[index_ % 100] = 200;
    f.index = index_++;
    f.source = "dying camera";
    return true;
  }
  std::string describe() const override { return "dying camera"; }
  bool live() const override { return true; }

 private:
  int left_;
  int64_t index_ = 0;
};

TEST(ClassifyTask, LiveSourceThatEndsIsLostAndRetryStartsAgain) {
  const std::string dir = temp_dir("studio_rt");
  write_tiny_vit(dir + "/vit.safetensors", 7);
  Session s(cpu_session());
  const int id = s.load(request(ModelKind::Vit, dir + "/vit.safetensors", "dense", ""));
  ClassifyTask task(s);
  ClassifyJob job;
  job.source.text = "dying camera";
  job.source.factory = [] { return std::make_unique<DyingCamera>(4); };
  job.model_ids = {id};
  task.start(job);
  ASSERT_TRUE(wait_for([&] { return !task.active(); }));
  ClassifyStatus st = task.status();
  EXPECT_EQ(st.state, ClassifyStatus::State::Lost) << st.message;
  EXPECT_TRUE(st.live);
  EXPECT_NE(st.message.find("stopped delivering frames"), std::string::npos) << st.message;
  EXPECT_GE(st.classified, 1);
  const uint64_t run = st.run;
  task.retry();
  ASSERT_TRUE(wait_for([&] { return !task.active(); }));
  EXPECT_EQ(task.status().run, run + 1);
  EXPECT_EQ(task.status().state, ClassifyStatus::State::Lost);
}

TEST(ClassifyTask, StopReturnsPromptlyWhileALoopingSourceRuns) {
  const std::string dir = temp_dir("studio_rt");
  write_tiny_vit(dir + "/vit.safetensors", 8);
  if (!write_test_video(dir + "/clip.avi", 5)) GTEST_SKIP() << "skipped: OpenCV cannot write a video here";
  Session s(cpu_session());
  ClassifyTask task(s);
  ClassifyJob job;
  job.source = video_source(dir + "/clip.avi", true);
  job.model_ids = {s.load(request(ModelKind::Vit, dir + "/vit.safetensors", "dense", ""))};
  task.start(job);
  ASSERT_TRUE(wait_for([&] { return task.status().classified >= 12; })) << "looping past the end of the clip";
  const auto t0 = std::chrono::steady_clock::now();
  task.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(task.status().state, ClassifyStatus::State::Stopped);
}

// ---- generation ----

TEST(GenerationTask, PsnrAndPixelConversion) {
  std::vector<float> zeros(2 * 2 * 4, 0.0f);
  Tensor a = Tensor::zeros({1, 2, 2, 4}, DType::U8), b = Tensor::zeros({1, 2, 2, 4}, DType::U8);
  EXPECT_TRUE(std::isinf(psnr_rgba(a, b).first));
  b.data_as<uint8_t>()[5] = 3;  // one channel of one pixel off by 3; alpha bytes are ignored
  b.data_as<uint8_t>()[7] = 200;
  const auto [psnr, diff] = psnr_rgba(a, b);
  EXPECT_EQ(diff, 3);
  EXPECT_NEAR(psnr, 10.0 * std::log10(255.0 * 255.0 / (9.0 / 12.0)), 1e-9);
  const Tensor rgba = pixels_to_rgba(Tensor::from_vector({1, 1, 1, 3}, {-1.0f, 0.0f, 1.0f}));
  EXPECT_EQ(rgba.data_as<uint8_t>()[0], 0);
  EXPECT_EQ(rgba.data_as<uint8_t>()[1], 128);  // (0 + 1) / 2 * 255 = 127.5, rounded half away from zero
  EXPECT_EQ(rgba.data_as<uint8_t>()[2], 255);
  EXPECT_EQ(rgba.data_as<uint8_t>()[3], 255);
}

// The demo DiT samples pixels (3 channels, no VAE): the task turns the final sample into RGBA through its
// pixel-space "decoder" (which on the GPU keeps a device copy for CUDA-GL interop).
TEST(GenerationTask, PixelSpaceModelFinishesWithAnImage) {
  Session s{cpu_session()};
  const int dit = s.load(request(ModelKind::Dit, std::string(BLR_TEST_DATA_DIR) + "/../../assets/models/demo_dit.safetensors"));
  GenerationTask task(s);
  GenerationJob job;
  job.dit_ids = {dit};
  job.classes = {0};
  job.seed = 3;
  job.steps = 3;
  task.start(job);
  ASSERT_TRUE(wait_for([&] { return !task.busy(); }));
  const GenerationStatus st = task.status();
  ASSERT_EQ(st.state, GenerationStatus::State::Finished) << st.message;
  ASSERT_EQ(st.outputs.size(), 1u);
  const GenerationOutput& o = st.outputs[0];
  EXPECT_EQ(o.decoder, "pixel space (no decoder)");
  ASSERT_TRUE(o.rgba.defined());
  EXPECT_EQ(o.rgba.shape(), (Shape{1, 32, 32, 4}));
  EXPECT_FALSE(o.device_rgba.defined());  // CPU backend: nothing on a device
  const uint8_t* px = o.rgba.data_as<uint8_t>();
  bool varied = false;
  for (int64_t i = 1; i < 32 * 32 && !varied; ++i) varied = px[i * 4] != px[0];
  EXPECT_TRUE(varied) << "a uniform picture";
  for (int64_t i = 0; i < 32 * 32; ++i) ASSERT_EQ(px[i * 4 + 3], 255) << "alpha at pixel " << i;
}

struct GenFixture {
  std::string dir;
  Session session{cpu_session()};
  int dit = -1, dit2 = -1, blast = -1, vae = -1;
};

void load_gen_models(GenFixture& f) {
  f.dir = temp_dir("studio_rt");
  write_tiny_dit(f.dir + "/dit.safetensors", 9);
  write_tiny_vae(f.dir + "/vae.safetensors", 10);
  f.dit = f.session.load(request(ModelKind::Dit, f.dir + "/dit.safetensors", "dense", ""));
  f.dit2 = f.session.load(request(ModelKind::Dit, f.dir + "/dit.safetensors", "dense", ""));
  f.blast = f.session.load(request(ModelKind::Dit, f.dir + "/dit.safetensors", "blast", ""));
  f.vae = f.session.load(request(ModelKind::Vae, f.dir + "/vae.safetensors", "dense", ""));
}

TEST(GenerationTask, CancelTakesEffectWithinAStep) {
  GenFixture f;
  load_gen_models(f);
  GenerationTask task(f.session);
  GenerationJob job;
  job.dit_ids = {f.dit};
  job.vae_id = f.vae;
  job.classes = {1};
  job.steps = 1000;
  task.start(job);
  ASSERT_TRUE(wait_for([&] { return task.status().step >= 3; }));
  task.cancel();
  const int seen = task.status().step;  // steps reported once the flag was already set
  ASSERT_TRUE(wait_for([&] { return !task.busy(); }));
  const GenerationStatus st = task.status();
  EXPECT_EQ(st.state, GenerationStatus::State::Cancelled) << st.message;
  ASSERT_EQ(st.outputs.size(), 1u);
  // The step running when the flag was set finishes (the CPU backend reports each step before the next
  // starts; the GPU has one more queued), so at most two steps follow the last one seen.
  EXPECT_LE(st.outputs[0].steps_done, seen + 2);
  EXPECT_LT(st.outputs[0].steps_done, 1000);
  EXPECT_FALSE(st.outputs[0].rgba.defined()) << "a cancelled run is not decoded";
}

TEST(GenerationTask, ComparesTwoModelsAndIsDeterministic) {
  GenFixture f;
  load_gen_models(f);
  GenerationTask task(f.session);
  GenerationJob job;
  job.vae_id = f.vae;
  job.classes = {4};
  job.seed = 123;
  job.steps = 5;
  job.previews = true;
  job.preview_every = 1;

  // The same weights loaded twice give identical images for one seed: PSNR infinite.
  job.dit_ids = {f.dit, f.dit2};
  task.start(job);
  ASSERT_TRUE(wait_for([&] { return !task.busy(); }));
  GenerationStatus st = task.status();
  ASSERT_EQ(st.state, GenerationStatus::State::Finished) << st.message;
  ASSERT_EQ(st.outputs.size(), 2u);
  ASSERT_TRUE(st.psnr.has_value());
  EXPECT_TRUE(std::isinf(*st.psnr));
  EXPECT_EQ(st.max_abs_diff, 0.0);
  EXPECT_GE(st.preview_version, 1u);

  // Dense against BLAST: the same shapes, a finite PSNR, fewer parameters, each with its step times.
  job.dit_ids = {f.dit, f.blast};
  task.start(job);
  ASSERT_TRUE(wait_for([&] { return !task.busy(); }));
  st = task.status();
  ASSERT_EQ(st.state, GenerationStatus::State::Finished) << st.message;
  ASSERT_EQ(st.outputs.size(), 2u);
  EXPECT_EQ(st.outputs[0].rgba.shape(), st.outputs[1].rgba.shape());
  EXPECT_EQ(st.outputs[0].rgba.dim(1), 64);
  ASSERT_TRUE(st.psnr.has_value());
  EXPECT_TRUE(std::isfinite(*st.psnr));
  EXPECT_GT(st.max_abs_diff, 0.0);
  EXPECT_LT(st.outputs[1].params, st.outputs[0].params);
  for (const auto& o : st.outputs) EXPECT_EQ(o.step_ms.size(), 5u);
}

TEST(GenerationTask, WithoutAVaeFallsBackToTheLatentPreviewAndRejectsNonDits) {
  GenFixture f;
  load_gen_models(f);
  GenerationTask task(f.session);
  GenerationJob job;
  job.dit_ids = {f.dit};
  job.classes = {0, 1};
  job.steps = 3;
  task.start(job);
  ASSERT_TRUE(wait_for([&] { return !task.busy(); }));
  GenerationStatus st = task.status();
  ASSERT_EQ(st.state, GenerationStatus::State::Finished) << st.message;
  EXPECT_NE(st.outputs[0].decoder.find("latent preview"), std::string::npos) << st.outputs[0].decoder;
  EXPECT_EQ(st.outputs[0].rgba.dim(0), 2);
  EXPECT_EQ(st.outputs[0].rgba.dim(1), 64) << "8x nearest upsampling of the 8x8 latent";

  job.dit_ids = {f.vae};
  task.start(job);
  ASSERT_TRUE(wait_for([&] { return !task.busy(); }));
  st = task.status();
  EXPECT_EQ(st.state, GenerationStatus::State::Failed);
  EXPECT_NE(st.message.find("not a loaded DiT"), std::string::npos) << st.message;
  EXPECT_THROW(task.start(GenerationJob{}), InputError);
}

}  // namespace
}  // namespace blr::test
