// blr bench-vae: one SD-VAE decode (latent [B, L, L, 4] -> image [B, 8L, 8L, 3]) timed by CUDA-graph
// replay (and eagerly with --eager), with the decoder's FLOPs, achieved TFLOP/s, and the arena's peak
// memory by category. Random weights of the SD structure unless --vae FILE is given.
#include <cstdio>
#include <fstream>

#include "app/cli/args.h"
#include "app/cli/bench_util.h"
#include "app/cli/command.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/device.h"
#include "engine/io/checkpoint.h"
#include "engine/models/vae/vae_decoder.h"
#include "engine/models/vae/vae_random.h"

namespace blr::cli {
namespace {

int run_bench_vae(const std::vector<std::string>& argv) {
  Args args("bench-vae", "time the SD-VAE decoder");
  args.option("vae", "FILE", "decoder weights (diffusers AutoencoderKL safetensors); random SD weights if absent")
      .option("dtype", "T", "bf16, f16 or f32", "bf16")
      .option("batch", "N", "images per decode", "1")
      .option("latent", "L", "latent side (image side = 8·L)", "32")
      .option("samples", "N", "timed graph replays", "20")
      .flag("eager", "also time eager (no graph) decodes")
      .option("json", "FILE", "write the results as JSON ('-' for stdout)");
  if (!args.parse(argv)) return 0;
  if (!cuda_available()) throw InputError("blr bench-vae: no CUDA device");
  const DType dt = parse_dtype(args.get("dtype"));
  const int batch = args.get_int("batch"), side = args.get_int("latent"), samples = args.get_int("samples");
  if (batch < 1 || side < 1 || samples < 1) throw UsageError("blr bench-vae: --batch, --latent and --samples must be ≥ 1");

  Arena arena(Device::CUDA, "bench-vae");
  const Checkpoint ckpt = args.has("vae") ? Checkpoint::open(args.get("vae")) : random_vae_checkpoint(sd_vae_config(), 1);
  auto vae = VaeDecoder::load(ckpt, dt, &arena);
  CudaOps ops(arena);
  const VaeConfig& c = vae->config();
  const Shape latent_shape{batch, side, side, c.latent_channels};
  Tensor latent_host = Tensor::zeros(latent_shape, DType::F32);
  uint64_t seed = 11;
  for (int64_t i = 0; i < latent_host.numel(); ++i) {  // uniform [-1, 1): a latent-like range
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    latent_host.data_as<float>()[i] = static_cast<float>(seed >> 40) / 8388608.0f - 1.0f;
  }
  const Tensor latent = latent_host.to_dtype(dt).to_device(arena, MemCategory::Activations, "latent");
  Tensor image = Tensor::empty(vae->image_shape(latent_shape), dt, arena, MemCategory::Activations, "image");
  arena.reset_peaks();
  const TimingStats graph = time_graph(ops.stream(), [&](int) { vae->decode(ops, latent, image); }, 1, samples, 3);
  const MemoryReport mem = arena.report();
  const double flops = c.decode_flops(batch, side, side);
  std::printf("%s\n", c.describe().c_str());
  std::printf("decode %dx%dx%d latent -> %lldx%lld image, %s: graph median %.3f ms (min %.3f), %.1f GFLOP, "
              "%.1f TFLOP/s\n",
              batch, side, side, static_cast<long long>(image.dim(1)), static_cast<long long>(image.dim(2)),
              dtype_name(dt), graph.median_ms, graph.min_ms, flops / 1e9, flops / (graph.median_ms * 1e-3) / 1e12);
  std::printf("memory: %s\n", mem.summary().c_str());
  nlohmann::json result = {{"bench", "vae-decode"}, {"environment", environment_json()},
                           {"config", c.describe()}, {"dtype", dtype_name(dt)}, {"batch", batch},
                           {"latent", side}, {"flops", flops}, {"graph", graph.to_json()},
                           {"weights_bytes", vae->weight_bytes()}, {"activation_bytes", vae->activation_bytes()},
                           {"peak_bytes", mem.high_water}};
  if (args.has("eager")) {
    const TimingStats eager = time_eager(ops.stream(), [&](int) { vae->decode(ops, latent, image); }, samples, 3);
    std::printf("eager median %.3f ms\n", eager.median_ms);
    result["eager"] = eager.to_json();
  }
  if (args.has("json")) {
    const std::string text = result.dump(2);
    if (args.get("json") == "-") {
      std::printf("%s\n", text.c_str());
    } else {
      std::ofstream f(args.get("json"));
      if (!f) throw InputError(cat("blr bench-vae: cannot write '", args.get("json"), "'"));
      f << text << "\n";
    }
  }
  return 0;
}

}  // namespace

BLR_REGISTER_COMMAND(bench_vae, "bench-vae", "time the SD-VAE decoder", run_bench_vae);

}  // namespace blr::cli
