// blr classify: top-k classes of images, a video or a camera with a ViT checkpoint (dense, BLR factors,
// or compressed at load), with per-stage latency and device memory; --json writes the same per frame.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "app/cli/args.h"
#include "app/cli/command.h"
#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/device.h"
#include "engine/core/log.h"
#include "engine/demo/demo_models.h"
#include "engine/io/checkpoint.h"
#include "engine/io/frame_source.h"
#include "engine/io/labels.h"
#include "engine/models/vit/vit_model.h"
#include "engine/runtime/vit_classifier.h"

namespace blr::cli {

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_sigint(int) { g_stop = true; }

// Restores the previous SIGINT handler when the command ends (tests call run_cli in-process).
struct SigintGuard {
  explicit SigintGuard(bool install) : installed(install) {
    g_stop = false;
    if (installed) previous = std::signal(SIGINT, on_sigint);
  }
  ~SigintGuard() {
    if (installed) std::signal(SIGINT, previous);
  }
  bool installed;
  void (*previous)(int) = SIG_DFL;
};

int positive_int(const Args& args, const std::string& name) {
  const int v = args.get_int(name);
  if (v < 1) throw UsageError(cat("blr classify: --", name, " must be at least 1, got ", v));
  return v;
}

std::string label_of(const std::vector<std::string>& labels, int cls) {
  if (cls >= 0 && cls < static_cast<int>(labels.size())) return labels[static_cast<size_t>(cls)];
  return cat("class ", cls);
}

nlohmann::json memory_json(const MemoryReport& r) {
  return {{"weights_bytes", r.of(MemCategory::Weights)},
          {"activations_bytes", r.of(MemCategory::Activations)},
          {"workspace_bytes", r.of(MemCategory::Workspace)},
          {"total_bytes", r.total},
          {"peak_bytes", r.high_water}};
}

nlohmann::json config_json(const VitConfig& c) {
  return {{"image_size", c.image_size}, {"patch", c.patch},       {"width", c.width},
          {"depth", c.depth},           {"heads", c.heads},       {"mlp_hidden", c.mlp_hidden},
          {"num_classes", c.num_classes}, {"resize_short", c.resize_short()}};
}

}  // namespace

static int run_classify(const std::vector<std::string>& argv) {
  Args args("classify",
            "Classifies images, a video or a camera with a ViT (timm checkpoint; dense, BLR factors, or compressed "
            "at load). Prints the top-k classes with probabilities, per-stage latency and device memory.");
  args.option("model", "FILE", "ViT checkpoint with timm key names (.safetensors, or .pt/.bin with libzip); default: "
                               "the built-in demo ViT (with no input: on the demo video)")
      .repeated("compress", "RULE", "compress matching dense linears at load, as blr compress: PATTERN=METHOD[:b=B,r=R]")
      .option("mode", "MODE", "dense|monarch|blast|lowrank: the paper's configuration on qkv, fc1, fc2 (demo model: "
                              "dense|monarch|blast|blast-trained, the shipped files)", "dense")
      .option("image", "FILE", "image to classify; more files may follow it")
      .positional_list("FILES", "more images")
      .option("video", "FILE", "video file to classify frame by frame")
      .option("camera", "N|PIPELINE", "camera index, or a GStreamer pipeline ending in appsink")
      .option("frames", "N", "stop after N frames (video, camera; Ctrl-C also stops cleanly)")
      .option("topk", "K", "classes to report per frame", "5")
      .option("batch", "N", "frames per forward pass", "1")
      .option("dtype", "TYPE", "bf16|f16|f32 storage (default bf16 on the GPU; the CPU backend is f32)")
      .flag("no-graphs", "run eagerly instead of replaying a CUDA graph")
      .flag("cpu", "use the CPU backend even when a GPU is present")
      .option("memory-budget", "SIZE", "refuse device allocations past SIZE, e.g. 7.5GiB (does it fit a Jetson?)")
      .option("json", "FILE", "also write the results as JSON (- for stdout)")
      .option("labels", "FILE", "class names, one per line (default: the model's own, else ImageNet-1k names for "
                                "1000-class models)")
      .option("heads", "N", "attention heads (default: metadata, else width/64)")
      .option("mean", "R,G,B", "normalisation mean (default: metadata, else 0.5,0.5,0.5)")
      .option("std", "R,G,B", "normalisation std (default: metadata, else 0.5,0.5,0.5)")
      .option("crop-pct", "F", "resize the shorter side to image_size/F before the centre crop (default 0.9)")
      .option("key", "NAME", "state dict to read inside a PyTorch file (ema, model, ...)");
  if (!args.parse(argv)) return 0;

  // ---- everything about the request that can be checked before loading anything ----
  const bool demo_model = !args.has("model");
  const int batch = positive_int(args, "batch");
  const int topk = positive_int(args, "topk");
  const int64_t max_frames = args.has("frames") ? positive_int(args, "frames") : -1;  // -1: no limit
  std::vector<std::string> images;
  if (args.has("image")) images.push_back(args.get("image"));
  for (const auto& f : args.get_all("FILES")) images.push_back(f);
  int sources = (images.empty() ? 0 : 1) + (args.has("video") ? 1 : 0) + (args.has("camera") ? 1 : 0);
  std::string video_path = args.get("video");
  if (demo_model && sources == 0) {  // the demo: moving demo-shapes pictures
    video_path = demo::require(demo::video_path(), "the demo video");
    log_info("no input given: classifying the demo video ", video_path);
    sources = 1;
  }
  if (sources != 1)
    throw UsageError(cat("blr classify: give exactly one input: --image FILE..., --video FILE or --camera N|PIPELINE",
                         sources ? " (got several)" : ""));
  const std::string mode = args.get("mode");
  std::vector<LayerRule> rules;
  for (const auto& text : args.get_all("compress")) rules.push_back(parse_layer_rule(text));
  if (!demo_model)
    for (auto& r : vit_mode_rules(mode)) rules.push_back(std::move(r));
  // The demo ViT ships compressed twins and a BLAST-trained one: --mode picks the file.
  const std::string model_path =
      demo_model ? demo::require(demo::vit_path(mode), cat("the built-in demo ViT (", mode, ")")) : args.get("model");
  if (demo_model) log_info("no --model given: using the built-in demo model ", model_path, " (docs/MODELS.md)");
  std::optional<size_t> budget;
  if (args.has("memory-budget")) budget = parse_bytes(args.get("memory-budget"));
  VitConfigOverrides overrides;
  if (args.has("heads")) overrides.heads = positive_int(args, "heads");
  if (args.has("mean")) overrides.mean = parse_float3(args.get("mean"), "--mean");
  if (args.has("std")) overrides.std = parse_float3(args.get("std"), "--std");
  if (args.has("crop-pct")) overrides.crop_pct = static_cast<float>(args.get_double("crop-pct"));

  const bool use_cpu = args.has("cpu") || !cuda_available();
  if (!args.has("cpu") && use_cpu) log_info("no usable CUDA device (", query_device(0).reason, "): using the CPU backend");
  DType dtype = use_cpu ? DType::F32 : DType::BF16;
  if (args.has("dtype")) {
    dtype = parse_dtype(args.get("dtype"));
    if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16)
      throw UsageError(cat("blr classify: --dtype ", args.get("dtype"), ": expected bf16, f16 or f32"));
    if (use_cpu && dtype != DType::F32)
      throw UsageError(cat("blr classify: the CPU backend computes in f32; drop --dtype ", args.get("dtype"),
                           " or give --dtype f32"));
  }

  const std::string json_path = args.get("json");
  std::ofstream json_file;
  if (!json_path.empty() && json_path != "-") {
    json_file.open(json_path);
    if (!json_file) throw InputError(cat(json_path, ": cannot write the JSON output"));
  }
  FILE* out = json_path == "-" ? stderr : stdout;  // keep stdout pure JSON with --json -
  std::vector<std::string> labels;
  if (args.has("labels")) labels = load_labels(args.get("labels"));

  std::unique_ptr<FrameSource> source;
  if (!images.empty()) source = FrameSource::images(images);
  else if (!video_path.empty()) source = FrameSource::video(video_path);
  else source = FrameSource::camera(args.get("camera"));

  // ---- backend, model, classifier ----
  Arena arena(use_cpu ? Device::CPU : Device::CUDA, "classify", budget);
  std::unique_ptr<Ops> ops;
  if (use_cpu) ops = std::make_unique<CpuOps>();
  else ops = std::make_unique<CudaOps>(arena);
  CheckpointOptions copt;
  copt.key = args.get("key");
  const Checkpoint ckpt = Checkpoint::open(model_path, copt);
  VitLoadOptions lopt;
  lopt.dtype = dtype;
  lopt.arena = &arena;
  lopt.rules = rules;
  lopt.overrides = overrides;
  const VitModel model = load_vit(ckpt, lopt);
  const VitConfig& cfg = model.config;
  if (!labels.empty() && static_cast<int64_t>(labels.size()) < cfg.num_classes)
    throw InputError(cat(args.get("labels"), ": ", labels.size(), " names for a model with ", cfg.num_classes, " classes"));
  if (labels.empty()) labels = demo::metadata_class_names(ckpt);
  if (!labels.empty() && static_cast<int64_t>(labels.size()) < cfg.num_classes) labels.clear();  // partial: indices
  if (labels.empty() && cfg.num_classes == 1000) labels = imagenet_labels();
  ClassifierOptions copts;
  copts.batch = batch;
  copts.topk = topk;
  copts.use_graphs = !args.has("no-graphs");
  VitClassifier classifier(model, *ops, arena, copts);

  const std::string device = use_cpu ? std::string("cpu") : query_device(0).name;
  const std::string mode_label = model.mode_label();
  std::fprintf(out, "%s: %s\n  mode %s, %s on %s%s, batch %d\n", model.source.c_str(), cfg.describe().c_str(),
               mode_label.c_str(), dtype_name(dtype), device.c_str(),
               use_cpu ? "" : (copts.use_graphs ? " (CUDA graphs)" : " (eager)"), batch);

  nlohmann::json frames_json = nlohmann::json::array();
  SigintGuard sigint(source->live() || !video_path.empty());
  int64_t done = 0;
  bool ended = false;
  while (!g_stop && !ended && (max_frames < 0 || done < max_frames)) {
    std::vector<Frame> group;
    while (static_cast<int>(group.size()) < batch && (max_frames < 0 || done + static_cast<int64_t>(group.size()) < max_frames)) {
      Frame f;
      if (!source->next(f)) {
        ended = true;
        break;
      }
      group.push_back(std::move(f));
    }
    if (group.empty()) break;
    std::vector<Tensor> tensors;
    for (const auto& f : group) tensors.push_back(f.bgr);
    const ClassifyResult r = classifier.classify(tensors);
    const StageTimes& t = r.times;
    for (size_t i = 0; i < group.size(); ++i) {
      const Frame& f = group[i];
      const Prediction& p = r.predictions[i];
      std::fprintf(out, "[%lld] %s (%lldx%lld)\n", static_cast<long long>(f.index), f.source.c_str(),
                   static_cast<long long>(f.bgr.dim(1)), static_cast<long long>(f.bgr.dim(0)));
      nlohmann::json names = nlohmann::json::array();
      for (size_t j = 0; j < p.classes.size(); ++j) {
        const std::string name = label_of(labels, p.classes[j]);
        names.push_back(name);
        std::fprintf(out, "  %8.4f  %s (%d)\n", p.probs[j], name.c_str(), p.classes[j]);
      }
      frames_json.push_back({{"source", f.source},
                             {"frame", f.index},
                             {"width", f.bgr.dim(1)},
                             {"height", f.bgr.dim(0)},
                             {"classes", p.classes},
                             {"labels", names},
                             {"probabilities", p.probs},
                             {"timings_ms",
                              {{"upload", t.upload_ms}, {"preprocess", t.preprocess_ms}, {"network", t.network_ms},
                               {"total", t.total_ms}}},
                             {"batch_size", group.size()},
                             {"graph", r.graph},
                             {"mode", mode_label}});
    }
    auto ms = [](double v) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3f", v);
      return v < 0 ? std::string("?") : std::string(buf);
    };
    std::fprintf(out, "  latency%s: upload %s ms, preprocess %s ms, network %s ms, total %s ms%s\n",
                 group.size() > 1 ? cat(" (batch of ", group.size(), ")").c_str() : "", ms(t.upload_ms).c_str(),
                 ms(t.preprocess_ms).c_str(), ms(t.network_ms).c_str(), ms(t.total_ms).c_str(),
                 r.graph ? " [graph]" : "");
    done += static_cast<int64_t>(group.size());
  }
  if (g_stop) std::fprintf(out, "stopped after %lld frames\n", static_cast<long long>(done));
  else if (ended && !video_path.empty()) std::fprintf(out, "end of video after %lld frames\n", static_cast<long long>(done));
  else if (ended && source->live())
    std::fprintf(out, "%s stopped delivering frames after %lld\n", source->describe().c_str(), static_cast<long long>(done));

  const MemoryReport mem = arena.report();
  std::fprintf(out, "%s memory: weights %s, activations %s, workspace %s; peak %s\n", use_cpu ? "host" : "device",
               format_bytes(mem.of(MemCategory::Weights)).c_str(), format_bytes(mem.of(MemCategory::Activations)).c_str(),
               format_bytes(mem.of(MemCategory::Workspace)).c_str(), format_bytes(mem.high_water).c_str());

  if (!json_path.empty()) {
    const nlohmann::json doc = {{"model", model.source},
                                {"mode", mode_label},
                                {"dtype", dtype_name(dtype)},
                                {"backend", use_cpu ? "cpu" : "cuda"},
                                {"device", device},
                                {"graphs", !use_cpu && copts.use_graphs},
                                {"batch", batch},
                                {"topk", topk},
                                {"config", config_json(cfg)},
                                {"frames", frames_json},
                                {"memory", memory_json(mem)}};
    const std::string text = doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    if (json_path == "-") {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    } else {
      json_file << text;
      if (!json_file) throw Error(cat(json_path, ": writing the JSON output failed"));
    }
  }
  return 0;
}

BLR_REGISTER_COMMAND(classify, "classify", "classify images, a video or a camera with a ViT (dense or BLR)",
                     run_classify);

}  // namespace blr::cli
