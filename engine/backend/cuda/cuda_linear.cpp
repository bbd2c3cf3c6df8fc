// CudaOps: dense linear and batched matmul, both through cuBLASLt (kernels/gemm.h) with bias and
// activation in its epilogue where it has one. cuBLASLt is the baseline every BLR layer is measured
// against, so it is used as shipped rather than re-implemented.
#include "engine/backend/cuda/cuda_gemm_tuning.h"
#include "engine/backend/cuda/cuda_linear_util.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/error.h"

namespace blr {

using namespace cuda_detail;

void set_gemm_autotune(CudaOps& ops, bool on) { lt_cache(ops).set_autotune(on); }

void CudaOps::linear(const Tensor& x, const Tensor& w, const Tensor* bias, Act act, Tensor& y) {
  check_factor(w, x.dtype(), 2, "linear", "weight");
  const int64_t in = w.dim(1), out = w.dim(0);
  const LayerIo io = check_layer_io("linear", x, y, bias, in, out);
  const std::string plan = cat("dense: cublasLt", bias ? " +bias" : "", act != Act::None ? " +" : "",
                               act != Act::None ? act_name(act) : "",
                               kern::lt_fuses_act(kernel_act(act)) ? "" : " (activation as a separate pass)");
  set_last_linear_plan(plan);
  if (io.x.rows == 0 || out == 0) return;
  kern::GemmArgs g;
  g.dt = kernel_dtype(x.dtype());
  g.m = io.x.rows;
  g.n = out;
  g.k = in;
  g.a = io.x.data;
  g.lda = io.x.ld;
  g.b = w.data();
  g.ldb = in;
  g.b_nk = true;
  g.c = io.y.data;
  g.ldc = io.y.ld;
  g.bias = bias ? bias->data() : nullptr;
  g.act = kernel_act(act);
  std::string algo;
  run_lt(*this, g, "linear", &algo);
  set_last_linear_plan(cat(plan, " [", algo, "]"));
}

void CudaOps::matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_b, float alpha) {
  check_cuda(a, a.dtype(), "matmul", "a");
  check_cuda(b, a.dtype(), "matmul", "b");
  check_cuda(c, a.dtype(), "matmul", "c");
  BLR_CHECK(a.ndim() == 3 && b.ndim() == 3 && c.ndim() == 3, "cuda matmul: expects [B, M, K] operands, got ",
            a.describe(), ", ", b.describe(), ", ", c.describe());
  const int64_t batch = a.dim(0), m = a.dim(1), k = a.dim(2);
  const int64_t n = trans_b ? b.dim(1) : b.dim(2);
  BLR_CHECK(b.dim(0) == batch && (trans_b ? b.dim(2) : b.dim(1)) == k && c.dim(0) == batch && c.dim(1) == m &&
                c.dim(2) == n,
            "cuda matmul: shapes ", a.describe(), " x ", b.describe(), (trans_b ? "ᵀ" : ""), " -> ", c.describe());
  BLR_CHECK(batch <= INT32_MAX, "cuda matmul: batch ", batch, " too large");
  for (const Tensor* t : {&a, &b, static_cast<const Tensor*>(&c)})
    BLR_CHECK(t->dim(2) <= 1 || t->stride(2) == 1, "cuda matmul: ", t->describe(),
              " needs a unit stride in its last dim (strides ", shape_str(t->strides()), ")");
  set_last_linear_plan("matmul: cublasLt strided batch");
  if (batch == 0 || m == 0 || n == 0) return;
  kern::GemmArgs g;
  g.dt = kernel_dtype(a.dtype());
  g.m = m;
  g.n = n;
  g.k = k;
  g.batch = static_cast<int>(batch);
  g.a = a.data();
  g.lda = a.stride(1);
  g.a_batch = a.stride(0);
  g.b = b.data();
  g.ldb = b.stride(1);
  g.b_batch = b.stride(0);
  g.b_nk = trans_b;
  g.c = c.data();
  g.ldc = c.stride(1);
  g.c_batch = c.stride(0);
  g.alpha = alpha;
  run_lt(*this, g, "matmul");
}

}  // namespace blr
