// cuBLASLt wrapper (see gemm.h). Row-major problems are handed to column-major cuBLASLt as their
// transpose: C = A·op(B) row-major is Cᵀ = op(B)ᵀ·Aᵀ column-major, so cuBLASLt's "A" is our B (transposed
// when B is an [n, k] nn.Linear weight), its "B" is our A, and the bias runs along cuBLASLt's rows = our
// columns, which is what its bias epilogue expects. Strided batches (including interleaved outputs such as
// the column blocks of a BLR layer's y) are plain strided-batch layouts.
#include <cublasLt.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "kernels/common.cuh"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"

namespace blr::kern {

namespace {

// cuBLASLt's GELU epilogue is the tanh approximation (as PyTorch's fused addmm+gelu assumes); the
// parity test "DenseF32GeluTanhMatchesTanhFormula" pins this down on the device.
constexpr bool kLtGeluIsTanh = true;

template <typename T>
__global__ void bias_act_rows_kernel(T* c, int m, int n, long long ldc, long long c_batch, long long rows,
                                     const T* bias, long long bias_batch, Act act, bool init) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= n) return;
  for (long long r = blockIdx.y; r < rows; r += gridDim.y) {
    const long long q = r / m, i = r - q * m;
    T* p = c + q * c_batch + i * ldc + j;
    float v = init ? 0.0f : to_f32(*p);
    if (bias) v += to_f32(bias[q * bias_batch + j]);
    *p = from_f32<T>(apply_act(act, v));
  }
}

cudaError_t launch_bias_act(DT dt, void* c, int64_t m, int64_t n, int64_t ldc, int batch, int64_t c_batch,
                            const void* bias, int64_t bias_batch, Act act, bool init, cudaStream_t stream) {
  if (m <= 0 || n <= 0 || batch <= 0) return cudaSuccess;
  if (n > INT32_MAX || m > INT32_MAX) return cudaErrorInvalidValue;
  const long long rows = static_cast<long long>(m) * batch;
  const dim3 block(128);
  const dim3 grid(ceil_div(n, 128), static_cast<unsigned>(std::min<long long>(rows, 65535)));
  return dispatch_dtype(dt, [&](auto tag) -> cudaError_t {
    using T = decltype(tag);
    bias_act_rows_kernel<T><<<grid, block, 0, stream>>>(static_cast<T*>(c), static_cast<int>(m), static_cast<int>(n),
                                                         ldc, c_batch, rows, static_cast<const T*>(bias),
                                                         bias_batch, act, init);
    return cudaGetLastError();
  });
}

cudaDataType_t lt_type(DT dt) {
  switch (dt) {
    case DT::F32: return CUDA_R_32F;
    case DT::F16: return CUDA_R_16F;
    case DT::BF16: return CUDA_R_16BF;
  }
  return CUDA_R_32F;
}
size_t elem_size(DT dt) { return dt == DT::F32 ? 4 : 2; }

// Largest power of two (<= 256) dividing the address and, when they matter, the row and batch strides.
int64_t alignment(const void* p, int64_t ld_bytes, bool multi_row, int64_t batch_bytes, bool multi_batch) {
  uint64_t x = reinterpret_cast<uintptr_t>(p);
  if (multi_row) x |= static_cast<uint64_t>(ld_bytes);
  if (multi_batch) x |= static_cast<uint64_t>(batch_bytes);
  if (x == 0) return 256;
  return static_cast<int64_t>(std::min<uint64_t>(256, x & (~x + 1)));
}

std::string status_text(cublasStatus_t s) { return cublasLtGetStatusString(s); }

// How many heuristic results a plan may choose from (GemmArgs::algo_index).
constexpr int kMaxAlgos = 8;

// "id 66 tile 128x128 stages 10 splitK 1 swizzle 0 cluster 2 waves 0.87" (config attributes of an algorithm;
// on sm_90 some kernels report tile/stages as undefined (0)).
std::string algo_text(const cublasLtMatmulAlgo_t& algo, float waves) {
  int32_t id = -1, splitk = 1;
  uint32_t tile = 0, stages = 0, swizzle = 0;
  uint16_t cluster = 0;
  size_t written = 0;
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &written);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &written);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &written);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk, &written);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swizzle, sizeof swizzle, &written);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster, sizeof cluster,
                                       &written);
  // Tile ids 1..35 in cublasLtMatmulTile_t order (rows x cols of the C tile).
  static const char* const kTiles[] = {"?",      "8x8",     "8x16",    "16x8",    "8x32",    "16x16",  "32x8",
                                       "8x64",   "16x32",   "32x16",   "64x8",    "32x32",   "32x64",  "64x32",
                                       "32x128", "64x64",   "128x32",  "64x128",  "128x64",  "64x256", "128x128",
                                       "256x64", "64x512",  "128x256", "256x128", "512x64",  "64x96",  "96x64",
                                       "96x128", "128x160", "160x128", "192x128", "128x192", "128x96", "32x256",
                                       "256x32"};
  const std::string tile_name = tile < sizeof kTiles / sizeof kTiles[0] ? kTiles[tile] : "t" + std::to_string(tile);
  char buf[160];
  std::snprintf(buf, sizeof buf, "id %d tile %s stages %u splitK %d swizzle %u cluster %u waves %.2f", id,
                tile_name.c_str(), stages, splitk, swizzle, static_cast<unsigned>(cluster), waves);
  return buf;
}

}  // namespace

bool lt_fuses_act(Act act) { return act == Act::None || (act == Act::GeluTanh && kLtGeluIsTanh); }

struct GemmPlanCache::Impl {
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
    cublasLtMatmulAlgo_t algo{};
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;  // what cuBLASLt applies; the rest is our pass
    std::string info;  // which algorithm, for plans and sweeps
    ~Plan() {
      if (lc) cublasLtMatrixLayoutDestroy(lc);
      if (lb) cublasLtMatrixLayoutDestroy(lb);
      if (la) cublasLtMatrixLayoutDestroy(la);
      if (desc) cublasLtMatmulDescDestroy(desc);
    }
  };
  std::map<std::vector<int64_t>, std::unique_ptr<Plan>> plans;
  bool autotune = false;
};

GemmPlanCache::GemmPlanCache() : impl_(std::make_unique<Impl>()) {}
GemmPlanCache::~GemmPlanCache() = default;
size_t GemmPlanCache::plans() const { return impl_->plans.size(); }
void GemmPlanCache::set_autotune(bool on) { impl_->autotune = on; }
bool GemmPlanCache::autotune() const { return impl_->autotune; }

namespace {

bool capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &status) != cudaSuccess) {
    cudaGetLastError();
    return true;  // unknown: do not synchronise
  }
  return status != cudaStreamCaptureStatusNone;
}

// Index of the fastest of `n` candidate algorithms for this matmul, timed on the real operands (a few
// runs each, after one warm-up run); -1 if none could be timed. C is written but not read (beta = 0), so
// the caller's result is unaffected: the chosen algorithm runs again afterwards.
int fastest_algorithm(cublasLtHandle_t lt, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t la,
                      cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t lc, const GemmArgs& a,
                      const cublasLtMatmulHeuristicResult_t* results, int n, void* workspace, size_t workspace_bytes,
                      cudaStream_t stream) {
  cudaEvent_t start = nullptr, stop = nullptr;
  if (cudaEventCreate(&start) != cudaSuccess || cudaEventCreate(&stop) != cudaSuccess) {
    cudaGetLastError();
    if (start) cudaEventDestroy(start);
    return -1;
  }
  constexpr int kRuns = 5;
  const float alpha = a.alpha, beta = 0.0f;
  int best = -1;
  float best_ms = 0;
  for (int i = 0; i < n; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS || results[i].workspaceSize > workspace_bytes) continue;
    auto launch = [&] {
      return cublasLtMatmul(lt, desc, &alpha, a.b, la, a.a, lb, &beta, a.c, lc, a.c, lc, &results[i].algo, workspace,
                            workspace_bytes, stream);
    };
    if (launch() != CUBLAS_STATUS_SUCCESS) continue;
    bool ok = cudaEventRecord(start, stream) == cudaSuccess;
    for (int r = 0; ok && r < kRuns; ++r) ok = launch() == CUBLAS_STATUS_SUCCESS;
    ok = ok && cudaEventRecord(stop, stream) == cudaSuccess && cudaEventSynchronize(stop) == cudaSuccess;
    float ms = 0;
    ok = ok && cudaEventElapsedTime(&ms, start, stop) == cudaSuccess;
    if (!ok) {
      cudaGetLastError();
      continue;
    }
    if (best < 0 || ms < best_ms) best = i, best_ms = ms;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best;
}

}  // namespace

#define BLR_LT_TRY(call)                                                                                   \
  do {                                                                                                     \
    const cublasStatus_t st_ = (call);                                                                     \
    if (st_ != CUBLAS_STATUS_SUCCESS) return std::string(#call) + " failed: " + status_text(st_) + " for " + shape; \
  } while (0)

std::string GemmPlanCache::run(cublasLtContext* lt, const GemmArgs& in, void* workspace, size_t workspace_bytes,
                               cudaStream_t stream, std::string* algo) {
  GemmArgs a = in;
  char shape_buf[256];
  std::snprintf(shape_buf, sizeof shape_buf, "gemm m=%lld n=%lld k=%lld batch=%d lda=%lld ldb=%lld ldc=%lld%s",
                static_cast<long long>(a.m), static_cast<long long>(a.n), static_cast<long long>(a.k), a.batch,
                static_cast<long long>(a.lda), static_cast<long long>(a.ldb), static_cast<long long>(a.ldc),
                a.b_nk ? " (B is [n,k])" : "");
  const std::string shape = shape_buf;
  if (a.m < 0 || a.n < 0 || a.k < 0 || a.batch < 0) return "negative size in " + shape;
  if (a.m == 0 || a.n == 0 || a.batch == 0) return "";
  if (!a.c) return "null output in " + shape;
  if (a.k == 0) {  // empty reduction: C = act(bias)
    const cudaError_t e =
        launch_bias_act(a.dt, a.c, a.m, a.n, a.ldc, a.batch, a.c_batch, a.bias, a.bias_batch, a.act, true, stream);
    return e == cudaSuccess ? "" : std::string("bias_act_rows: ") + cudaGetErrorString(e);
  }
  if (!a.a || !a.b) return "null operand in " + shape;
  // Degenerate dimensions: cuBLASLt wants ld >= rows even where the stride is never used.
  if (a.m <= 1) {
    a.lda = a.k;
    a.ldc = a.n;
  }
  if (a.b_nk && a.n <= 1) a.ldb = a.k;
  if (!a.b_nk && a.k <= 1) a.ldb = a.n;
  if (a.batch <= 1) a.a_batch = a.b_batch = a.c_batch = a.bias_batch = 0;
  if (a.lda < a.k || a.ldc < a.n || a.ldb < (a.b_nk ? a.k : a.n)) return "row stride smaller than the row in " + shape;

  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  if (a.act == Act::GeluTanh && lt_fuses_act(a.act)) epi = a.bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
  else if (a.bias) epi = CUBLASLT_EPILOGUE_BIAS;

  const int64_t es = static_cast<int64_t>(elem_size(a.dt));
  const bool multi = a.batch > 1;
  const int64_t al_a = alignment(a.a, a.lda * es, a.m > 1, a.a_batch * es, multi);
  const int64_t al_b = alignment(a.b, a.ldb * es, true, a.b_batch * es, multi);
  const int64_t al_c = alignment(a.c, a.ldc * es, a.m > 1, a.c_batch * es, multi);
  const int64_t al_bias = a.bias ? alignment(a.bias, 0, false, a.bias_batch * es, multi) : 0;
  const std::vector<int64_t> key = {static_cast<int64_t>(a.dt), a.m, a.n, a.k, a.batch, a.lda, a.a_batch, a.ldb,
                                    a.b_batch, a.b_nk, a.ldc, a.c_batch, static_cast<int64_t>(epi), a.bias_batch,
                                    al_a, al_b, al_c, al_bias, static_cast<int64_t>(workspace_bytes),
                                    static_cast<int64_t>(a.algo_index)};
  if (a.algo_index < 0 || a.algo_index >= kMaxAlgos) return "algorithm index out of range for " + shape;

  Impl::Plan* plan = nullptr;
  auto it = impl_->plans.find(key);
  if (it != impl_->plans.end()) {
    plan = it->second.get();
  } else {
    auto p = std::make_unique<Impl::Plan>();
    const cudaDataType_t t = lt_type(a.dt);
    BLR_LT_TRY(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const int32_t op_a = a.b_nk ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = CUBLAS_OP_N;
    BLR_LT_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a));
    BLR_LT_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b));
    if (a.bias) {
      BLR_LT_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &a.bias, sizeof a.bias));
      if (multi) {
        const int64_t sb = a.bias_batch;
        BLR_LT_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, &sb, sizeof sb));
      }
    }
    // cuBLASLt's A = our B: [n,k] row-major is k×n column-major (transposed), [k,n] row-major is n×k.
    if (a.b_nk) BLR_LT_TRY(cublasLtMatrixLayoutCreate(&p->la, t, a.k, a.n, a.ldb));
    else BLR_LT_TRY(cublasLtMatrixLayoutCreate(&p->la, t, a.n, a.k, a.ldb));
    BLR_LT_TRY(cublasLtMatrixLayoutCreate(&p->lb, t, a.k, a.m, a.lda));  // our A: [m,k] row-major = k×m
    BLR_LT_TRY(cublasLtMatrixLayoutCreate(&p->lc, t, a.n, a.m, a.ldc));  // our C: [m,n] row-major = n×m
    if (multi) {
      const int32_t count = a.batch;
      const int64_t sa = a.b_batch, sb = a.a_batch, sc = a.c_batch;
      BLR_LT_TRY(cublasLtMatrixLayoutSetAttribute(p->la, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count));
      BLR_LT_TRY(cublasLtMatrixLayoutSetAttribute(p->la, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sa, sizeof sa));
      BLR_LT_TRY(cublasLtMatrixLayoutSetAttribute(p->lb, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count));
      BLR_LT_TRY(cublasLtMatrixLayoutSetAttribute(p->lb, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sb, sizeof sb));
      BLR_LT_TRY(cublasLtMatrixLayoutSetAttribute(p->lc, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count));
      BLR_LT_TRY(cublasLtMatrixLayoutSetAttribute(p->lc, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sc, sizeof sc));
    }
    cublasLtMatmulPreference_t pref = nullptr;
    BLR_LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t ws = workspace_bytes;
    const uint32_t ua = static_cast<uint32_t>(al_b), ub = static_cast<uint32_t>(al_a),
                   uc = static_cast<uint32_t>(al_c);
    cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &ua, sizeof ua);
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ub, sizeof ub);
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &uc, sizeof uc);
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &uc, sizeof uc);
    // Ask for the fused epilogue first; if no algorithm supports it for this dtype/layout, run the plain
    // matmul and let our bias/activation pass do the rest. A forced algorithm index (sweeps) or autotuning
    // (several candidates timed once, outside capture) asks for the whole heuristic list.
    const bool tune = impl_->autotune && !capturing(stream) && a.algo_index == 0;
    cublasLtMatmulHeuristicResult_t results[kMaxAlgos] = {};
    const int want = (a.algo_index == 0 && !tune) ? 1 : kMaxAlgos;
    int found = 0;
    for (cublasLtEpilogue_t e : {epi, CUBLASLT_EPILOGUE_DEFAULT}) {
      if (st != CUBLAS_STATUS_SUCCESS || found > 0) break;
      const uint32_t e32 = static_cast<uint32_t>(e);
      st = cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e32, sizeof e32);
      if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulAlgoGetHeuristic(lt, p->desc, p->la, p->lb, p->lc, p->lc, pref, want, results, &found);
      if (st == CUBLAS_STATUS_NOT_SUPPORTED && e != CUBLASLT_EPILOGUE_DEFAULT) st = CUBLAS_STATUS_SUCCESS;
      p->epi = e;
    }
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS) return "cublasLt heuristic failed: " + status_text(st) + " for " + shape;
    if (found == 0) return "cublasLt found no algorithm for " + shape;
    if (a.algo_index >= found)
      return "cublasLt offers only " + std::to_string(found) + " algorithms for " + shape;
    int pick = a.algo_index;
    if (tune && found > 1) {
      const int best = fastest_algorithm(lt, p->desc, p->la, p->lb, p->lc, a, results, found, workspace,
                                         workspace_bytes, stream);
      if (best >= 0) pick = best;
    }
    p->algo = results[pick].algo;
    p->info = "#" + std::to_string(pick) + (want > 1 ? "/" + std::to_string(found) : std::string()) +
              (tune ? " autotuned " : " ") + algo_text(p->algo, results[pick].wavesCount);
    const bool has_bias = p->epi == CUBLASLT_EPILOGUE_BIAS || p->epi == CUBLASLT_EPILOGUE_GELU_BIAS;
    const bool has_act = p->epi == CUBLASLT_EPILOGUE_GELU || p->epi == CUBLASLT_EPILOGUE_GELU_BIAS;
    if ((a.bias && !has_bias) || (a.act != Act::None && !has_act)) p->info += " +bias/act pass";
    plan = p.get();
    impl_->plans.emplace(key, std::move(p));
  }

  if (algo) *algo = plan->info;
  const bool lt_bias = plan->epi == CUBLASLT_EPILOGUE_BIAS || plan->epi == CUBLASLT_EPILOGUE_GELU_BIAS;
  const bool lt_act = plan->epi == CUBLASLT_EPILOGUE_GELU || plan->epi == CUBLASLT_EPILOGUE_GELU_BIAS;
  if (lt_bias)
    BLR_LT_TRY(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &a.bias, sizeof a.bias));
  const float alpha = a.alpha, beta = 0.0f;
  BLR_LT_TRY(cublasLtMatmul(lt, plan->desc, &alpha, a.b, plan->la, a.a, plan->lb, &beta, a.c, plan->lc, a.c, plan->lc,
                            &plan->algo, workspace, workspace_bytes, stream));
  const void* pass_bias = a.bias && !lt_bias ? a.bias : nullptr;
  const Act pass_act = lt_act ? Act::None : a.act;
  if (!pass_bias && pass_act != Act::None && a.batch <= 1) {
    // The usual case (GELU-erf after cuBLASLt's bias epilogue, e.g. a ViT fc1): the vectorised in-place
    // activation pass of kernels/elementwise (16-byte accesses) instead of one element per thread.
    const cudaError_t e = activation(a.c, a.ldc, a.c, a.ldc, a.m, a.n, pass_act, a.dt, stream);
    if (e != cudaSuccess) return std::string("activation after ") + shape + ": " + cudaGetErrorString(e);
  } else if (pass_bias || pass_act != Act::None) {
    const cudaError_t e = launch_bias_act(a.dt, a.c, a.m, a.n, a.ldc, a.batch, a.c_batch, pass_bias, a.bias_batch,
                                          pass_act, false, stream);
    if (e != cudaSuccess) return std::string("bias_act_rows after ") + shape + ": " + cudaGetErrorString(e);
  }
  return "";
}

#undef BLR_LT_TRY

cudaError_t bias_act_rows(DT dt, void* c, int64_t m, int64_t n, int64_t ldc, int batch, int64_t c_batch,
                          const void* bias, int64_t bias_batch, Act act, cudaStream_t stream) {
  return launch_bias_act(dt, c, m, n, ldc, batch, c_batch, bias, bias_batch, act, false, stream);
}

}  // namespace blr::kern
