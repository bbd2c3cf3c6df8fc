// blr bench-layer: times one linear layer (dense, low-rank, Monarch, BLAST) on the GPU, all variants in
// one run so their ratios come from the same card, clocks and build.
//
// Each variant is timed as the median over >= 100 replays of a CUDA graph (so launch overhead is not
// counted), after warm-up. The graph calls the layer once per "set" — an independent copy of x, the
// weights and y — rotating over enough sets that together they exceed twice the L2 cache; weights and
// activations therefore stream from HBM as they do in a full model, rather than sitting in L2. Reported:
// ms (median, min, max), TFLOP/s, GB/s over the minimum bytes (weights + x + y, read/written once),
// % of the roofline bound from the card's peak figures (printed), parameter bytes, and the max error
// against the fp32 CPU reference on a sample of rows (computed from the same rounded inputs/weights).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "app/cli/args.h"
#include "app/cli/bench_util.h"
#include "app/cli/command.h"
#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_blr.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/arena.h"
#include "engine/core/cuda_check.h"
#include "engine/core/device.h"
#include "engine/core/error.h"

namespace blr::cli {
namespace {

enum class Kind { Dense, LowRank, Monarch, Blast };

struct VariantSpec {
  Kind kind = Kind::Dense;
  std::string name;
  int64_t b = 1, r = 0;
};

// One layer's tensors (host f32 holding values already rounded to the benchmark dtype, or device copies).
struct LayerTensors {
  Tensor w;
  LowRankWeights lr;
  MonarchWeights mo;
  BlastWeights bl;
  Tensor bias;
};

struct Problem {
  int64_t in = 0, out = 0, tokens = 0;
  DType dtype = DType::BF16;
  Act act = Act::None;
  bool bias = true;
};

Kind parse_kind(const std::string& s) {
  if (s == "dense") return Kind::Dense;
  if (s == "lowrank") return Kind::LowRank;
  if (s == "monarch") return Kind::Monarch;
  if (s == "blast") return Kind::Blast;
  throw InputError(cat("unknown variant '", s, "' (expected dense, lowrank, monarch or blast)"));
}

void validate(const VariantSpec& v, const Problem& p) {
  const int64_t lim = std::min(p.in, p.out);
  if (v.kind == Kind::Dense) return;
  if (v.r < 1) throw InputError(cat(v.name, ": rank r=", v.r, " must be at least 1"));
  if (v.kind == Kind::LowRank) {
    if (v.r > lim) throw InputError(cat("lowrank: r=", v.r, " is too large (at most min(in, out) = ", lim, ")"));
    return;
  }
  if (v.b < 1) throw InputError(cat(v.name, ": b=", v.b, " must be at least 1"));
  if (p.in % v.b != 0) throw InputError(cat(v.name, ": b=", v.b, " does not divide --in ", p.in));
  if (p.out % v.b != 0) throw InputError(cat(v.name, ": b=", v.b, " does not divide --out ", p.out));
  if (v.kind == Kind::Monarch) {
    if (v.r % v.b != 0) throw InputError(cat("monarch: r=", v.r, " must be a multiple of b=", v.b));
    const int64_t blim = std::min(p.in, p.out) / v.b;
    if (v.r / v.b > blim)
      throw InputError(cat("monarch: r=", v.r, " is too large (r/b at most min(in, out)/b = ", blim, ")"));
    return;
  }
  if (v.r > lim) throw InputError(cat("blast: r=", v.r, " is too large (at most min(in, out) = ", lim, ")"));
}

// FLOPs per call (REFERENCE.md §1): dense 2nio, low-rank and Monarch 2nr(i+o), BLAST 2nr(i+o+b²).
double flops(const VariantSpec& v, const Problem& p) {
  const double n = static_cast<double>(p.tokens), i = static_cast<double>(p.in), o = static_cast<double>(p.out);
  switch (v.kind) {
    case Kind::Dense: return 2 * n * i * o;
    case Kind::LowRank:
    case Kind::Monarch: return 2 * n * v.r * (i + o);
    case Kind::Blast: return 2 * n * v.r * (i + o + static_cast<double>(v.b) * v.b);
  }
  return 0;
}

int64_t parameter_count(const VariantSpec& v, const Problem& p) {
  const int64_t bias = p.bias ? p.out : 0;
  switch (v.kind) {
    case Kind::Dense: return p.in * p.out + bias;
    case Kind::LowRank:
    case Kind::Monarch: return v.r * (p.in + p.out) + bias;
    case Kind::Blast: return v.r * (p.in + p.out + v.b * v.b) + bias;
  }
  return 0;
}

Tensor random_rounded(const Shape& s, std::mt19937_64& rng, double stddev, DType dt) {
  Tensor t = Tensor::zeros(s);
  std::normal_distribution<float> dist(0.0f, static_cast<float>(stddev));
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return dt == DType::F32 ? t : t.to_dtype(dt).to_dtype(DType::F32);
}

// Factors scaled so every stage keeps unit-variance activations (realistic magnitudes for the error check).
LayerTensors make_host_layer(const VariantSpec& v, const Problem& p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  LayerTensors L;
  const int64_t b = v.b, r = v.r, in = p.in, out = p.out;
  switch (v.kind) {
    case Kind::Dense: L.w = random_rounded({out, in}, rng, 1.0 / std::sqrt(in), p.dtype); break;
    case Kind::LowRank:
      L.lr.A = random_rounded({r, in}, rng, 1.0 / std::sqrt(in), p.dtype);
      L.lr.B = random_rounded({out, r}, rng, 1.0 / std::sqrt(r), p.dtype);
      break;
    case Kind::Monarch:
      L.mo.blocks = b;
      L.mo.R = random_rounded({b, r, in / b}, rng, 1.0 / std::sqrt(in / b), p.dtype);
      L.mo.L = random_rounded({b, out / b, r}, rng, 1.0 / std::sqrt(r), p.dtype);
      break;
    case Kind::Blast:
      L.bl.blocks = b;
      L.bl.U = random_rounded({b, out / b, r}, rng, 1.0 / std::sqrt(r), p.dtype);
      L.bl.S = random_rounded({b, b, r}, rng, 1.0 / std::sqrt(b), p.dtype);
      L.bl.V = random_rounded({b, r, in / b}, rng, 1.0 / std::sqrt(in / b), p.dtype);
      break;
  }
  if (p.bias) L.bias = random_rounded({out}, rng, 0.5, p.dtype);
  return L;
}

Tensor upload(const Tensor& t, DType dt, Arena& arena, const char* what) {
  if (!t.defined()) return Tensor();
  return t.to_dtype(dt).to_device(arena, MemCategory::Weights, what);
}

LayerTensors upload_layer(const LayerTensors& h, DType dt, Arena& arena) {
  LayerTensors d;
  d.w = upload(h.w, dt, arena, "bench W");
  d.lr = {upload(h.lr.A, dt, arena, "bench A"), upload(h.lr.B, dt, arena, "bench B")};
  d.mo = {h.mo.blocks, upload(h.mo.R, dt, arena, "bench R"), upload(h.mo.L, dt, arena, "bench L")};
  d.bl = {h.bl.blocks, upload(h.bl.U, dt, arena, "bench U"), upload(h.bl.S, dt, arena, "bench S"),
          upload(h.bl.V, dt, arena, "bench V")};
  d.bias = upload(h.bias, dt, arena, "bench bias");
  return d;
}

void forward(Ops& ops, Kind kind, const LayerTensors& L, const Tensor& x, Act act, Tensor& y) {
  const Tensor* bias = L.bias.defined() ? &L.bias : nullptr;
  switch (kind) {
    case Kind::Dense: ops.linear(x, L.w, bias, act, y); break;
    case Kind::LowRank: ops.lowrank_linear(x, L.lr, bias, act, y); break;
    case Kind::Monarch: ops.monarch_linear(x, L.mo, bias, act, y); break;
    case Kind::Blast: ops.blast_linear(x, L.bl, bias, act, y); break;
  }
}

struct ErrorStats {
  int64_t rows = 0;
  double max_abs = 0, max_ref = 0, cosine = 1;
  bool finite = true;
};

// Compares `rows` sampled rows of the device output y [n, out] with the CPU reference.
ErrorStats check_rows(const VariantSpec& v, const LayerTensors& host, const Tensor& x_host, const Tensor& y,
                      const Problem& p, int64_t rows) {
  ErrorStats e;
  const int64_t n = p.tokens, s = std::min(rows, n);
  if (s <= 0) return e;
  std::vector<int64_t> idx(s);
  for (int64_t k = 0; k < s; ++k) idx[k] = s == 1 ? 0 : (k * (n - 1)) / (s - 1);  // first and last included
  Tensor xs = Tensor::zeros({s, p.in}), ref = Tensor::zeros({s, p.out});
  for (int64_t k = 0; k < s; ++k)
    std::copy_n(x_host.data_as<float>() + idx[k] * p.in, p.in, xs.data_as<float>() + k * p.in);
  CpuOps cpu;
  forward(cpu, v.kind, host, xs, p.act, ref);
  const size_t es = dtype_size(p.dtype);
  std::vector<char> row(static_cast<size_t>(p.out) * es);
  double dot = 0, g2 = 0, r2 = 0;
  for (int64_t k = 0; k < s; ++k) {
    BLR_CUDA_CHECK(cudaMemcpy(row.data(), static_cast<const char*>(y.data()) + idx[k] * p.out * es, row.size(),
                              cudaMemcpyDeviceToHost));
    for (int64_t j = 0; j < p.out; ++j) {
      const double g = load_as_double(row.data(), p.dtype, static_cast<size_t>(j));
      const double r = ref.data_as<float>()[k * p.out + j];
      if (!std::isfinite(g)) e.finite = false;
      e.max_abs = std::max(e.max_abs, std::fabs(g - r));
      e.max_ref = std::max(e.max_ref, std::fabs(r));
      dot += g * r;
      g2 += g * g;
      r2 += r * r;
    }
  }
  e.rows = s;
  e.cosine = g2 > 0 && r2 > 0 ? dot / std::sqrt(g2 * r2) : 1.0;
  return e;
}

struct Result {
  VariantSpec v;
  TimingStats t;
  double flops = 0, min_bytes = 0, param_bytes = 0;
  int sets = 0;
  double set_bytes = 0;
  ErrorStats err;
  std::string plan;
};

std::string mib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / 1048576.0);
  return buf;
}

Result bench_variant(const VariantSpec& v, const Problem& p, const DeviceInfo& dev, int samples, int warmup,
                     int64_t check) {
  Result res;
  res.v = v;
  const size_t es = dtype_size(p.dtype);
  res.flops = flops(v, p);
  res.param_bytes = static_cast<double>(parameter_count(v, p)) * es;
  const double act_bytes = static_cast<double>(p.tokens) * (p.in + p.out) * es;
  res.min_bytes = res.param_bytes + act_bytes;
  res.set_bytes = res.min_bytes;
  // Enough sets that together they exceed 2 × L2, and at least two so consecutive calls never share one.
  const double l2 = static_cast<double>(std::max<size_t>(dev.l2_bytes, 1));
  res.sets = static_cast<int>(std::clamp(std::floor(2.0 * l2 / res.set_bytes) + 1.0, 2.0, 512.0));

  const LayerTensors host = make_host_layer(v, p, 1234);
  std::mt19937_64 rng(99);
  const Tensor x_host = random_rounded({p.tokens, p.in}, rng, 1.0, p.dtype);
  Arena arena(Device::CUDA, "bench-layer " + v.name);
  struct Set {
    LayerTensors layer;
    Tensor x, y;
  };
  std::vector<Set> sets(static_cast<size_t>(res.sets));
  const Tensor x_conv = x_host.to_dtype(p.dtype);
  for (Set& s : sets) {
    s.layer = upload_layer(host, p.dtype, arena);
    s.x = x_conv.to_device(arena, MemCategory::Activations, "bench x");
    s.y = Tensor::empty({p.tokens, p.out}, p.dtype, arena, MemCategory::Activations, "bench y");
  }
  CudaOps ops(arena);

  forward(ops, v.kind, sets[0].layer, sets[0].x, p.act, sets[0].y);  // eager: sizes scratch, picks plans
  ops.synchronize();
  res.plan = last_linear_plan();
  res.err = check_rows(v, host, x_host, sets[0].y, p, check);

  res.t = time_graph(
      ops.stream(), [&](int rep) { forward(ops, v.kind, sets[rep].layer, sets[rep].x, p.act, sets[rep].y); },
      res.sets, samples, warmup);
  return res;
}

nlohmann::json result_json(const Result& r, const DeviceInfo& dev, bool tensor_peak) {
  const double s = r.t.median_ms * 1e-3;
  nlohmann::json j = {{"variant", r.v.name},
                      {"b", r.v.b},
                      {"r", r.v.r},
                      {"timing", r.t.to_json()},
                      {"flops", r.flops},
                      {"tflops", r.flops / s / 1e12},
                      {"min_bytes", r.min_bytes},
                      {"gbs", r.min_bytes / s / 1e9},
                      {"parameter_bytes", r.param_bytes},
                      {"rotating_sets", r.sets},
                      {"set_bytes", r.set_bytes},
                      {"plan", r.plan},
                      {"check_rows", r.err.rows},
                      {"max_abs_error", r.err.max_abs},
                      {"max_rel_error", r.err.max_ref > 0 ? r.err.max_abs / r.err.max_ref : 0.0},
                      {"cosine", r.err.cosine},
                      {"finite", r.err.finite}};
  const double t_mem = r.min_bytes / (dev.memory_bandwidth_gbs * 1e9);
  if (tensor_peak) {
    const double t_flop = r.flops / (dev.bf16_tflops * 1e12);
    j["roofline_bound_ms"] = std::max(t_flop, t_mem) * 1e3;
    j["roofline_limit"] = t_flop >= t_mem ? "compute" : "memory";
    j["roofline_pct"] = 100.0 * std::max(t_flop, t_mem) / s;
  } else {
    j["roofline_bound_ms"] = t_mem * 1e3;
    j["roofline_limit"] = "memory (no f32 compute peak known)";
    j["roofline_pct"] = 100.0 * t_mem / s;
  }
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
      .flag("no-pdl", "launch stage 2 without programmatic dependent launch")
      .option("json", "FILE", "also write the results as JSON");
  if (!args.parse(argv)) return 0;

  Problem p;
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
  const int64_t check = args.get_int64("check-rows");

  std::vector<VariantSpec> variants;
  std::vector<std::string> notes;
  std::stringstream list(args.get("variants"));
  for (std::string name; std::getline(list, name, ',');) {
    if (name.empty()) continue;
    VariantSpec v;
    v.kind = parse_kind(name);
    v.name = name;
    const std::string prefix = name + "-";
    if (v.kind == Kind::Monarch || v.kind == Kind::Blast)
      v.b = args.has(prefix + "b") ? args.get_int64(prefix + "b") : args.get_int64("b");
    if (v.kind != Kind::Dense) v.r = args.has(prefix + "r") ? args.get_int64(prefix + "r") : args.get_int64("r");
    // Monarch needs r % b == 0; when the shared --r does not fit its b, take the largest multiple below it
    // (so "--b 9 --r 256" benchmarks Monarch at r = 252) and say so. An explicit --monarch-r is taken as is.
    if (v.kind == Kind::Monarch && !args.has("monarch-r") && v.b >= 1 && v.r % v.b != 0 && v.r >= v.b) {
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
  if (args.has("no-pdl")) opt.pdl = false;

  const DeviceInfo dev = query_device(0);
  if (!dev.available) throw InputError(dev.reason.empty() ? std::string("no CUDA device") : dev.reason);
  ScopedBlrKernelOptions scoped(opt);
  const bool tensor_peak = p.dtype != DType::F32;

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
  std::printf("stage paths: stage1=%s stage2=%s pdl=%s\n\n", blr_stage_path_name(opt.stage1),
              blr_stage_path_name(opt.stage2), opt.pdl ? "on" : "off");

  std::vector<Result> results;
  for (const VariantSpec& v : variants) results.push_back(bench_variant(v, p, dev, samples, warmup, check));

  const Result* dense = nullptr;
  for (const Result& r : results)
    if (r.v.kind == Kind::Dense) dense = &r;
  std::printf("%-8s %3s %4s %11s %9s %9s %8s %8s %9s %9s %7s %10s %9s %8s\n", "variant", "b", "r", "params", "ms", "min ms",
              "TFLOP/s", "GB/s", "roofline", "limit", "x dense", "max|err|", "rel err", "sets");
  nlohmann::json jv = nlohmann::json::array();
  for (const Result& r : results) {
    const nlohmann::json j = result_json(r, dev, tensor_peak);
    jv.push_back(j);
    const double s = r.t.median_ms * 1e-3;
    char ratio[16] = "-";
    if (dense) std::snprintf(ratio, sizeof ratio, "%.3f", r.t.median_ms / dense->t.median_ms);
    const std::string limit = j["roofline_limit"].get<std::string>().substr(0, 7);
    std::printf("%-8s %3lld %4lld %11s %9.4f %9.4f %8.1f %8.0f %8.1f%% %9s %7s %10.3g %9.2g %8d\n", r.v.name.c_str(),
                static_cast<long long>(r.v.b), static_cast<long long>(r.v.r), mib(r.param_bytes).c_str(),
                r.t.median_ms, r.t.min_ms, r.flops / s / 1e12, r.min_bytes / s / 1e9, j["roofline_pct"].get<double>(),
                limit.c_str(), ratio, r.err.max_abs, r.err.max_ref > 0 ? r.err.max_abs / r.err.max_ref : 0.0, r.sets);
  }
  std::printf("\nplans:\n");
  for (const Result& r : results) std::printf("  %-8s %s\n", r.v.name.c_str(), r.plan.c_str());
  bool bad = false;
  for (const Result& r : results)
    if (!r.err.finite) {
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
                            {"peak_tflops_used", dev.bf16_tflops},
                            {"peak_gbs_used", dev.memory_bandwidth_gbs},
                            {"l2_bytes", dev.l2_bytes},
                            {"note", "median of CUDA-graph replays; each replay rotates over independent "
                                     "(x, weights, y) sets totalling more than 2x L2, so data comes from HBM"}}},
                          {"variants", jv}};
    if (dense) {
      nlohmann::json ratios;
      for (const Result& r : results) ratios[r.v.name] = r.t.median_ms / dense->t.median_ms;
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
