// blr bench-attention: the attention op alone on the shapes the models use (ViT-B/16, DiT-XL/2 at 256
// and 16384 tokens, the VAE's mid block), timed by CUDA-graph replay (median of --samples, each sample
// the average of several back-to-back calls so launch gaps do not count). Prints which implementation
// ran, TFLOP/s (4·B·H·N²·D useful FLOPs) and the fraction of an assumed mma.sync peak, and writes JSON.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "app/cli/args.h"
#include "app/cli/bench_util.h"
#include "app/cli/command.h"
#include "engine/backend/cuda/cuda_attention.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/device.h"

namespace blr::cli {
namespace {

struct AttnShape {
  std::string name;
  int64_t B, N;
  int H, D;
};

// Uniform [-1, 1) values in `dt` on the arena's device (uploaded once; not timed).
Tensor device_random(const Shape& shape, DType dt, Arena& arena, uint64_t seed) {
  Tensor t = Tensor::zeros(shape, DType::F32);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = static_cast<float>(seed >> 40) / 8388608.0f - 1.0f;
  }
  return t.to_dtype(dt).to_device(arena, MemCategory::Activations, "bench input");
}

AttnShape parse_shape(const std::string& text) {
  AttnShape s{text, 0, 0, 0, 0};
  char tail = 0;
  long long b = 0, n = 0;
  int h = 0, d = 0;
  if (std::sscanf(text.c_str(), "%lld,%lld,%d,%d%c", &b, &n, &h, &d, &tail) != 4 || b < 1 || n < 1 || h < 1 ||
      d < 1)
    throw UsageError(cat("blr bench-attention: --shape '", text, "': expected B,N,H,D, e.g. 2,256,16,72"));
  s.B = b;
  s.N = n;
  s.H = h;
  s.D = d;
  return s;
}

int run_bench_attention(const std::vector<std::string>& argv) {
  Args args("bench-attention", "time the fused attention op on the models' shapes");
  args.option("dtype", "T", "bf16 or f16 (f32 runs the cuBLAS path)", "bf16")
      .repeated("shape", "B,N,H,D", "add a shape (default: the models' shapes)")
      .option("path", "P", "auto, fused, split (the fused kernel's split-key variant) or gemm", "auto")
      .option("samples", "N", "timed graph replays", "100")
      .option("peak-tflops", "T", "dense mma.sync peak the % column refers to (H100 SXM ≈ 660)", "660")
      .option("json", "FILE", "write the results as JSON ('-' for stdout)");
  if (!args.parse(argv)) return 0;
  if (!cuda_available()) throw InputError("blr bench-attention: no CUDA device");
  const DType dt = parse_dtype(args.get("dtype"));
  const std::string path_name = args.get("path");
  AttentionPath path = AttentionPath::Auto;
  if (path_name == "fused") path = AttentionPath::Fused;
  else if (path_name == "gemm") path = AttentionPath::Gemm;
  else if (path_name == "split") path = AttentionPath::FusedSplitKeys;
  else if (path_name != "auto")
    throw UsageError(cat("blr bench-attention: --path '", path_name, "': auto, fused, split or gemm"));
  const int samples = args.get_int("samples");
  const double peak = args.get_double("peak-tflops");

  std::vector<AttnShape> shapes;
  for (const std::string& s : args.get_all("shape")) shapes.push_back(parse_shape(s));
  if (shapes.empty())
    shapes = {{"vit-b16 b1", 1, 197, 12, 64},     {"vit-b16 b32", 32, 197, 12, 64},
              {"dit-xl2 b2 (cfg)", 2, 256, 16, 72}, {"dit-xl2 b16", 16, 256, 16, 72},
              {"dit-xl2 16384 tok", 1, 16384, 16, 72}, {"vae mid (D=512)", 1, 1024, 1, 512}};

  Arena arena(Device::CUDA, "bench-attention");
  CudaOps ops(arena);
  set_attention_path(ops, path);
  nlohmann::json results = nlohmann::json::array();
  std::printf("%-20s %6s %6s %3s %4s  %-28s %10s %9s %8s\n", "shape", "B", "N", "H", "D", "kernel", "median ms",
              "TFLOP/s", "% peak");
  for (const AttnShape& s : shapes) {
    const int64_t C = int64_t{s.H} * s.D;
    const Tensor qkv = device_random({s.B, s.N, 3 * C}, dt, arena, 7);
    Tensor out = Tensor::empty({s.B, s.N, C}, dt, arena, MemCategory::Activations, "out");
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.D));
    const double flops = 4.0 * s.B * s.H * static_cast<double>(s.N) * s.N * s.D;
    // Enough back-to-back calls per sample that one sample is ≳ 50 µs of work at 300 TFLOP/s.
    const int repeat = static_cast<int>(std::clamp(1.5e7 / flops, 1.0, 50.0));
    const TimingStats t = time_graph(ops.stream(), [&](int) { ops.attention(qkv, s.H, scale, out); }, repeat, samples);
    const double tflops = flops / (t.median_ms * 1e-3) / 1e12;
    const std::string kernel = last_attention_path(ops);
    std::printf("%-20s %6lld %6lld %3d %4d  %-28s %10.4f %9.1f %7.1f%%\n", s.name.c_str(),
                static_cast<long long>(s.B), static_cast<long long>(s.N), s.H, s.D, kernel.c_str(), t.median_ms,
                tflops, 100.0 * tflops / peak);
    results.push_back({{"shape", s.name}, {"B", s.B}, {"N", s.N}, {"H", s.H}, {"D", s.D},
                       {"dtype", dtype_name(dt)}, {"kernel", kernel}, {"timing", t.to_json()},
                       {"flops", flops}, {"tflops", tflops}, {"peak_tflops_assumed", peak},
                       {"bytes_min", static_cast<double>(qkv.nbytes() + out.nbytes())}});
  }
  if (args.has("json")) {
    const nlohmann::json doc = {{"bench", "attention"}, {"environment", environment_json()}, {"results", results}};
    const std::string text = doc.dump(2);
    if (args.get("json") == "-") {
      std::printf("%s\n", text.c_str());
    } else {
      std::ofstream f(args.get("json"));
      if (!f) throw InputError(cat("blr bench-attention: cannot write '", args.get("json"), "'"));
      f << text << "\n";
    }
  }
  return 0;
}

}  // namespace

BLR_REGISTER_COMMAND(bench_attention, "bench-attention", "time the attention op on the models' shapes",
                     run_bench_attention);

}  // namespace blr::cli
