// blr bench --model vit-b16: the whole ViT-B/16 network (forward + softmax top-k from a preprocessed
// input, as PyTorch's baseline measures it) per layer mode and batch size. Timing is the median of
// ≥100 CUDA graph replays (cli::time_graph), optionally also eager launches; memory is the arena's peak
// per category while that configuration ran. Without --weights the model has random weights of the real
// size, with qkv / fc1 / fc2 built directly as random factors for the BLR modes (the paper's Monarch
// b=4 r=128 and BLAST b=3 r=128).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "app/cli/args.h"
#include "app/cli/bench_breakdown.h"
#include "app/cli/bench_util.h"
#include "engine/backend/cuda/cuda_attention.h"
#include "engine/backend/cuda/cuda_gemm_tuning.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/device.h"
#include "engine/core/log.h"
#include "engine/io/checkpoint.h"
#include "engine/models/vit/vit_model.h"
#include "engine/models/vit/vit_random.h"
#include "engine/runtime/vit_classifier.h"

namespace blr::cli {

namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<int> parse_batches(const std::string& text) {
  std::vector<int> out;
  for (const auto& s : split(text)) {
    char* end = nullptr;
    const long v = std::strtol(s.c_str(), &end, 10);
    if (*end != '\0' || v < 1 || v > 4096)
      throw UsageError(cat("blr bench --model vit-b16: --batch '", text, "': expected sizes from 1 to 4096, e.g. 1,32"));
    out.push_back(static_cast<int>(v));
  }
  if (out.empty()) throw UsageError("blr bench --model vit-b16: --batch is empty");
  return out;
}

// Uniform [-1, 1) input, like a normalised image, in the model dtype.
Tensor random_input(const Shape& shape, DType dtype) {
  Tensor t = Tensor::zeros(shape, DType::F32);
  uint64_t s = 12345;
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = static_cast<float>(s >> 40) / 8388608.0f - 1.0f;
  }
  return t.to_dtype(dtype);
}

}  // namespace

static int run_bench_vit(const std::vector<std::string>& argv) {
  Args args("bench --model vit-b16",
            "Times ViT-B/16 (forward + top-k on a preprocessed batch) per layer mode and batch size: median of CUDA "
            "graph replays, images/s, graphs vs eager, and peak device memory by category.");
  args.option("weights", "FILE", "timm ViT-B/16 checkpoint; BLR modes compress it at load (default: random weights)")
      .option("batch", "LIST", "batch sizes", "1,32")
      .option("modes", "LIST", "layer modes among dense, monarch, blast, lowrank", "dense,monarch,blast")
      .option("dtype", "TYPE", "bf16|f16|f32", "bf16")
      .option("samples", "N", "timed replays per configuration (at least 100)", "100")
      .flag("no-graphs-too", "also time eager launches (what CUDA graphs save)")
      .flag("breakdown", "also print where the GPU time goes: graph nodes by type, time per op and per op family")
      .flag("gemm-autotune", "time cuBLASLt's candidate algorithms per GEMM shape and keep the fastest (the default "
                             "takes the heuristic's first choice)")
      .option("json", "FILE", "write the results as JSON");
  if (!args.parse(argv)) return 0;
  const std::vector<int> batches = parse_batches(args.get("batch"));
  const std::vector<std::string> modes = split(args.get("modes"));
  if (modes.empty()) throw UsageError("blr bench --model vit-b16: --modes is empty");
  for (const auto& m : modes) vit_mode_rules(m);  // rejects unknown modes before any work
  const DType dtype = parse_dtype(args.get("dtype"));
  const int samples = args.get_int("samples");
  if (samples < 100) throw UsageError(cat("blr bench --model vit-b16: --samples ", samples, ": at least 100"));
  const bool eager_too = args.has("no-graphs-too");
  const bool breakdown = args.has("breakdown");
  const bool autotune = args.has("gemm-autotune");
  const std::string weights = args.get("weights");
  if (!cuda_available()) throw Error(cat("blr bench --model vit-b16 needs a CUDA device: ", query_device(0).reason));
  std::ofstream json_file;
  if (args.has("json")) {
    json_file.open(args.get("json"));
    if (!json_file) throw InputError(cat(args.get("json"), ": cannot write the JSON output"));
  }

  nlohmann::json results = nlohmann::json::array();
  std::map<int, double> dense_ms;  // per batch, for the "vs dense" column
  std::printf("%-8s %5s %10s %10s %10s %8s %8s %10s %10s %10s %10s\n", "mode", "batch", "ms/img", "images/s",
              "eager ms", "speedup", "vs dense", "weights", "activ.", "workspace", "peak");
  for (const std::string& mode : modes) {
    Arena arena(Device::CUDA, cat("bench vit-b16 ", mode));
    const std::vector<LayerRule> paper = vit_mode_rules(mode);
    VitLoadOptions lo;
    lo.dtype = dtype;
    lo.arena = &arena;
    Checkpoint ckpt;
    if (weights.empty()) {
      const LinearSpec spec = paper.empty() ? LinearSpec{} : paper.front().spec;
      ckpt = random_vit_checkpoint(VitConfig::vit_b16(), spec, 1);
    } else {
      ckpt = Checkpoint::open(weights);
      lo.rules = paper;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const VitModel model = load_vit(ckpt, lo);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ckpt = Checkpoint();  // host copies of random weights are no longer needed
    for (const int batch : batches) {
      arena.reset_peaks();
      nlohmann::json row;
      {
        CudaOps ops(arena);
        if (autotune) set_gemm_autotune(ops, true);
        ClassifierOptions co;
        co.batch = batch;
        co.topk = 5;
        co.use_graphs = false;  // timed below by time_graph's own capture
        co.warm_up = false;
        VitClassifier clf(model, ops, arena, co);
        clf.input().copy_from(random_input(clf.input().shape(), dtype));
        auto work = [&](int) { clf.enqueue_network(); };
        const TimingStats g = time_graph(ops.stream(), work, 1, samples, 10);
        TimingStats e;
        if (eager_too) e = time_eager(ops.stream(), work, samples, 10);
        ops.synchronize();
        const std::vector<float> probs = clf.buffers().probs.to_vector();
        bool finite = true;
        for (float p : probs) finite = finite && std::isfinite(p);
        if (!finite) log_warn("vit-b16 ", mode, " batch ", batch, ": non-finite probabilities (check the weights)");
        const MemoryReport mem = arena.report();
        const double per_image = g.median_ms / batch;
        if (mode == "dense") dense_ms[batch] = g.median_ms;
        const bool have_dense = dense_ms.count(batch) != 0;
        row = {{"model", "vit-b16"},
               {"weights", weights.empty() ? std::string("random") : weights},
               {"mode", mode},
               {"layers", model.mode_label()},
               {"dtype", dtype_name(dtype)},
               {"batch", batch},
               {"parameters", model.parameter_count()},
               {"load_s", load_s},
               {"graph", g.to_json()},
               {"ms_per_image", per_image},
               {"images_per_s", 1000.0 * batch / g.median_ms},
               {"finite", finite},
               {"gemm_autotune", autotune},
               {"attention_kernel", last_attention_path(ops)},
               {"memory",
                {{"weights_bytes", mem.of(MemCategory::Weights)},
                 {"activations_peak_bytes", mem.peak_of(MemCategory::Activations)},
                 {"workspace_peak_bytes", mem.peak_of(MemCategory::Workspace)},
                 {"peak_bytes", mem.high_water}}}};
        if (eager_too) {
          row["eager"] = e.to_json();
          row["graph_speedup"] = e.median_ms / g.median_ms;
        }
        if (have_dense) row["vs_dense"] = g.median_ms / dense_ms[batch];
        std::printf("%-8s %5d %10.4f %10.1f %10s %8s %8s %10s %10s %10s %10s\n", mode.c_str(), batch, per_image,
                    1000.0 * batch / g.median_ms, eager_too ? cat(e.median_ms).c_str() : "-",
                    eager_too ? cat(e.median_ms / g.median_ms, "x").c_str() : "-",
                    have_dense ? cat(g.median_ms / dense_ms[batch]).c_str() : "-",
                    format_bytes(mem.of(MemCategory::Weights)).c_str(),
                    format_bytes(mem.peak_of(MemCategory::Activations)).c_str(),
                    format_bytes(mem.peak_of(MemCategory::Workspace)).c_str(), format_bytes(mem.high_water).c_str());
        std::fflush(stdout);
        if (breakdown) {
          std::printf("  attention kernel: %s%s\n", last_attention_path(ops).c_str(),
                      autotune ? "; cuBLASLt algorithms autotuned" : "");
          VitBuffers b = clf.buffers();  // views of the classifier's activations
          row["breakdown"] = print_breakdown(ops, ops.stream(), [&](Ops& o) { vit_forward(o, model, b); }, g.median_ms);
        }
      }
      results.push_back(row);
    }
  }
  if (json_file.is_open()) {
    json_file << nlohmann::json{{"environment", environment_json()}, {"results", results}}.dump(2) << "\n";
    if (!json_file) throw Error(cat(args.get("json"), ": writing the JSON output failed"));
  }
  return 0;
}

BLR_REGISTER_BENCH_MODEL(vit_b16, "vit-b16", "ViT-B/16 classification: dense, Monarch, BLAST; batch 1 and 32",
                         run_bench_vit);

}  // namespace blr::cli
