// CudaOps: the block-low-rank layers, each as two GPU stages with nothing in between:
//   low-rank  t = x·Aᵀ                      -> y = act(t·Bᵀ + bias)
//   Monarch   u = perm(x_j·R_jᵀ) (permutation folded into stage 1's stores)
//                                            -> y_k = act(u_k·L_kᵀ + bias_k)   (batched over k)
//   BLAST     z_k = Σ_j s_kj ⊙ (x_j·V_jᵀ)    (S mix fused into stage 1, y_j never leaves the chip)
//                                            -> y_k = act(z_k·U_kᵀ + bias_k)   (batched over k)
// The intermediate (t, u or z: [tokens, b, r] in the storage dtype) lives in CudaOps scratch slot 0.
// On sm_90 the second stage is launched with programmatic dependent launch, so it starts while the first
// finishes and prefetches its weights before waiting. Which kernel runs each stage is decided per call
// (see BlrStagePath in cuda_blr.h) and recorded in last_linear_plan().
// (A single-launch variant with both stages in one kernel was measured 2-4x slower than the two kernels at
// every size on the H200 and removed; docs/perf-notes/blr-kernels.md §8-9.)
#include "engine/backend/cuda/cuda_blr.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>

#include "engine/backend/cuda/cuda_linear_util.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/error.h"
#include "kernels/blr_blast.h"
#include "kernels/blr_gemm.h"
#include "kernels/gemm.h"

namespace blr {

using namespace cuda_detail;

const char* blr_stage_path_name(BlrStagePath p) {
  switch (p) {
    case BlrStagePath::Auto: return "auto";
    case BlrStagePath::TensorCore: return "tc";
    case BlrStagePath::Simt: return "simt";
    case BlrStagePath::CublasLt: return "lt";
  }
  return "?";
}

BlrStagePath parse_blr_stage_path(const std::string& s) {
  if (s == "auto") return BlrStagePath::Auto;
  if (s == "tc" || s == "tensorcore") return BlrStagePath::TensorCore;
  if (s == "simt") return BlrStagePath::Simt;
  if (s == "lt" || s == "cublaslt") return BlrStagePath::CublasLt;
  throw InputError(cat("unknown stage path '", s, "' (expected auto, tc, simt or lt)"));
}

static BlrKernelOptions options_from_env() {
  BlrKernelOptions o;
  if (const char* v = std::getenv("BLR_STAGE1")) o.stage1 = parse_blr_stage_path(v);
  if (const char* v = std::getenv("BLR_STAGE2")) o.stage2 = parse_blr_stage_path(v);
  if (const char* v = std::getenv("BLR_PDL")) o.pdl = std::string(v) != "0";
  if (const char* v = std::getenv("BLR_TILE1")) o.tile1 = std::atoi(v);
  if (const char* v = std::getenv("BLR_TILE2")) o.tile2 = std::atoi(v);
  if (const char* v = std::getenv("BLR_LT_MIN_MACS")) o.lt_min_macs = std::atoll(v);
  if (const char* v = std::getenv("BLR_PDL_FIRST")) o.pdl_first = std::string(v) != "0";
  if (const char* v = std::getenv("BLR_LT_ALGO")) o.lt_algo = std::atoi(v);
  return o;
}

BlrKernelOptions& blr_kernel_options() {
  static BlrKernelOptions options = options_from_env();
  return options;
}

namespace {
thread_local std::string t_last_plan;
}
const std::string& last_linear_plan() { return t_last_plan; }
void cuda_detail::set_last_linear_plan(std::string plan) { t_last_plan = std::move(plan); }

namespace {

enum class Impl { Tc, Simt, Lt };

void check_launch(cudaError_t e, const char* op, const char* stage) {
  if (e != cudaSuccess) throw Error(cat("cuda ", op, ": ", stage, " failed to launch: ", cudaGetErrorString(e)));
}

bool is_sm90() { return kern::device_caps().cc >= 90; }

// Who runs a stage that is a plain batched GEMM (both low-rank stages, stage 2 of Monarch and BLAST).
// first_stage: low-rank's t = x·Aᵀ, whose output needs no epilogue at all.
Impl gemm_stage_impl(BlrStagePath forced, const kern::BlockGemmArgs& g, bool first_stage = false) {
  const bool tc = kern::block_gemm_tc_ok(g);
  switch (forced) {
    case BlrStagePath::CublasLt: return Impl::Lt;
    case BlrStagePath::Simt: return Impl::Simt;
    case BlrStagePath::TensorCore: return tc ? Impl::Tc : Impl::Simt;
    case BlrStagePath::Auto: break;
  }
  if (!tc) return Impl::Lt;  // f32 storage or unaligned rows: cuBLASLt beats the SIMT fallback
  // Low-rank stage 1 on the H200: cuBLASLt 11.5 µs for the whole DiT fc1 layer at 512 tokens vs 22.3 with
  // our kernel, and 18 vs 52 µs for the stage alone at 16384 (run 5). Nothing to fuse there, so no reason
  // to prefer ours on sm_90.
  if (first_stage && is_sm90()) return Impl::Lt;
  const double macs = static_cast<double>(g.M) * g.N * g.K * g.batch;
  if (is_sm90() && kern::lt_fuses_act(g.act) && macs >= static_cast<double>(blr_kernel_options().lt_min_macs))
    return Impl::Lt;
  return Impl::Tc;
}

// Who runs the first stage of Monarch/BLAST (our kernels only: they fuse the permutation / the S mix).
kern::BlrPath first_stage_path(BlrStagePath forced) {
  return forced == BlrStagePath::Simt ? kern::BlrPath::Simt : kern::BlrPath::Auto;
}

kern::GemmArgs to_lt(const kern::BlockGemmArgs& g, int algo_index) {
  kern::GemmArgs a;
  a.dt = g.dt;
  a.m = g.M;
  a.n = g.N;
  a.k = g.K;
  a.batch = g.batch;
  a.a = g.A;
  a.lda = g.lda;
  a.a_batch = g.a_batch;
  a.b = g.B;
  a.ldb = g.ldb;
  a.b_batch = g.b_batch;
  a.b_nk = true;
  a.c = g.C;
  a.ldc = g.ldc;
  a.c_batch = g.c_batch;
  a.bias = g.bias;
  a.bias_batch = g.bias_batch;
  a.act = g.act;
  a.algo_index = algo_index;
  return a;
}

// Enqueues one GEMM stage (unless `enqueue` is false: benchmarks timing the other stage alone) and returns
// what ran. wait_first: see kern::BlrLaunch (the first kernel of a layer under PDL).
std::string run_gemm_stage(CudaOps& ops, Impl impl, const kern::BlockGemmArgs& g, bool pdl, bool wait_first, int tile,
                           const char* op, const char* stage, bool enqueue) {
  if (impl == Impl::Lt) {
    std::string algo = "not run";
    if (enqueue) run_lt(ops, to_lt(g, blr_kernel_options().lt_algo), op, &algo);
    return cat("cublasLt", g.batch > 1 ? cat(" batch ", g.batch) : std::string(), " [", algo, "]");
  }
  kern::BlrLaunch l;
  l.path = impl == Impl::Simt ? kern::BlrPath::Simt : kern::BlrPath::TensorCore;
  l.pdl = pdl;
  l.wait_first = wait_first;
  l.tile = tile;
  if (enqueue) check_launch(kern::block_gemm(g, l, ops.stream()), op, stage);
  return kern::block_gemm_plan(g, l);
}

// Stage 2 of Monarch and BLAST: y[:, k·ob : (k+1)·ob] = act(mid_k · F_kᵀ + bias_k), mid = [n, b, r].
kern::BlockGemmArgs second_stage(kern::DT dt, const LayerIo& io, const void* mid, const Tensor& factor, int64_t b,
                                 int64_t r, int64_t ob, const Tensor* bias, Act act) {
  kern::BlockGemmArgs g;
  g.dt = dt;
  g.M = io.x.rows;
  g.N = ob;
  g.K = r;
  g.batch = static_cast<int>(b);
  g.A = mid;
  g.lda = b * r;
  g.a_batch = r;
  g.B = factor.data();
  g.ldb = r;
  g.b_batch = ob * r;
  g.C = io.y.data;
  g.ldc = io.y.ld;
  g.c_batch = ob;
  g.bias = bias ? bias->data() : nullptr;
  g.bias_batch = bias ? ob : 0;
  g.act = kernel_act(act);
  return g;
}

void* mid_buffer(CudaOps& ops, int64_t n, int64_t width, DType dt) {
  const size_t bytes = static_cast<size_t>(n) * static_cast<size_t>(width) * dtype_size(dt);
  return ops.scratch(std::max<size_t>(bytes, 256), 0);
}

}  // namespace

void CudaOps::lowrank_linear(const Tensor& x, const LowRankWeights& w, const Tensor* bias, Act act, Tensor& y) {
  const char* op = "lowrank_linear";
  check_factor(w.A, x.dtype(), 2, op, "A");
  check_factor(w.B, x.dtype(), 2, op, "B");
  const int64_t r = w.A.dim(0), in = w.A.dim(1), out = w.B.dim(0);
  BLR_CHECK(w.B.dim(1) == r, "cuda ", op, ": A ", w.A.describe(), " and B ", w.B.describe(), " disagree on the rank");
  const LayerIo io = check_layer_io(op, x, y, bias, in, out);
  const BlrKernelOptions& opt = blr_kernel_options();
  const kern::DT dt = kernel_dtype(x.dtype());
  if (io.x.rows == 0 || out == 0) {
    set_last_linear_plan("lowrank: empty");
    return;
  }
  void* t = mid_buffer(*this, io.x.rows, r, x.dtype());

  kern::BlockGemmArgs s1;  // t = x·Aᵀ
  s1.dt = dt;
  s1.M = io.x.rows;
  s1.N = r;
  s1.K = in;
  s1.A = io.x.data;
  s1.lda = io.x.ld;
  s1.B = w.A.data();
  s1.ldb = in;
  s1.C = t;
  s1.ldc = r;

  kern::BlockGemmArgs s2;  // y = act(t·Bᵀ + bias)
  s2.dt = dt;
  s2.M = io.x.rows;
  s2.N = out;
  s2.K = r;
  s2.A = t;
  s2.lda = r;
  s2.B = w.B.data();
  s2.ldb = r;
  s2.C = io.y.data;
  s2.ldc = io.y.ld;
  s2.bias = bias ? bias->data() : nullptr;
  s2.act = kernel_act(act);

  const Impl impl1 = gemm_stage_impl(opt.stage1, s1, true);
  const bool pdl1 = opt.pdl_first && is_sm90() && impl1 != Impl::Lt;
  const std::string plan1 =
      run_gemm_stage(*this, impl1, s1, pdl1, true, opt.tile1, op, "stage 1", opt.only_stage != 2);
  const Impl impl2 = gemm_stage_impl(opt.stage2, s2);
  const bool pdl = opt.pdl && is_sm90() && impl1 != Impl::Lt && impl2 != Impl::Lt;
  const std::string plan2 = run_gemm_stage(*this, impl2, s2, pdl, false, opt.tile2, op, "stage 2", opt.only_stage != 1);
  set_last_linear_plan(cat("lowrank r=", r, ": s1 ", plan1, " | s2 ", plan2));
}

void CudaOps::monarch_linear(const Tensor& x, const MonarchWeights& w, const Tensor* bias, Act act, Tensor& y) {
  const char* op = "monarch_linear";
  check_factor(w.R, x.dtype(), 3, op, "R");
  check_factor(w.L, x.dtype(), 3, op, "L");
  const int64_t b = w.blocks;
  BLR_CHECK(b >= 1 && b <= 65535 && w.R.dim(0) == b && w.L.dim(0) == b, "cuda ", op, ": factors R ", w.R.describe(),
            ", L ", w.L.describe(), " for ", b, " blocks");
  const int64_t r = w.R.dim(1), ib = w.R.dim(2), ob = w.L.dim(1);
  BLR_CHECK(w.L.dim(2) == r && r % b == 0, "cuda ", op, ": rank ", r, " must match L ", w.L.describe(),
            " and be a multiple of b=", b);
  const LayerIo io = check_layer_io(op, x, y, bias, ib * b, ob * b);
  const BlrKernelOptions& opt = blr_kernel_options();
  const kern::DT dt = kernel_dtype(x.dtype());
  if (io.x.rows == 0 || ob == 0) {
    set_last_linear_plan("monarch: empty");
    return;
  }
  void* u = mid_buffer(*this, io.x.rows, b * r, x.dtype());
  const int64_t g = r / b;

  // Stage 1 (batch j): t_j = x_j·R_jᵀ, group k of t_j stored at u[:, k, j·g : (j+1)·g].
  kern::BlockGemmArgs s1;
  s1.dt = dt;
  s1.M = io.x.rows;
  s1.N = r;
  s1.K = ib;
  s1.batch = static_cast<int>(b);
  s1.A = io.x.data;
  s1.lda = io.x.ld;
  s1.a_batch = ib;
  s1.B = w.R.data();
  s1.ldb = ib;
  s1.b_batch = r * ib;
  s1.C = u;
  s1.ldc = b * r;
  s1.c_batch = g;
  s1.g = g;
  s1.g_stride = r;
  const kern::BlockGemmArgs s2 = second_stage(dt, io, u, w.L, b, r, ob, bias, act);

  kern::BlrLaunch l1;
  l1.path = first_stage_path(opt.stage1);
  l1.tile = opt.tile1;
  l1.pdl = opt.pdl_first && is_sm90();
  l1.wait_first = true;
  if (opt.only_stage != 2) check_launch(kern::block_gemm(s1, l1, stream()), op, "stage 1");
  const std::string plan1 = kern::block_gemm_plan(s1, l1);

  const Impl impl2 = gemm_stage_impl(opt.stage2, s2);
  const bool pdl = opt.pdl && is_sm90() && impl2 != Impl::Lt;
  const std::string plan2 = run_gemm_stage(*this, impl2, s2, pdl, false, opt.tile2, op, "stage 2", opt.only_stage != 1);
  set_last_linear_plan(cat("monarch b=", b, " r=", r, ": s1 ", plan1, " | s2 ", plan2));
}

void CudaOps::blast_linear(const Tensor& x, const BlastWeights& w, const Tensor* bias, Act act, Tensor& y) {
  const char* op = "blast_linear";
  check_factor(w.U, x.dtype(), 3, op, "U");
  check_factor(w.S, x.dtype(), 3, op, "S");
  check_factor(w.V, x.dtype(), 3, op, "V");
  const int64_t b = w.blocks;
  BLR_CHECK(b >= 1 && b <= 65535 && w.U.dim(0) == b && w.V.dim(0) == b && w.S.dim(0) == b && w.S.dim(1) == b, "cuda ",
            op, ": factors U ", w.U.describe(), ", S ", w.S.describe(), ", V ", w.V.describe(), " for ", b, " blocks");
  const int64_t r = w.U.dim(2), ob = w.U.dim(1), ib = w.V.dim(2);
  BLR_CHECK(w.V.dim(1) == r && w.S.dim(2) == r, "cuda ", op, ": factors disagree on the rank: U ", w.U.describe(),
            ", S ", w.S.describe(), ", V ", w.V.describe());
  const LayerIo io = check_layer_io(op, x, y, bias, ib * b, ob * b);
  const BlrKernelOptions& opt = blr_kernel_options();
  const kern::DT dt = kernel_dtype(x.dtype());
  if (io.x.rows == 0 || ob == 0) {
    set_last_linear_plan("blast: empty");
    return;
  }
  void* z = mid_buffer(*this, io.x.rows, b * r, x.dtype());

  kern::BlastStage1Args s1;  // z_k = Σ_j s_kj ⊙ (x_j·V_jᵀ)
  s1.dt = dt;
  s1.M = io.x.rows;
  s1.b = static_cast<int>(b);
  s1.r = r;
  s1.ib = ib;
  s1.x = io.x.data;
  s1.ldx = io.x.ld;
  s1.V = w.V.data();
  s1.S = w.S.data();
  s1.z = z;
  const kern::BlockGemmArgs s2 = second_stage(dt, io, z, w.U, b, r, ob, bias, act);

  kern::BlrLaunch l1;
  l1.path = first_stage_path(opt.stage1);
  l1.tile = opt.tile1;
  l1.pdl = opt.pdl_first && is_sm90();
  l1.wait_first = true;
  if (opt.only_stage != 2) {
    const cudaError_t e1 = kern::blast_stage1(s1, l1, stream());
    if (e1 == cudaErrorInvalidConfiguration)
      throw Error(cat("cuda ", op, ": b=", b, " needs more shared memory than the device has for the S mixing"));
    check_launch(e1, op, "stage 1");
  }
  const std::string plan1 = kern::blast_stage1_plan(s1, l1);

  const Impl impl2 = gemm_stage_impl(opt.stage2, s2);
  const bool pdl = opt.pdl && is_sm90() && impl2 != Impl::Lt;
  const std::string plan2 = run_gemm_stage(*this, impl2, s2, pdl, false, opt.tile2, op, "stage 2", opt.only_stage != 1);
  set_last_linear_plan(cat("blast b=", b, " r=", r, ": s1 ", plan1, " | s2 ", plan2));
}

BlrTileCatalog blr_tile_catalog() {
  BlrTileCatalog c;
  c.blast_stage1_names = kern::blast_stage1_tile_names();
  c.gemm_names = kern::block_gemm_tile_names();
  c.blast_stage1 = kern::blast_stage1_tile_count();
  c.gemm = kern::block_gemm_tile_count();
  return c;
}

void blr_launch_probe(CudaOps& ops, int ctas, bool pdl) {
  check_launch(kern::launch_probe(ctas, 128, pdl && is_sm90(), ops.stream()), "probe", "empty kernel");
}

}  // namespace blr
