// CudaOps::attention: the fused flash-attention kernel where it applies, else a cuBLAS-based path
// (see cuda_attention.h). Both read q, k, v in place from the fused qkv tensor [B, N, 3·H·D] and write
// [B, N, H·D]; neither allocates inside a graph capture (the GEMM path's scores live in CudaOps::scratch,
// sized by the first eager run).
#include "engine/backend/cuda/cuda_attention.h"

#include <cublas_v2.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/cuda_check.h"
#include "engine/core/error.h"
#include "kernels/attention.h"

namespace blr {
namespace {

struct AttentionState final : CudaOps::FamilyState {
  AttentionPath path = AttentionPath::Auto;
  std::string last;
};

AttentionState& state_of(CudaOps& ops) {
  auto& slot = ops.family_state("attention");
  if (!slot) slot = std::make_unique<AttentionState>();
  return static_cast<AttentionState&>(*slot);
}

kern::DT kernel_dtype(DType t) {
  switch (t) {
    case DType::F32: return kern::DT::F32;
    case DType::F16: return kern::DT::F16;
    case DType::BF16: return kern::DT::BF16;
    default: throw Error(cat("cuda attention: unsupported dtype ", dtype_name(t), " (f32, f16 or bf16)"));
  }
}

cudaDataType_t cublas_dtype(DType t) {
  return t == DType::F32 ? CUDA_R_32F : t == DType::F16 ? CUDA_R_16F : CUDA_R_16BF;
}

// Auto may use the split-key variant only when BLR_ATTENTION_SPLIT_KEYS=1 (read once).
bool split_keys_allowed() {
  static const bool allowed = [] {
    const char* v = std::getenv("BLR_ATTENTION_SPLIT_KEYS");
    return v && std::string(v) == "1";
  }();
  return allowed;
}

// Scores of at most this many bytes at once: long sequences are processed in query chunks.
constexpr int64_t kGemmScratchBytes = int64_t{64} << 20;

// cuBLAS handle settings this path relies on (host scalars; no TF32 for the fp32 parity path), restored
// afterwards so other families sharing the handle see what they set.
class HandleModes {
 public:
  HandleModes(cublasHandle_t h, bool exact_fp32) : h_(h) {
    BLR_CUBLAS_CHECK(cublasGetPointerMode(h_, &pointer_mode_));
    BLR_CUBLAS_CHECK(cublasGetMathMode(h_, &math_mode_));
    BLR_CUBLAS_CHECK(cublasSetPointerMode(h_, CUBLAS_POINTER_MODE_HOST));
    if (exact_fp32) BLR_CUBLAS_CHECK(cublasSetMathMode(h_, CUBLAS_DEFAULT_MATH));
  }
  ~HandleModes() {
    cublasSetPointerMode(h_, pointer_mode_);
    cublasSetMathMode(h_, math_mode_);
  }
  HandleModes(const HandleModes&) = delete;
  HandleModes& operator=(const HandleModes&) = delete;

 private:
  cublasHandle_t h_;
  cublasPointerMode_t pointer_mode_ = CUBLAS_POINTER_MODE_HOST;
  cublasMath_t math_mode_ = CUBLAS_DEFAULT_MATH;
};

void attention_gemm(CudaOps& ops, const Tensor& qkv, int heads, int head_dim, float scale, Tensor& out) {
  const DType dt = qkv.dtype();
  const size_t elem = dtype_size(dt);
  const int64_t B = qkv.dim(0), N = qkv.dim(1), H = heads, D = head_dim;
  const int64_t ts = qkv.stride(1), out_ts = out.stride(1);
  BLR_CHECK(N <= INT32_MAX && ts <= INT32_MAX && out_ts <= INT32_MAX && D <= INT32_MAX,
            "cuda attention: sizes exceed cuBLAS's int range: ", qkv.describe());

  // Query rows per chunk: H·rows·N fp32 scores (+ the 16-bit probabilities for bf16/f16) fit the budget.
  const int64_t bytes_per_row = H * N * static_cast<int64_t>(sizeof(float) + (dt == DType::F32 ? 0 : elem));
  int64_t chunk = std::clamp<int64_t>(kGemmScratchBytes / std::max<int64_t>(bytes_per_row, 1), 1, N);
  if (chunk >= 64 && chunk < N) chunk = chunk / 64 * 64;
  float* scores = static_cast<float*>(ops.scratch(static_cast<size_t>(H * chunk * N) * sizeof(float), 0));
  // fp32 normalises in place (softmax_rows_f32 reads each row fully before writing it).
  void* probs = dt == DType::F32 ? static_cast<void*>(scores)
                                 : ops.scratch(static_cast<size_t>(H * chunk * N) * elem, 1);

  cublasHandle_t handle = ops.cublas();
  const HandleModes modes(handle, dt == DType::F32);
  const cudaDataType_t t = cublas_dtype(dt);
  const float zero = 0.0f, one = 1.0f;
  for (int64_t b = 0; b < B; ++b) {
    const char* base = static_cast<const char*>(qkv.data()) + static_cast<size_t>(b * qkv.stride(0)) * elem;
    const char* k_ptr = base + static_cast<size_t>(H * D) * elem;
    const char* v_ptr = base + static_cast<size_t>(2 * H * D) * elem;
    for (int64_t q0 = 0; q0 < N; q0 += chunk) {
      const int64_t nq = std::min(chunk, N - q0);
      const char* q_ptr = base + static_cast<size_t>(q0 * ts) * elem;
      // Column-major view: scoresᵀ[N × nq] = Kᵀᵀ·Q per head, i.e. row-major scores[nq × N] = Q·Kᵀ.
      BLR_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(nq), static_cast<int>(D),
          &scale, k_ptr, t, static_cast<int>(ts), D, q_ptr, t, static_cast<int>(ts), D, &zero, scores,
          CUDA_R_32F, static_cast<int>(N), nq * N, static_cast<int>(H), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      BLR_CUDA_CHECK(kern::softmax_rows_f32(scores, N, kernel_dtype(dt), probs, N, H * nq, N, ops.stream()));
      // out[nq × D] (row-major, row stride out_ts) = P[nq × N]·V[N × D] per head.
      char* o_ptr = static_cast<char*>(out.data()) + static_cast<size_t>(b * out.stride(0) + q0 * out_ts) * elem;
      BLR_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          handle, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(D), static_cast<int>(nq), static_cast<int>(N), &one,
          v_ptr, t, static_cast<int>(ts), D, probs, t, static_cast<int>(N), nq * N, &zero, o_ptr, t,
          static_cast<int>(out_ts), D, static_cast<int>(H), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
  }
}

}  // namespace

void set_attention_path(CudaOps& ops, AttentionPath path) { state_of(ops).path = path; }
std::string last_attention_path(CudaOps& ops) { return state_of(ops).last; }

void CudaOps::attention(const Tensor& qkv, int heads, float scale, Tensor& out) {
  BLR_CHECK(qkv.defined() && out.defined(), "cuda attention: undefined tensor");
  BLR_CHECK(qkv.on_cuda() && out.on_cuda(), "cuda attention: tensors must be on the GPU: qkv ", qkv.describe(),
            ", out ", out.describe());
  BLR_CHECK(qkv.dtype() == out.dtype(), "cuda attention: qkv is ", dtype_name(qkv.dtype()), " but out is ",
            dtype_name(out.dtype()));
  const kern::DT kdt = kernel_dtype(qkv.dtype());
  BLR_CHECK(qkv.ndim() == 3 && out.ndim() == 3, "cuda attention: qkv ", qkv.describe(), " and out ",
            out.describe(), " must be [B, N, C]");
  BLR_CHECK(heads >= 1 && qkv.dim(2) % (3 * int64_t{heads}) == 0, "cuda attention: qkv width ", qkv.dim(2),
            " is not 3·heads·head_dim for ", heads, " heads");
  BLR_CHECK(std::isfinite(scale), "cuda attention: scale ", scale, " is not finite");
  const int64_t head_dim = qkv.dim(2) / (3 * int64_t{heads});
  const Shape expected{qkv.dim(0), qkv.dim(1), heads * head_dim};
  BLR_CHECK(out.shape() == expected, "cuda attention: out is ", shape_str(out.shape()), ", expected ",
            shape_str(expected), " for qkv ", shape_str(qkv.shape()), " with ", heads, " heads");
  BLR_CHECK(qkv.stride(2) == 1 && out.stride(2) == 1, "cuda attention: the channel dim must be contiguous");
  BLR_CHECK(qkv.dim(0) <= INT32_MAX && qkv.dim(1) <= INT32_MAX && head_dim <= INT32_MAX,
            "cuda attention: sizes too large: ", qkv.describe());
  if (qkv.dim(0) == 0 || qkv.dim(1) == 0) return;

  AttentionState& st = state_of(*this);
  kern::AttentionShape s;
  s.batch = static_cast<int>(qkv.dim(0));
  s.tokens = static_cast<int>(qkv.dim(1));
  s.heads = heads;
  s.head_dim = static_cast<int>(head_dim);
  s.qkv_batch_stride = qkv.stride(0);
  s.qkv_token_stride = qkv.stride(1);
  s.out_batch_stride = out.stride(0);
  s.out_token_stride = out.stride(1);
  const bool fused_ok = kern::flash_attention_supported(kdt, s, qkv.data(), out.data(), scale);
  if ((st.path == AttentionPath::Fused || st.path == AttentionPath::FusedSplitKeys) && !fused_ok)
    throw Error(cat("cuda attention: the fused kernel does not support ", qkv.describe(), " with ", heads,
                    " heads (head dim ", head_dim, ", scale ", scale, ")"));
  if (fused_ok && st.path != AttentionPath::Gemm) {
    const bool split = st.path == AttentionPath::FusedSplitKeys ||
                       (st.path == AttentionPath::Auto && split_keys_allowed() && kern::flash_split_keys_pays(s));
    if (split) {
      BLR_CUDA_CHECK(kern::flash_attention_split_keys(kdt, s, qkv.data(), out.data(), scale, stream()));
      st.last = kern::flash_attention_split_variant(kdt, s);
    } else {
      BLR_CUDA_CHECK(kern::flash_attention(kdt, s, qkv.data(), out.data(), scale, stream()));
      st.last = kern::flash_attention_variant(kdt, s);
    }
    return;
  }
  attention_gemm(*this, qkv, heads, static_cast<int>(head_dim), scale, out);
  st.last = "gemm";
}

}  // namespace blr
