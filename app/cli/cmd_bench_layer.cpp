// blr bench-layer: times one linear layer (dense, low-rank, Monarch, BLAST) on the GPU, all variants in
// one run so their ratios come from the same card, clocks and build.
//
// Each variant is timed as the median over >= 100 replays of a CUDA graph (so launch overhead is not
// counted), after warm-up. The graph calls the layer once per "set" — an independent copy of x, the
// weights and y — rotating over enough sets that together they exceed twice the L2 cache; weights and
// activations therefore stream from HBM as they do in a full model, rather than sitting in L2. Reported:
// ms (median, min), TFLOP/s, GB/s over the minimum bytes (weights + x + y, read/written once), % of the
// roofline bound from the card's peak figures (printed), parameter bytes, and the max error against the
// fp32 CPU reference on a sample of rows (computed from the same rounded inputs/weights).
// --breakdown and --sweep (bench_layer_sweep.cpp) time the stages alone and every path/tile the code has;
// lines starting with "S| " are a compact digest for logs that are read only by their tail.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "app/cli/args.h"
#include "app/cli/bench_layer.h"
#include "app/cli/bench_util.h"
#include "app/cli/command.h"
#include "engine/backend/cuda/cuda_blr.h"
#include "engine/core/device.h"
#include "engine/core/error.h"

namespace blr::cli {
namespace {

LayerKind parse_kind(const std::string& s) {
  if (s == "dense") return LayerKind::Dense;
  if (s == "lowrank") return LayerKind::LowRank;
  if (s == "monarch") return LayerKind::Monarch;
  if (s == "blast") return LayerKind::Blast;
  throw InputError(cat("unknown variant '", s, "' (expected dense, lowrank, monarch or blast)"));
}

void validate(const VariantSpec& v, const LayerProblem& p) {
  const int64_t lim = std::min(p.in, p.out);
  if (v.kind == LayerKind::Dense) return;
  if (v.r < 1) throw InputError(cat(v.name, ": rank r=", v.r, " must be at least 1"));
  if (v.kind == LayerKind::LowRank) {
    if (v.r > lim) throw InputError(cat("lowrank: r=", v.r, " is too large (at most min(in, out) = ", lim, ")"));
    return;
  }
  if (v.b < 1) throw InputError(cat(v.name, ": b=", v.b, " must be at least 1"));
  if (p.in % v.b != 0) throw InputError(cat(v.name, ": b=", v.b, " does not divide --in ", p.in));
  if (p.out % v.b != 0) throw InputError(cat(v.name, ": b=", v.b, " does not divide --out ", p.out));
  if (v.kind == LayerKind::Monarch) {
    if (v.r % v.b != 0) throw InputError(cat("monarch: r=", v.r, " must be a multiple of b=", v.b));
    const int64_t blim = std::min(p.in, p.out) / v.b;
    if (v.r / v.b > blim)
      throw InputError(cat("monarch: r=", v.r, " is too large (r/b at most min(in, out)/b = ", blim, ")"));
    return;
  }
  if (v.r > lim) throw InputError(cat("blast: r=", v.r, " is too large (at most min(in, out) = ", lim, ")"));
}

std::string mib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / 1048576.0);
  return buf;
}

struct Result {
  VariantSpec v;
  Timed timed;
  Cost cost;
  double param_bytes = 0, set_bytes = 0;
  int sets = 0;
  nlohmann::json breakdown, sweep;
  std::string breakdown_line, sweep_line;
};

nlohmann::json result_json(const Result& r, const DeviceInfo& dev, bool tensor_peak) {
  const double s = r.timed.t.median_ms * 1e-3;
  const ErrorStats& e = r.timed.err;
  nlohmann::json j = {{"variant", r.v.name},
                      {"b", r.v.b},
                      {"r", r.v.r},
                      {"timing", r.timed.t.to_json()},
                      {"flops", r.cost.flops},
                      {"tflops", r.cost.flops / s / 1e12},
                      {"min_bytes", r.cost.bytes},
                      {"gbs", r.cost.bytes / s / 1e9},
                      {"parameter_bytes", r.param_bytes},
                      {"rotating_sets", r.sets},
                      {"set_bytes", r.set_bytes},
                      {"plan", r.timed.plan},
                      {"check_rows", e.rows},
                      {"max_abs_error", e.max_abs},
                      {"max_rel_error", e.rel()},
                      {"cosine", e.cosine},
                      {"finite", e.finite}};
  const double t_mem = r.cost.bytes / (dev.memory_bandwidth_gbs * 1e9);
  if (tensor_peak) {
    const double t_flop = r.cost.flops / (dev.bf16_tflops * 1e12);
    j["roofline_bound_ms"] = std::max(t_flop, t_mem) * 1e3;
    j["roofline_limit"] = t_flop >= t_mem ? "compute" : "memory";
    j["roofline_pct"] = 100.0 * std::max(t_flop, t_mem) / s;
  } else {
    j["roofline_bound_ms"] = t_mem * 1e3;
    j["roofline_limit"] = "memory (no f32 compute peak known)";
    j["roofline_pct"] = 100.0 * t_mem / s;
  }
  if (!r.breakdown.is_null()) j["breakdown"] = r.breakdown;
  if (!r.sweep.is_null()) j["sweep"] = r.sweep;
  return j;
}

int run_bench_layer(const std::vector<std::string>& argv) {
  Args args("bench-layer",
            "Times one linear layer on the GPU in each requested variant (median of CUDA-graph replays, "
            "weights streamed from HBM) and checks it against the CPU reference.");
  args.option("in", "N", "input features", "1152")
      .option("out", "N", "output features", "4608")
      .option("tokens", "N", "rows of x (tokens x batch)", "512")
      .option("variants", "LIST", "comma-separated: dense, lowrank, monarch, blast", "dense,lowrank,monarch,blast")
      .option("b", "B", "blocks for Monarch and BLAST", "9")
      .option("r", "R", "rank for low-rank, Monarch and BLAST", "256")
      .option("lowrank-r", "R", "rank of the low-rank variant (default --r)")
      .option("monarch-b", "B", "blocks of the Monarch variant (default --b)")
      .option("monarch-r", "R", "rank of the Monarch variant (default --r)")
      .option("blast-b", "B", "blocks of the BLAST variant (default --b)")
      .option("blast-r", "R", "rank of the BLAST variant (default --r)")
      .option("dtype", "T", "bf16, f16 or f32", "bf16")
      .option("act", "A", "activation fused into the layer: none, gelu, gelu_tanh, silu", "none")
      .flag("no-bias", "layer without bias")
      .option("samples", "N", "timed graph replays (at least 100)", "200")
      .option("warmup", "N", "untimed graph replays first", "20")
      .option("check-rows", "N", "rows compared with the fp32 CPU reference", "64")
      .option("stage1", "PATH", "force the first BLR stage: auto, tc, simt, lt", "auto")
      .option("stage2", "PATH", "force the second BLR stage: auto, tc, simt, lt", "auto")
      .option("tile1", "ID", "stage-1 tile id (experiments; 0 = cost model)", "0")
      .option("tile2", "ID", "stage-2 tile id (experiments; 0 = cost model)", "0")
      .option("lt-algo", "I", "entry of cuBLASLt's heuristic list for cuBLASLt stages (0 = its first choice)", "0")
      .flag("no-pdl", "launch stage 2 without programmatic dependent launch")
      .flag("pdl-first", "launch the layer's first kernel under PDL too (it waits before reading anything)")
      .flag("breakdown", "also time each stage alone, the pair, PDL off and PDL-first")
      .flag("sweep", "also time every stage path, tile and cuBLASLt algorithm")
      .flag("sweep-tiles", "with --sweep: only the stage-1 and stage-2 tiles and paths (no cuBLASLt algorithm list)")
      .option("sweep-samples", "N", "graph replays per configuration in --breakdown and --sweep (at least 100)", "100")
      .flag("probe", "also time empty kernels as graph nodes (what one kernel launch costs)")
      .option("label", "NAME", "name of this layer in the \"S| \" digest lines", "")
      .option("json", "FILE", "also write the results as JSON");
  if (!args.parse(argv)) return 0;

  LayerProblem p;
  p.in = args.get_int64("in");
  p.out = args.get_int64("out");
  p.tokens = args.get_int64("tokens");
  if (p.in < 1 || p.out < 1 || p.tokens < 1)
    throw InputError(cat("--in, --out and --tokens must be at least 1 (got ", p.in, ", ", p.out, ", ", p.tokens, ")"));
  p.dtype = parse_dtype(args.get("dtype"));
  if (p.dtype != DType::F32 && p.dtype != DType::F16 && p.dtype != DType::BF16)
    throw InputError(cat("--dtype ", args.get("dtype"), ": expected bf16, f16 or f32"));
  p.act = parse_act(args.get("act"));
  p.bias = !args.has("no-bias");
  const int samples = args.get_int("samples"), warmup = args.get_int("warmup");
  if (samples < 100) throw InputError(cat("--samples ", samples, ": at least 100 replays are timed"));
  if (warmup < 0) throw InputError("--warmup must not be negative");
  const int sweep_samples = args.get_int("sweep-samples");
  if (sweep_samples < 100) throw InputError(cat("--sweep-samples ", sweep_samples, ": at least 100 replays are timed"));
  const int64_t check = args.get_int64("check-rows");
  const int lt_algo = args.get_int("lt-algo");
  if (lt_algo < 0 || lt_algo > 7) throw InputError(cat("--lt-algo ", lt_algo, ": expected 0..7"));

  std::vector<VariantSpec> variants;
  std::vector<std::string> notes;
  std::stringstream list(args.get("variants"));
  for (std::string name; std::getline(list, name, ',');) {
    if (name.empty()) continue;
    VariantSpec v;
    v.kind = parse_kind(name);
    v.name = name;
    const std::string prefix = name + "-";
    if (v.kind == LayerKind::Monarch || v.kind == LayerKind::Blast)
      v.b = args.has(prefix + "b") ? args.get_int64(prefix + "b") : args.get_int64("b");
    if (v.kind != LayerKind::Dense) v.r = args.has(prefix + "r") ? args.get_int64(prefix + "r") : args.get_int64("r");
    // Monarch needs r % b == 0; when the shared --r does not fit its b, take the largest multiple below it
    // (so "--b 9 --r 256" benchmarks Monarch at r = 252) and say so. An explicit --monarch-r is taken as is.
    if (v.kind == LayerKind::Monarch && !args.has("monarch-r") && v.b >= 1 && v.r % v.b != 0 && v.r >= v.b) {
      const int64_t adjusted = v.r / v.b * v.b;
      notes.push_back(cat("monarch: --r ", v.r, " is not a multiple of b=", v.b, "; using r=", adjusted,
                          " (set --monarch-r to choose)"));
      v.r = adjusted;
    }
    validate(v, p);
    variants.push_back(v);
  }
  if (variants.empty()) throw InputError("--variants is empty");

  BlrKernelOptions opt = blr_kernel_options();
  opt.stage1 = parse_blr_stage_path(args.get("stage1"));
  opt.stage2 = parse_blr_stage_path(args.get("stage2"));
  opt.tile1 = args.get_int("tile1");
  opt.tile2 = args.get_int("tile2");
  opt.lt_algo = lt_algo;
  if (args.has("no-pdl")) opt.pdl = false;
  if (args.has("pdl-first")) opt.pdl_first = true;

  const DeviceInfo dev = query_device(0);
  if (!dev.available) throw InputError(dev.reason.empty() ? std::string("no CUDA device") : dev.reason);
  ScopedBlrKernelOptions scoped(opt);
  const bool tensor_peak = p.dtype != DType::F32;
  const std::string label = args.get("label").empty() ? cat(p.in, "->", p.out) : args.get("label");

  std::printf("blr bench-layer: %lld -> %lld, %lld tokens, %s, act %s, bias %s\n", static_cast<long long>(p.in),
              static_cast<long long>(p.out), static_cast<long long>(p.tokens), dtype_name(p.dtype), act_name(p.act),
              p.bias ? "on" : "off");
  std::printf("device: %s (sm_%d%d, %d SMs, L2 %s); peaks used for the roofline: %.0f TFLOP/s dense bf16/f16 "
              "(architecture table x SM clock), %.0f GB/s HBM (bus width x memory clock)\n",
              dev.name.c_str(), dev.cc_major, dev.cc_minor, dev.sm_count, mib(static_cast<double>(dev.l2_bytes)).c_str(),
              dev.bf16_tflops, dev.memory_bandwidth_gbs);
  std::printf("timing: median of %d CUDA-graph replays after %d warm-up replays; each replay calls the layer once "
              "per independent (x, weights, y) set, rotating over enough sets to exceed 2 x L2 (%s), so weights and "
              "activations come from HBM as in a full model\n",
              samples, warmup, mib(2.0 * static_cast<double>(dev.l2_bytes)).c_str());
  for (const std::string& n : notes) std::printf("note: %s\n", n.c_str());
  std::printf("stage paths: stage1=%s stage2=%s pdl=%s pdl-first=%s\n\n", blr_stage_path_name(opt.stage1),
              blr_stage_path_name(opt.stage2), opt.pdl ? "on" : "off", opt.pdl_first ? "on" : "off");
  std::fflush(stdout);

  std::vector<Result> results;
  nlohmann::json probe_json;
  double dense_ms = -1;
  bool bad = false;
  // Digest lines ("S| "), printed and flushed as soon as each is known, so a run cut short (a time limit,
  // a device fault) still leaves what it measured.
  auto digest = [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  for (const VariantSpec& v : variants) {
    LayerBench bench(v, p, dev, check);
    Result r;
    r.v = v;
    r.cost = layer_cost(v, p);
    r.param_bytes = static_cast<double>(parameter_count(v, p)) * static_cast<double>(dtype_size(p.dtype));
    r.set_bytes = bench.set_bytes();
    r.sets = bench.sets();
    r.timed = bench.time(opt, samples, warmup, true);
    if (!r.timed.error.empty()) throw Error(cat("bench-layer ", v.name, ": ", r.timed.error));
    if (v.kind == LayerKind::Dense) dense_ms = r.timed.t.median_ms;
    {
      std::string line = cat("S| ", label, " ", p.tokens, "tok ", v.name);
      if (v.kind != LayerKind::Dense) line += cat(" b", v.b, " r", v.r);
      char buf[64];
      std::snprintf(buf, sizeof buf, ": %.2f us", r.timed.t.median_ms * 1e3);
      line += buf;
      if (dense_ms > 0 && v.kind != LayerKind::Dense) {
        std::snprintf(buf, sizeof buf, " (x%.3f)", r.timed.t.median_ms / dense_ms);
        line += buf;
      }
      if (!r.timed.err.finite || r.timed.err.rel() > 3e-2) line += cat(" BAD OUTPUT rel err ", r.timed.err.rel());
      digest(line);
    }
    if (args.has("probe") && probe_json.is_null()) {
      std::string line;
      probe_json = probe_launch_cost(bench.ops(), dev.sm_count, &line);
      std::printf("%s\n", line.c_str());
      digest(cat("S| ", line));
    }
    if (args.has("breakdown")) {
      r.breakdown = run_breakdown(bench, opt, dev, sweep_samples, warmup, &r.breakdown_line);
      if (v.kind != LayerKind::Dense) digest(cat("S|   bd: ", r.breakdown_line));
    }
    if (args.has("sweep") && v.kind != LayerKind::Dense) {
      r.sweep = run_sweep(bench, opt, dense_ms, sweep_samples, warmup, !args.has("sweep-tiles"), &r.sweep_line);
      digest(cat("S|   sw: ", r.sweep_line));
    }
    std::fflush(stdout);
    results.push_back(std::move(r));
  }

  std::printf("\n%-8s %3s %4s %11s %9s %9s %8s %8s %9s %9s %7s %10s %9s %8s\n", "variant", "b", "r", "params", "ms",
              "min ms", "TFLOP/s", "GB/s", "roofline", "limit", "x dense", "max|err|", "rel err", "sets");
  nlohmann::json jv = nlohmann::json::array();
  for (const Result& r : results) {
    const nlohmann::json j = result_json(r, dev, tensor_peak);
    jv.push_back(j);
    const double s = r.timed.t.median_ms * 1e-3;
    char ratio[16] = "-";
    if (dense_ms > 0) std::snprintf(ratio, sizeof ratio, "%.3f", r.timed.t.median_ms / dense_ms);
    const std::string limit = j["roofline_limit"].get<std::string>().substr(0, 7);
    std::printf("%-8s %3lld %4lld %11s %9.4f %9.4f %8.1f %8.0f %8.1f%% %9s %7s %10.3g %9.2g %8d\n", r.v.name.c_str(),
                static_cast<long long>(r.v.b), static_cast<long long>(r.v.r), mib(r.param_bytes).c_str(),
                r.timed.t.median_ms, r.timed.t.min_ms, r.cost.flops / s / 1e12, r.cost.bytes / s / 1e9,
                j["roofline_pct"].get<double>(), limit.c_str(), ratio, r.timed.err.max_abs, r.timed.err.rel(), r.sets);
  }
  std::printf("\nplans:\n");
  for (const Result& r : results) std::printf("  %-8s %s\n", r.v.name.c_str(), r.timed.plan.c_str());
  for (const Result& r : results)
    if (!r.timed.err.finite) {
      std::printf("warning: %s produced non-finite outputs\n", r.v.name.c_str());
      bad = true;
    }

  if (args.has("json")) {
    nlohmann::json out = {{"command", "bench-layer"},
                          {"environment", environment_json()},
                          {"config",
                           {{"in", p.in},
                            {"out", p.out},
                            {"tokens", p.tokens},
                            {"dtype", dtype_name(p.dtype)},
                            {"act", act_name(p.act)},
                            {"bias", p.bias},
                            {"samples", samples},
                            {"warmup", warmup},
                            {"stage1", blr_stage_path_name(opt.stage1)},
                            {"stage2", blr_stage_path_name(opt.stage2)},
                            {"pdl", opt.pdl},
                            {"pdl_first", opt.pdl_first},
                            {"peak_tflops_used", dev.bf16_tflops},
                            {"peak_gbs_used", dev.memory_bandwidth_gbs},
                            {"l2_bytes", dev.l2_bytes},
                            {"note", "median of CUDA-graph replays; each replay rotates over independent "
                                     "(x, weights, y) sets totalling more than 2x L2, so data comes from HBM"}}},
                          {"variants", jv}};
    if (!probe_json.is_null()) out["probe"] = probe_json;
    if (dense_ms > 0) {
      nlohmann::json ratios;
      for (const Result& r : results) ratios[r.v.name] = r.timed.t.median_ms / dense_ms;
      out["ratio_vs_dense"] = ratios;
    }
    std::ofstream f(args.get("json"));
    if (!f) throw InputError(cat("--json ", args.get("json"), ": cannot open for writing"));
    f << out.dump(2) << "\n";
    if (!f) throw Error(cat("--json ", args.get("json"), ": write failed"));
  }
  return bad ? 1 : 0;
}

}  // namespace

BLR_REGISTER_COMMAND(bench_layer, "bench-layer",
                     "time one linear layer: dense vs low-rank vs Monarch vs BLAST on the GPU", run_bench_layer);

}  // namespace blr::cli
