// blr generate: class-conditional images from a DiT checkpoint and an SD-VAE decoder.
//   blr generate --dit DiT-XL-2-256x256.pt --vae sd-vae-ft-ema.safetensors --class 207 --class "red panda"
//                --seed 0 --steps 250 --sampler ddpm --cfg 4.0 --mode blast --dtype bf16 --out out.png
// Several classes give several images, in one batch: a grid (default) or numbered files. Each PNG
// carries a tEXt chunk "parameters" (JSON: model files, classes, seeds, steps, sampler, cfg, mode, rules,
// dtype, backend). Progress (step count, ms/step, ETA) goes to stderr; --json writes parameters, output
// paths, per-step/decode/total timings and memory by category. Bad input exits with code 2.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "app/cli/args.h"
#include "app/cli/bench_util.h"
#include "app/cli/command.h"
#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/device.h"
#include "engine/core/log.h"
#include "engine/diffusion/schedule.h"
#include "engine/io/checkpoint.h"
#include "engine/io/labels.h"
#include "engine/io/png.h"
#include "engine/models/dit/dit_keymap.h"
#include "engine/models/dit/dit_model.h"
#include "engine/runtime/generator.h"
#include "engine/runtime/latent_preview.h"
#include "engine/runtime/pixel_decoder.h"
#include "engine/demo/demo_models.h"
#include "engine/runtime/vae_loader.h"

namespace blr::cli {

namespace {

using Clock = std::chrono::steady_clock;

bool is_integer(const std::string& s) {
  if (s.empty()) return false;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

// A class given as an index (checked against the model) or a name (looked up in the label list).
int resolve_class(const std::string& text, const std::vector<std::string>& labels, int64_t num_classes) {
  int64_t idx = -1;
  if (is_integer(text)) {
    try {
      idx = std::stoll(text);
    } catch (const std::exception&) {
      throw InputError(cat("--class ", text, ": out of range (this model has classes 0..", num_classes - 1, ")"));
    }
  } else {
    const std::optional<int> found = find_label(labels, text);
    if (!found) throw InputError(cat("--class '", text, "': unknown class name (give an index or an ImageNet name)"));
    idx = *found;
  }
  if (idx < 0 || idx >= num_classes)
    throw InputError(cat("--class ", text, ": class ", idx, " is out of range (this model has classes 0..",
                         num_classes - 1, ")"));
  return static_cast<int>(idx);
}

std::string numbered_path(const std::string& out, size_t i) {
  const size_t slash = out.find_last_of('/');
  const size_t dot = out.find_last_of('.');
  const bool has_ext = dot != std::string::npos && (slash == std::string::npos || dot > slash);
  const std::string stem = has_ext ? out.substr(0, dot) : out;
  return cat(stem, "_", i, has_ext ? out.substr(dot) : std::string(".png"));
}

class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), tty_(isatty(fileno(stderr)) != 0) {}
  void update(int done, int total, double median_ms, double eta_s) {
    if (!enabled_) return;
    const int pct = total ? 100 * done / total : 100;
    if (!tty_ && done != total && pct / 10 == last_decile_) return;  // logs: one line per 10 %
    last_decile_ = pct / 10;
    constexpr int kWidth = 30;
    const int fill = total ? kWidth * done / total : kWidth;
    std::string bar(static_cast<size_t>(fill), '=');
    if (fill < kWidth) bar += '>' + std::string(static_cast<size_t>(kWidth - fill - 1), ' ');
    std::fprintf(stderr, "%s[%s] %d/%d steps  %.2f ms/step  ETA %.1f s%s", tty_ ? "\r" : "", bar.c_str(), done, total,
                 median_ms, eta_s, tty_ ? "" : "\n");
    if (tty_ && done == total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  bool enabled_, tty_;
  int last_decile_ = -1;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

nlohmann::json memory_json(const MemoryReport& m) {
  nlohmann::json cats = nlohmann::json::object();
  for (int c = 0; c < kMemCategoryCount; ++c)
    cats[mem_category_name(static_cast<MemCategory>(c))] = {{"current_bytes", m.current[c]}, {"peak_bytes", m.peak[c]}};
  nlohmann::json j = {{"arena", m.arena}, {"device", device_name(m.device)}, {"categories", cats},
                      {"total_bytes", m.total}, {"high_water_bytes", m.high_water}, {"summary", m.summary()}};
  if (m.budget) j["budget_bytes"] = *m.budget;
  return j;
}

int run_generate(const std::vector<std::string>& argv) {
  Args args("generate", "Generates class-conditional images with DiT + SD-VAE (dense or block-low-rank layers).");
  args.option("dit", "FILE", "DiT checkpoint (facebookresearch .pt/.safetensors or diffusers layout; default: the "
                             "built-in demo model)")
      .option("vae", "FILE", "SD-VAE checkpoint (sd-vae-ft-ema / -mse safetensors; not used by pixel-space DiTs)")
      .repeated("class", "C", "class index or name; repeat for several images (demo model: default one of each)")
      .option("seed", "N", "noise seed; image i uses seed + i", "0")
      .option("steps", "N", "sampling steps (respaced from 1000; default 250, or the model's demo.steps)")
      .option("sampler", "NAME", "ddpm (learned variance) or ddim (eta 0); default ddpm, or the model's demo.sampler")
      .option("cfg", "S", "classifier-free guidance scale; 1 disables the unconditional pass (default 4.0, or the "
                          "model's demo.cfg)")
      .option("mode", "MODE", "layer mode: dense, blast, monarch or lowrank (paper ranks)", "dense")
      .repeated("compress", "RULE", "extra layer rule PATTERN=METHOD:b=B,r=R (before the mode's rules)")
      .option("dtype", "T", "bf16, fp16 or f32 (the CPU backend always uses f32)", "bf16")
      .option("out", "FILE", "output PNG (several images: a grid, or numbered files with --layout files)", "out.png")
      .option("layout", "L", "grid or files, for several images", "grid")
      .option("json", "FILE", "write parameters, outputs, timings and memory as JSON ('-' = stdout)")
      .option("labels", "FILE", "class names, one per line (default: the model's own, else ImageNet)")
      .option("key", "NAME", "nested state dict in a PyTorch file (ema, model, ...)")
      .option("memory-budget", "SIZE", "refuse allocations beyond this (e.g. 7.5GiB)")
      .flag("cpu", "use the CPU reference backend (f32)")
      .flag("no-graphs", "run every step eagerly instead of replaying a CUDA graph")
      .flag("preview-decode", "skip the VAE: upsample the fast 4->3 latent preview instead")
      .flag("no-progress", "no progress bar");
  if (!args.parse(argv)) return 0;
  const auto t_start = Clock::now();

  // ---- cheap checks before anything heavy (the checkpoint header is read here: it may carry defaults) ----
  CheckpointOptions copt;
  copt.key = args.get("key");
  const std::string mode = args.get("mode");
  const bool demo_model = !args.has("dit");
  // The demo model ships compressed twins (made by blr compress, data-free): --mode picks one of them.
  const std::string dit_path = demo_model ? demo::require(demo::dit_path(mode), cat("the built-in demo DiT (", mode, ")"))
                                          : args.get("dit");
  if (demo_model) log_info("no --dit given: using the built-in demo model ", dit_path, " (docs/MODELS.md)");
  const Checkpoint dit_file = Checkpoint::open(dit_path, copt);
  const DitConfig cfg_model = infer_dit_config(dit_original_view(dit_file));
  const bool pixel_space = dit_is_pixel_space(cfg_model);
  const bool preview_decode = args.has("preview-decode");
  if (pixel_space && args.has("vae")) log_warn("this DiT samples pixels (3 channels): --vae is not used");
  if (!pixel_space && !args.has("vae") && !preview_decode)
    throw UsageError("--vae FILE is required (or --preview-decode)");
  const demo::SamplerDefaults model_defaults = demo::sampler_defaults(dit_file);
  const int steps = args.has("steps") ? args.get_int("steps") : model_defaults.steps.value_or(250);
  if (steps < 1 || steps > 1000) throw InputError(cat("--steps ", steps, ": must be between 1 and 1000"));
  const double cfg = args.has("cfg") ? args.get_double("cfg") : model_defaults.cfg.value_or(4.0);
  if (!std::isfinite(cfg) || cfg < 0) throw InputError(cat("--cfg ", args.get("cfg"), ": must be a number >= 0"));
  const SamplerKind sampler =
      parse_sampler(args.has("sampler") ? args.get("sampler") : model_defaults.sampler.value_or("ddpm"));
  std::vector<LayerRule> rules;
  for (const auto& r : args.get_all("compress")) rules.push_back(parse_layer_rule(r));
  if (!demo_model)
    for (auto& r : dit_mode_rules(mode)) rules.push_back(r);
  const std::string layout = args.get("layout");
  if (layout != "grid" && layout != "files") throw UsageError(cat("--layout ", layout, ": expected grid or files"));
  const int64_t seed = args.get_int64("seed");
  if (seed < 0) throw InputError(cat("--seed ", seed, ": must be >= 0"));
  if (!png_supported()) throw Error("this build cannot write PNG files (stb_image_write.h was not found)");
  const std::string out = args.get("out");

  const bool want_cpu = args.has("cpu");
  const bool use_cpu = want_cpu || !cuda_available();
  if (!want_cpu && use_cpu) log_info("no CUDA device: using the CPU backend");
  DType dtype = use_cpu ? DType::F32 : parse_dtype(args.get("dtype"));
  if (!is_floating(dtype) || dtype == DType::F64) throw InputError(cat("--dtype ", args.get("dtype"), ": expected bf16, fp16 or f32"));
  std::optional<size_t> budget;
  if (args.has("memory-budget")) budget = parse_bytes(args.get("memory-budget"));

  std::vector<std::string> labels;
  if (args.has("labels")) labels = load_labels(args.get("labels"));
  else labels = demo::metadata_class_names(dit_file);
  if (labels.empty()) labels = imagenet_labels();
  std::vector<int> classes;
  for (const auto& c : args.get_all("class")) classes.push_back(resolve_class(c, labels, cfg_model.num_classes));
  // A small model that names its classes (the demo DiT) draws one picture of each by default.
  constexpr int64_t kAllClassesDefault = 16;
  if (classes.empty() && !args.has("labels") && !demo::metadata_class_names(dit_file).empty() &&
      cfg_model.num_classes <= kAllClassesDefault) {
    for (int k = 0; k < static_cast<int>(cfg_model.num_classes); ++k) classes.push_back(k);
    log_info("no --class given: one image of each of the model's ", classes.size(), " classes");
  }
  if (classes.empty()) throw UsageError("at least one --class is required");

  // ---- backend and models ----
  Arena arena(use_cpu ? Device::CPU : Device::CUDA, use_cpu ? "cpu" : "cuda:0", budget);
  std::unique_ptr<Ops> ops;
  if (use_cpu) ops = std::make_unique<CpuOps>();
  else ops = std::make_unique<CudaOps>(arena);
  const auto t_load = Clock::now();
  DitLoadOptions lopt;
  lopt.dtype = dtype;
  lopt.arena = &arena;
  lopt.rules = rules;
  const DitModel dit = DitModel::load(dit_file, lopt);
  std::unique_ptr<LatentDecoder> decoder;
  if (pixel_space) decoder = std::make_unique<PixelDecoder>(dtype);
  else if (preview_decode) decoder = std::make_unique<PreviewDecoder>(arena, dtype);
  else decoder = load_vae_decoder(Checkpoint::open(args.get("vae"), copt), dtype, arena);
  const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_load).count();
  log_info(cat(cfg_model.describe(), "; ", dit.describe_layers(), "; weights ", format_bytes(dit.weight_bytes())));

  GeneratorOptions gopt;
  gopt.use_graphs = !args.has("no-graphs");
  Generator gen(*ops, dit, decoder.get(), arena, gopt);
  GenerateRequest req;
  req.classes = classes;
  req.seed = static_cast<uint64_t>(seed);
  req.steps = steps;
  req.sampler = sampler;
  req.guidance = static_cast<float>(cfg);
  req.guided_channels = static_cast<int>(std::min<int64_t>(3, cfg_model.in_channels));
  gen.validate(req);

  Progress progress(!args.has("no-progress"));
  std::vector<double> seen;
  const GenerateResult res = gen.generate(req, [&](const StepInfo& s) {
    seen.push_back(s.step_ms);
    const double med = median(seen);
    progress.update(s.step + 1, s.steps, med, med * (s.steps - s.step - 1) / 1000.0);
    return true;
  });

  // ---- outputs ----
  std::vector<std::string> class_names;
  for (int c : classes) class_names.push_back(c < static_cast<int>(labels.size()) ? labels[c] : std::to_string(c));
  nlohmann::json params = {{"dit", dit_path},
                           {"vae", pixel_space      ? std::string("none (pixel space)")
                                   : preview_decode ? std::string("latent-preview")
                                                    : args.get("vae")},
                           {"classes", classes},
                           {"class_names", class_names},
                           {"seed", seed},
                           {"steps", steps},
                           {"sampler", sampler_name(sampler)},
                           {"cfg", cfg},
                           {"mode", mode},
                           {"rules", args.get_all("compress")},
                           {"layers", dit.describe_layers()},
                           {"dtype", dtype_name(dtype)},
                           {"backend", ops->name()},
                           {"graphs", gopt.use_graphs && !use_cpu},
                           {"model", cfg_model.describe()}};
  std::vector<std::string> written;
  if (!res.rgba.defined()) throw Error("generation stopped before decoding");
  const Tensor& rgba = res.rgba;
  const int64_t B = rgba.dim(0);
  if (B == 1 || layout == "grid") {
    nlohmann::json p = params;
    p["seeds"] = nlohmann::json::array();
    for (int64_t b = 0; b < B; ++b) p["seeds"].push_back(seed + b);
    write_png(out, B == 1 ? rgba.select(0, 0) : image_grid(rgba), {{"parameters", p.dump()}, {"Software", "BLR Studio"}});
    written.push_back(out);
  } else {
    for (int64_t b = 0; b < B; ++b) {
      nlohmann::json p = params;
      p["classes"] = {classes[b]};
      p["class_names"] = {class_names[b]};
      p["seed"] = seed + b;
      p["batch_index"] = b;
      const std::string path = numbered_path(out, static_cast<size_t>(b));
      write_png(path, rgba.select(0, b), {{"parameters", p.dump()}, {"Software", "BLR Studio"}});
      written.push_back(path);
    }
  }
  const double total_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_start).count();
  for (const auto& w : written) std::printf("wrote %s\n", w.c_str());
  std::fprintf(stderr,
               "%d steps: median %.2f ms/step, sampling %.1f ms, decode %.1f ms (+ %.1f ms one-time decoder "
               "warm-up), total %.1f ms; %s\n",
               res.steps_done, median(res.step_ms), res.sampling_ms, res.decode_ms, res.decode_warmup_ms, total_ms,
               res.memory.summary().c_str());

  if (args.has("json")) {
    nlohmann::json j = {{"command", "generate"},
                        {"parameters", params},
                        {"outputs", written},
                        {"timings",
                         {{"load_ms", load_ms},
                          {"step_ms", res.step_ms},
                          {"step_ms_median", median(res.step_ms)},
                          {"sampling_ms", res.sampling_ms},
                          {"decode_ms", res.decode_ms},
                          {"decode_warmup_ms", res.decode_warmup_ms},
                          {"generate_ms", res.total_ms},
                          {"total_ms", total_ms}}},
                        {"memory", memory_json(res.memory)},
                        {"model", {{"parameters", dit.parameter_count()}, {"weight_bytes", dit.weight_bytes()}}}};
    if (!use_cpu) j["environment"] = environment_json();
    const std::string text = j.dump(2);
    if (args.get("json") == "-") {
      std::printf("%s\n", text.c_str());
    } else {
      std::ofstream f(args.get("json"));
      if (!f) throw InputError(cat(args.get("json"), ": cannot write"));
      f << text << "\n";
    }
  }
  return 0;
}

}  // namespace

BLR_REGISTER_COMMAND(generate, "generate", "generate class-conditional images with DiT + SD-VAE", run_generate);

}  // namespace blr::cli
