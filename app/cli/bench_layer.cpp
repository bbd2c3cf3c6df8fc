// LayerBench: one variant of `blr bench-layer` set up on the GPU once, then timed under any kernel options.
//
// Timing: the graph calls the layer once per "set" — an independent copy of x, the weights and y — rotating
// over enough sets that together they exceed twice the L2 cache, so weights and activations stream from HBM
// as they do in a full model. Each sample is one replay divided by the number of calls; the median is kept.
// The error check compares a sample of rows of the first set's output with the fp32 CPU reference computed
// from the same rounded inputs and weights (computed once, reused for every configuration).
#include "app/cli/bench_layer.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/core/cuda_check.h"
#include "engine/core/error.h"

namespace blr::cli {
namespace {

Tensor random_rounded(const Shape& s, std::mt19937_64& rng, double stddev, DType dt) {
  Tensor t = Tensor::zeros(s);
  std::normal_distribution<float> dist(0.0f, static_cast<float>(stddev));
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return dt == DType::F32 ? t : t.to_dtype(dt).to_dtype(DType::F32);
}

// Factors scaled so every stage keeps unit-variance activations (realistic magnitudes for the error check).
LayerTensors make_host_layer(const VariantSpec& v, const LayerProblem& p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  LayerTensors L;
  const int64_t b = v.b, r = v.r, in = p.in, out = p.out;
  switch (v.kind) {
    case LayerKind::Dense: L.w = random_rounded({out, in}, rng, 1.0 / std::sqrt(in), p.dtype); break;
    case LayerKind::LowRank:
      L.lr.A = random_rounded({r, in}, rng, 1.0 / std::sqrt(in), p.dtype);
      L.lr.B = random_rounded({out, r}, rng, 1.0 / std::sqrt(r), p.dtype);
      break;
    case LayerKind::Monarch:
      L.mo.blocks = b;
      L.mo.R = random_rounded({b, r, in / b}, rng, 1.0 / std::sqrt(in / b), p.dtype);
      L.mo.L = random_rounded({b, out / b, r}, rng, 1.0 / std::sqrt(r), p.dtype);
      break;
    case LayerKind::Blast:
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

void run_layer(Ops& ops, LayerKind kind, const LayerTensors& L, const Tensor& x, Act act, Tensor& y) {
  const Tensor* bias = L.bias.defined() ? &L.bias : nullptr;
  switch (kind) {
    case LayerKind::Dense: ops.linear(x, L.w, bias, act, y); break;
    case LayerKind::LowRank: ops.lowrank_linear(x, L.lr, bias, act, y); break;
    case LayerKind::Monarch: ops.monarch_linear(x, L.mo, bias, act, y); break;
    case LayerKind::Blast: ops.blast_linear(x, L.bl, bias, act, y); break;
  }
}

// A fault that poisons the CUDA context (illegal address, ...) cannot be survived by skipping a config.
bool context_poisoned() {
  const cudaError_t e = cudaDeviceSynchronize();
  if (e == cudaSuccess) return false;
  cudaGetLastError();
  return cudaDeviceSynchronize() != cudaSuccess;
}

}  // namespace

Cost layer_cost(const VariantSpec& v, const LayerProblem& p) {
  const double n = static_cast<double>(p.tokens), i = static_cast<double>(p.in), o = static_cast<double>(p.out);
  const double es = static_cast<double>(dtype_size(p.dtype));
  Cost c;
  switch (v.kind) {
    case LayerKind::Dense: c.flops = 2 * n * i * o; break;
    case LayerKind::LowRank:
    case LayerKind::Monarch: c.flops = 2 * n * v.r * (i + o); break;
    case LayerKind::Blast: c.flops = 2 * n * v.r * (i + o + static_cast<double>(v.b) * v.b); break;
  }
  c.bytes = (static_cast<double>(parameter_count(v, p)) + n * (i + o)) * es;
  return c;
}

// Stage 1 reads x and its factor(s) and writes the intermediate [n, b, r] (t = [n, r] for low-rank); stage 2
// reads the intermediate and its factor (and bias) and writes y.
Cost stage_cost(const VariantSpec& v, const LayerProblem& p, int stage) {
  const double n = static_cast<double>(p.tokens), i = static_cast<double>(p.in), o = static_cast<double>(p.out);
  const double r = static_cast<double>(v.r), b = static_cast<double>(v.b);
  const double es = static_cast<double>(dtype_size(p.dtype));
  const double mid = v.kind == LayerKind::LowRank ? n * r : n * b * r;
  Cost c;
  if (stage == 1) {
    c.flops = 2 * n * i * r + (v.kind == LayerKind::Blast ? 2 * n * b * b * r : 0.0);
    c.bytes = (n * i + r * i + (v.kind == LayerKind::Blast ? b * b * r : 0.0) + mid) * es;
  } else {
    c.flops = 2 * n * r * o;
    c.bytes = (mid + o * r + (p.bias ? o : 0.0) + n * o) * es;
  }
  return c;
}

int64_t parameter_count(const VariantSpec& v, const LayerProblem& p) {
  const int64_t bias = p.bias ? p.out : 0;
  switch (v.kind) {
    case LayerKind::Dense: return p.in * p.out + bias;
    case LayerKind::LowRank:
    case LayerKind::Monarch: return v.r * (p.in + p.out) + bias;
    case LayerKind::Blast: return v.r * (p.in + p.out + v.b * v.b) + bias;
  }
  return 0;
}

LayerBench::LayerBench(const VariantSpec& v, const LayerProblem& p, const DeviceInfo& dev, int64_t check_rows)
    : v_(v), p_(p) {
  const double es = static_cast<double>(dtype_size(p.dtype));
  set_bytes_ = static_cast<double>(parameter_count(v, p)) * es + static_cast<double>(p.tokens) * (p.in + p.out) * es;
  // Enough sets that together they exceed 2 × L2, and at least two so consecutive calls never share one.
  const double l2 = static_cast<double>(std::max<size_t>(dev.l2_bytes, 1));
  const int n_sets = static_cast<int>(std::clamp(std::floor(2.0 * l2 / set_bytes_) + 1.0, 2.0, 512.0));

  host_ = make_host_layer(v, p, 1234);
  std::mt19937_64 rng(99);
  const Tensor x_host = random_rounded({p.tokens, p.in}, rng, 1.0, p.dtype);
  arena_ = std::make_unique<Arena>(Device::CUDA, "bench-layer " + v.name);
  sets_.resize(static_cast<size_t>(n_sets));
  const Tensor x_conv = x_host.to_dtype(p.dtype);
  for (Set& s : sets_) {
    s.layer = upload_layer(host_, p.dtype, *arena_);
    s.x = x_conv.to_device(*arena_, MemCategory::Activations, "bench x");
    s.y = Tensor::empty({p.tokens, p.out}, p.dtype, *arena_, MemCategory::Activations, "bench y");
  }
  ops_ = std::make_unique<CudaOps>(*arena_);

  // CPU reference of a sample of rows (first and last included).
  const int64_t n = p.tokens, s = std::min(check_rows, n);
  for (int64_t k = 0; k < s; ++k) sample_rows_.push_back(s == 1 ? 0 : (k * (n - 1)) / (s - 1));
  if (s > 0) {
    Tensor xs = Tensor::zeros({s, p.in});
    reference_ = Tensor::zeros({s, p.out});
    for (int64_t k = 0; k < s; ++k)
      std::copy_n(x_host.data_as<float>() + sample_rows_[k] * p.in, p.in, xs.data_as<float>() + k * p.in);
    CpuOps cpu;
    run_layer(cpu, v.kind, host_, xs, p.act, reference_);
  }
}

LayerBench::~LayerBench() {
  if (ops_) cudaStreamSynchronize(ops_->stream());
  ops_.reset();
  sets_.clear();
}

void LayerBench::forward(Set& s) { run_layer(*ops_, v_.kind, s.layer, s.x, p_.act, s.y); }

ErrorStats LayerBench::check_sample() {
  ErrorStats e;
  const int64_t s = static_cast<int64_t>(sample_rows_.size());
  if (s == 0) return e;
  const size_t es = dtype_size(p_.dtype);
  std::vector<char> row(static_cast<size_t>(p_.out) * es);
  double dot = 0, g2 = 0, r2 = 0;
  for (int64_t k = 0; k < s; ++k) {
    BLR_CUDA_CHECK(cudaMemcpy(row.data(), static_cast<const char*>(sets_[0].y.data()) + sample_rows_[k] * p_.out * es,
                              row.size(), cudaMemcpyDeviceToHost));
    for (int64_t j = 0; j < p_.out; ++j) {
      const double g = load_as_double(row.data(), p_.dtype, static_cast<size_t>(j));
      const double r = reference_.data_as<float>()[k * p_.out + j];
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

Timed LayerBench::time(const BlrKernelOptions& o, int samples, int warmup, bool check,
                       const std::function<std::string(const std::string&)>& skip) {
  Timed out;
  ScopedBlrKernelOptions scoped(o);
  try {
    if (check) {  // the output of a known state: clear y first so a stage that writes nothing shows
      BLR_CUDA_CHECK(cudaMemsetAsync(sets_[0].y.data(), 0xff, sets_[0].y.nbytes(), ops_->stream()));
    }
    forward(sets_[0]);  // eager: sizes scratch, picks plans
    ops_->synchronize();
    out.plan = last_linear_plan();
    if (check) out.err = check_sample();
    if (skip) {
      const std::string why = skip(out.plan);
      if (!why.empty()) {
        out.error = "skipped: " + why;
        return out;
      }
    }
    const int n_sets = sets();
    out.t = time_graph(
        ops_->stream(), [&](int rep) { forward(sets_[static_cast<size_t>(rep)]); }, n_sets, samples, warmup);
  } catch (const std::exception& e) {
    if (context_poisoned()) throw;
    out.error = e.what();
    if (out.plan.empty()) out.plan = last_linear_plan();
  }
  return out;
}

}  // namespace blr::cli
