// CudaOps::conv2d: NHWC convolution through cuDNN's legacy API with a per-shape cached plan (descriptors,
// algorithm, workspace size), falling back to kernels/conv.cu's direct convolution where cuDNN has no
// working algorithm. The first call for a shape runs eagerly and may try several algorithms; later calls
// (and graph captures) only look the plan up and enqueue, with the workspace from CudaOps::scratch.
#include "engine/backend/cuda/cuda_conv.h"

#include <cudnn.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/cuda_check.h"
#include "engine/core/error.h"
#include "kernels/conv.h"

namespace blr {
namespace {

// Workspace larger than this is not worth it for our shapes (and would not fit a Jetson's budget).
constexpr size_t kMaxWorkspaceBytes = size_t{64} << 20;

const char* algo_name(cudnnConvolutionFwdAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return "IMPLICIT_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return "IMPLICIT_PRECOMP_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return "GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return "DIRECT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return "FFT_TILING";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    default: return "UNKNOWN";
  }
}

// One convolution shape's cached cuDNN state.
struct ConvPlan {
  bool cudnn = false;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  size_t workspace = 0;
  std::string label = "direct";

  ConvPlan() = default;
  ConvPlan(const ConvPlan&) = delete;
  ConvPlan& operator=(const ConvPlan&) = delete;
  ~ConvPlan() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
};

// dtype, B, H, W, Ci, Co, kh, kw, stride, pad
using ConvKey = std::array<int64_t, 10>;

struct ConvState final : CudaOps::FamilyState {
  ConvPath path = ConvPath::Auto;
  std::map<ConvKey, std::unique_ptr<ConvPlan>> plans;
  std::string last;
};

ConvState& state_of(CudaOps& ops) {
  auto& slot = ops.family_state("conv");
  if (!slot) slot = std::make_unique<ConvState>();
  return static_cast<ConvState&>(*slot);
}

kern::DT kernel_dtype(DType t) {
  switch (t) {
    case DType::F32: return kern::DT::F32;
    case DType::F16: return kern::DT::F16;
    case DType::BF16: return kern::DT::BF16;
    default: throw Error(cat("cuda conv2d: unsupported dtype ", dtype_name(t), " (f32, f16 or bf16)"));
  }
}

cudnnDataType_t cudnn_dtype(DType t) {
  return t == DType::F32 ? CUDNN_DATA_FLOAT : t == DType::F16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16;
}

bool find_requested() {
  const char* v = std::getenv("BLR_CUDNN_FIND");
  return v && std::strcmp(v, "0") != 0 && *v != '\0';
}

struct ConvArgs {
  const Tensor* x;
  const Tensor* w;
  Tensor* y;
  kern::Conv2dShape s;
};

// Enqueues cudnnConvolutionForward with the plan's algorithm; returns cuDNN's status (not thrown, so the
// first run can move on to the next candidate when one turns out unsupported).
cudnnStatus_t run_cudnn(CudaOps& ops, const ConvPlan& plan, const ConvArgs& a) {
  void* ws = plan.workspace ? ops.scratch(plan.workspace, 0) : nullptr;
  const float alpha = 1.0f, beta = 0.0f;
  return cudnnConvolutionForward(ops.cudnn(), &alpha, plan.x, a.x->data(), plan.w, a.w->data(), plan.conv,
                                 plan.algo, ws, plan.workspace, &beta, plan.y, a.y->data());
}

// Builds the plan for a new shape and, as part of choosing the algorithm, computes y (without bias).
// Returns the plan; `computed` tells whether y was already written.
std::unique_ptr<ConvPlan> make_plan(CudaOps& ops, ConvPath path, DType dt, const ConvArgs& a, bool* computed) {
  *computed = false;
  auto plan = std::make_unique<ConvPlan>();
  if (path == ConvPath::Direct) return plan;
  const kern::Conv2dShape& s = a.s;
  const cudnnDataType_t cdt = cudnn_dtype(dt);
  BLR_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->x));
  BLR_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->y));
  BLR_CUDNN_CHECK(cudnnCreateFilterDescriptor(&plan->w));
  BLR_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&plan->conv));
  BLR_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan->x, CUDNN_TENSOR_NHWC, cdt, s.batch, s.in_channels, s.height,
                                             s.width));
  BLR_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan->y, CUDNN_TENSOR_NHWC, cdt, s.batch, s.out_channels,
                                             s.out_height, s.out_width));
  // An NHWC filter descriptor is exactly our KRSC [Co, kh, kw, Ci] layout.
  BLR_CUDNN_CHECK(cudnnSetFilter4dDescriptor(plan->w, cdt, CUDNN_TENSOR_NHWC, s.out_channels, s.in_channels,
                                             s.kernel_h, s.kernel_w));
  // Compute type float: fp32 accumulation for every storage type.
  BLR_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(plan->conv, s.pad, s.pad, s.stride, s.stride, 1, 1,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  // f32 stays on FMA kernels (tensor-op math would allow TF32 and break the tight parity path).
  const cudnnMathType_t math = dt == DType::F32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
  BLR_CUDNN_CHECK(cudnnSetConvolutionMathType(plan->conv, math));
  int n = 0, c = 0, h = 0, w = 0;
  BLR_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(plan->conv, plan->x, plan->w, &n, &c, &h, &w));
  BLR_CHECK(n == s.batch && c == s.out_channels && h == s.out_height && w == s.out_width,
            "cuda conv2d: cuDNN's output shape [", n, ",", h, ",", w, ",", c, "] differs from ",
            a.y->describe());

  cudnnHandle_t handle = ops.cudnn();
  int max_algos = 0;
  BLR_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &max_algos));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(std::max(max_algos, 1)));
  int returned = 0;
  if (find_requested() && !ops.capturing()) {
    void* ws = ops.scratch(kMaxWorkspaceBytes, 0);
    BLR_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(handle, plan->x, a.x->data(), plan->w, a.w->data(),
                                                           plan->conv, plan->y, a.y->data(), max_algos,
                                                           &returned, perf.data(), ws, kMaxWorkspaceBytes));
  } else {
    BLR_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, plan->x, plan->w, plan->conv, plan->y,
                                                           max_algos, &returned, perf.data()));
  }
  std::string tried;
  for (int i = 0; i < returned; ++i) {
    const cudnnConvolutionFwdAlgoPerf_t& p = perf[static_cast<size_t>(i)];
    if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC) continue;
    if (dt != DType::F32) BLR_CUDNN_CHECK(cudnnSetConvolutionMathType(plan->conv, p.mathType));
    size_t ws = 0;
    if (cudnnGetConvolutionForwardWorkspaceSize(handle, plan->x, plan->w, plan->conv, plan->y, p.algo, &ws) !=
            CUDNN_STATUS_SUCCESS ||
        ws > kMaxWorkspaceBytes)
      continue;
    plan->algo = p.algo;
    plan->workspace = ws;
    const cudnnStatus_t st = run_cudnn(ops, *plan, a);
    if (st == CUDNN_STATUS_SUCCESS) {
      plan->cudnn = true;
      plan->label = cat("cudnn:", algo_name(p.algo), "(ws=", format_bytes(ws), ")");
      *computed = true;
      return plan;
    }
    // Unsupported for this configuration after all: try the next one; anything else is a real error.
    if (st != CUDNN_STATUS_NOT_SUPPORTED && st != CUDNN_STATUS_BAD_PARAM)
      BLR_CUDNN_CHECK(st);
    tried += cat(tried.empty() ? "" : ", ", algo_name(p.algo), " (", cudnnGetErrorString(st), ")");
  }
  if (path == ConvPath::Cudnn)
    throw Error(cat("cuda conv2d: cuDNN has no working algorithm for x ", a.x->describe(), ", w ",
                    a.w->describe(), ", stride ", s.stride, ", pad ", s.pad,
                    tried.empty() ? std::string() : cat("; tried ", tried)));
  auto direct = std::make_unique<ConvPlan>();  // descriptors of the failed attempt are released with `plan`
  return direct;
}

}  // namespace

void set_conv_path(CudaOps& ops, ConvPath path) {
  ConvState& st = state_of(ops);
  st.path = path;
  st.plans.clear();
}

std::string last_conv_path(CudaOps& ops) { return state_of(ops).last; }

void CudaOps::conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dParams& p, Tensor& y) {
  BLR_CHECK(x.defined() && w.defined() && y.defined(), "cuda conv2d: undefined tensor");
  BLR_CHECK(x.on_cuda() && w.on_cuda() && y.on_cuda() && (!bias || bias->on_cuda()),
            "cuda conv2d: tensors must be on the GPU: x ", x.describe(), ", w ", w.describe(), ", y ",
            y.describe());
  const DType dt = x.dtype();
  const kern::DT kdt = kernel_dtype(dt);
  BLR_CHECK(w.dtype() == dt && y.dtype() == dt && (!bias || bias->dtype() == dt),
            "cuda conv2d: mixed dtypes: x ", x.describe(), ", w ", w.describe(), ", y ", y.describe());
  BLR_CHECK(x.ndim() == 4 && w.ndim() == 4 && y.ndim() == 4,
            "cuda conv2d: x [B,H,W,Ci], w [Co,kh,kw,Ci] and y [B,Ho,Wo,Co] expected, got x ", x.describe(),
            ", w ", w.describe(), ", y ", y.describe());
  BLR_CHECK(p.stride >= 1 && p.pad >= 0, "cuda conv2d: stride ", p.stride, " and pad ", p.pad, " invalid");
  const int64_t B = x.dim(0), H = x.dim(1), W = x.dim(2), Ci = x.dim(3);
  const int64_t Co = w.dim(0), kh = w.dim(1), kw = w.dim(2);
  BLR_CHECK(w.dim(3) == Ci, "cuda conv2d: w ", shape_str(w.shape()), " expects ", w.dim(3),
            " input channels, x ", shape_str(x.shape()), " has ", Ci);
  BLR_CHECK(H + 2 * p.pad >= kh && W + 2 * p.pad >= kw, "cuda conv2d: kernel ", kh, "x", kw,
            " larger than the padded input ", shape_str(x.shape()));
  const int64_t Ho = (H + 2 * p.pad - kh) / p.stride + 1, Wo = (W + 2 * p.pad - kw) / p.stride + 1;
  const Shape expected{B, Ho, Wo, Co};
  BLR_CHECK(y.shape() == expected, "cuda conv2d: y is ", shape_str(y.shape()), ", expected ",
            shape_str(expected), " for x ", shape_str(x.shape()), ", w ", shape_str(w.shape()), ", stride ",
            p.stride, ", pad ", p.pad);
  BLR_CHECK(!bias || (bias->ndim() == 1 && bias->dim(0) == Co), "cuda conv2d: bias ", bias->describe(),
            " expected [", Co, "]");
  BLR_CHECK(x.is_contiguous() && w.is_contiguous() && y.is_contiguous() && (!bias || bias->is_contiguous()),
            "cuda conv2d: tensors must be contiguous");
  for (int64_t v : {B, H, W, Ci, Co, kh, kw, Ho, Wo})
    BLR_CHECK(v <= INT32_MAX, "cuda conv2d: size ", v, " too large");
  if (y.numel() == 0) return;

  kern::Conv2dShape s;
  s.batch = static_cast<int>(B);
  s.height = static_cast<int>(H);
  s.width = static_cast<int>(W);
  s.in_channels = static_cast<int>(Ci);
  s.out_channels = static_cast<int>(Co);
  s.kernel_h = static_cast<int>(kh);
  s.kernel_w = static_cast<int>(kw);
  s.stride = p.stride;
  s.pad = p.pad;
  s.out_height = static_cast<int>(Ho);
  s.out_width = static_cast<int>(Wo);
  const ConvArgs args{&x, &w, &y, s};

  ConvState& st = state_of(*this);
  const ConvKey key{static_cast<int64_t>(dt), B, H, W, Ci, Co, kh, kw, p.stride, p.pad};
  auto it = st.plans.find(key);
  bool computed = false;
  if (it == st.plans.end()) it = st.plans.emplace(key, make_plan(*this, st.path, dt, args, &computed)).first;
  const ConvPlan& plan = *it->second;
  st.last = plan.label;
  if (!plan.cudnn) {
    BLR_CUDA_CHECK(kern::conv2d_direct(kdt, s, x.data(), w.data(), bias ? bias->data() : nullptr, y.data(),
                                       stream()));
    return;
  }
  if (!computed) BLR_CUDNN_CHECK(run_cudnn(*this, plan, args));
  if (bias) BLR_CUDA_CHECK(kern::add_channel_bias(kdt, y.data(), bias->data(), B * Ho * Wo, s.out_channels, stream()));
}

}  // namespace blr
