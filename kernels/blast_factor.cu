// Glue kernels of the GPU BLAST factorisation (see kernels/blast_factor.h and engine/compress/
// blast_factor.h for the algorithm). Everything heavy (block GEMMs, Cholesky) is cuBLAS/cuSOLVER; these
// kernels are memory-bound one-pass loops: one thread per output element, grid.y over blocks, so reads of
// consecutive elements are coalesced. Reductions use double and a fixed grid and tree order, so results are
// identical run to run.
#include "kernels/blast_factor.h"

#include "kernels/common.cuh"

namespace blr::kern {

namespace {

constexpr int kThreads = 256;

__global__ void block_mix_kernel(const float* __restrict__ in, long long in_sa, long long in_st,
                                 const float* __restrict__ s, long long s_sa, long long s_st, float* __restrict__ out,
                                 int T, int rows, int cols, bool scale_rows) {
  const int a = blockIdx.y;
  const long long n = static_cast<long long>(rows) * cols;
  const long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n) return;
  const int m = static_cast<int>(e / cols), c = static_cast<int>(e % cols);
  const int si = scale_rows ? m : c;
  float acc = 0.0f;
  for (int t = 0; t < T; ++t) acc += in[a * in_sa + t * in_st + e] * s[a * s_sa + t * s_st + si];
  out[a * n + e] = acc;
}

__global__ void gram_mix_kernel(const float* __restrict__ g, const float* __restrict__ s, long long s_sa,
                                long long s_st, float* __restrict__ out, int T, int r) {
  const int a = blockIdx.y;
  const long long n = static_cast<long long>(r) * r;
  const long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n) return;
  const int x = static_cast<int>(e / r), y = static_cast<int>(e % r);
  float acc = 0.0f;
  for (int t = 0; t < T; ++t) {
    const float* st = s + a * s_sa + t * s_st;
    acc += g[t * n + e] * (st[x] * st[y]);
  }
  out[a * n + e] = acc;
}

__global__ void hadamard_kernel(const float* __restrict__ gu, const float* __restrict__ gv, float* __restrict__ out,
                                int b, int r) {
  const int kj = blockIdx.y, k = kj / b, j = kj % b;
  const long long n = static_cast<long long>(r) * r;
  const long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n) return;
  out[kj * n + e] = gu[k * n + e] * gv[j * n + e];
}

__global__ void col_dot_kernel(const float* __restrict__ u, const float* __restrict__ p, float* __restrict__ d, int b,
                               int rows, int r) {
  const int kj = blockIdx.y, k = kj / b;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= r) return;
  const float* uk = u + static_cast<long long>(k) * rows * r;
  const float* pkj = p + static_cast<long long>(kj) * rows * r;
  float acc = 0.0f;
  for (int m = 0; m < rows; ++m) acc += uk[static_cast<long long>(m) * r + c] * pkj[static_cast<long long>(m) * r + c];
  d[static_cast<long long>(kj) * r + c] = acc;
}

// Block-wide sum of one double per thread (blockDim.x == kThreads, a power of two).
__device__ double block_sum(double v, double* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
    __syncthreads();
  }
  const double total = sh[0];
  __syncthreads();
  return total;
}

__global__ void dots_partial_kernel(const float* __restrict__ x1, const float* __restrict__ y1, long long n1, bool diff1,
                                    const float* __restrict__ x2, const float* __restrict__ y2, long long n2,
                                    double* __restrict__ partials) {
  __shared__ double sh[kThreads];
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  const long long first = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  double s1 = 0.0, s2 = 0.0;
  for (long long i = first; i < n1; i += stride) {
    const double a = x1[i], b = y1[i];
    s1 += diff1 ? (a - b) * (a - b) : a * b;
  }
  for (long long i = first; i < n2; i += stride) s2 += static_cast<double>(x2[i]) * y2[i];
  s1 = block_sum(s1, sh);
  s2 = block_sum(s2, sh);
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = s1;
    partials[gridDim.x + blockIdx.x] = s2;
  }
}

__global__ void dots_final_kernel(const double* __restrict__ partials, int nblocks, double a2, double delta,
                                  double* __restrict__ out) {
  __shared__ double sh[kThreads];
  double s1 = 0.0, s2 = 0.0;
  for (int i = threadIdx.x; i < nblocks; i += blockDim.x) {
    s1 += partials[i];
    s2 += partials[nblocks + i];
  }
  s1 = block_sum(s1, sh);
  s2 = block_sum(s2, sh);
  if (threadIdx.x == 0) {
    out[0] = s1;
    out[1] = s2;
    out[2] = delta * sqrt(fmax(a2 - 2.0 * s1 + s2, 0.0));
  }
}

// One thread block per matrix: trace (double), then the damping on the diagonal.
__global__ void add_diag_kernel(float* __restrict__ m, int r, const double* __restrict__ eps, double floor_rel,
                                float* __restrict__ eff) {
  __shared__ double sh[kThreads];
  float* mi = m + static_cast<long long>(blockIdx.x) * r * r;
  double tr = 0.0;
  for (int i = threadIdx.x; i < r; i += blockDim.x) tr += mi[static_cast<long long>(i) * r + i];
  tr = block_sum(tr, sh);  // ends with __syncthreads: every read of the diagonal is done
  const float e = static_cast<float>(*eps + floor_rel * tr / r + 1e-30);
  for (int i = threadIdx.x; i < r; i += blockDim.x) mi[static_cast<long long>(i) * r + i] += e;
  if (threadIdx.x == 0) eff[blockIdx.x] = e;
}

__global__ void damped_rhs_kernel(const float* y, const float* __restrict__ x, const float* __restrict__ eff,
                                  float* rhs, long long len) {
  const long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= len) return;
  const long long i = static_cast<long long>(blockIdx.y) * len + e;
  rhs[i] = y[i] + eff[blockIdx.y] * x[i];
}

__global__ void relax_kernel(float* __restrict__ x, const float* __restrict__ sol, long long n, float a) {
  const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = (1.0f - a) * x[i] + a * sol[i];
}

__global__ void flag_nonzero_kernel(const int* __restrict__ info, int n, int* __restrict__ flag) {
  for (int i = threadIdx.x; i < n; i += blockDim.x)
    if (info[i] != 0) flag[0] = 1;
}

}  // namespace

cudaError_t blast_block_mix(const float* in, long long in_sa, long long in_st, const float* s, long long s_sa,
                            long long s_st, float* out, int A, int T, int rows, int cols, bool scale_rows,
                            cudaStream_t stream) {
  if (A <= 0 || rows <= 0 || cols <= 0) return cudaSuccess;
  const dim3 grid(ceil_div(static_cast<long long>(rows) * cols, kThreads), A);
  block_mix_kernel<<<grid, kThreads, 0, stream>>>(in, in_sa, in_st, s, s_sa, s_st, out, T, rows, cols, scale_rows);
  return cudaGetLastError();
}

cudaError_t blast_gram_mix(const float* g, const float* s, long long s_sa, long long s_st, float* out, int A, int T,
                           int r, cudaStream_t stream) {
  if (A <= 0 || r <= 0) return cudaSuccess;
  const dim3 grid(ceil_div(static_cast<long long>(r) * r, kThreads), A);
  gram_mix_kernel<<<grid, kThreads, 0, stream>>>(g, s, s_sa, s_st, out, T, r);
  return cudaGetLastError();
}

cudaError_t blast_hadamard(const float* gu, const float* gv, float* out, int b, int r, cudaStream_t stream) {
  if (b <= 0 || r <= 0) return cudaSuccess;
  const dim3 grid(ceil_div(static_cast<long long>(r) * r, kThreads), b * b);
  hadamard_kernel<<<grid, kThreads, 0, stream>>>(gu, gv, out, b, r);
  return cudaGetLastError();
}

cudaError_t blast_col_dot(const float* u, const float* p, float* d, int b, int p_rows, int r, cudaStream_t stream) {
  if (b <= 0 || r <= 0) return cudaSuccess;
  const dim3 grid(ceil_div(r, 128), b * b);
  col_dot_kernel<<<grid, 128, 0, stream>>>(u, p, d, b, p_rows, r);
  return cudaGetLastError();
}

cudaError_t blast_dots(const float* x1, const float* y1, long long n1, bool diff1, const float* x2, const float* y2,
                       long long n2, double a2, double delta, double* partials, double* out, cudaStream_t stream) {
  dots_partial_kernel<<<kDotBlocks, kThreads, 0, stream>>>(x1, y1, n1, diff1, x2, y2, n2, partials);
  dots_final_kernel<<<1, kThreads, 0, stream>>>(partials, kDotBlocks, a2, delta, out);
  return cudaGetLastError();
}

cudaError_t blast_add_diag(float* m, int count, int r, const double* eps, double floor_rel, float* eff,
                           cudaStream_t stream) {
  if (count <= 0 || r <= 0) return cudaSuccess;
  add_diag_kernel<<<count, kThreads, 0, stream>>>(m, r, eps, floor_rel, eff);
  return cudaGetLastError();
}

cudaError_t blast_damped_rhs(const float* y, const float* x, const float* eff, float* rhs, int count, long long len,
                             cudaStream_t stream) {
  if (count <= 0 || len <= 0) return cudaSuccess;
  const dim3 grid(ceil_div(len, kThreads), count);
  damped_rhs_kernel<<<grid, kThreads, 0, stream>>>(y, x, eff, rhs, len);
  return cudaGetLastError();
}

cudaError_t blast_relax(float* x, const float* sol, long long n, float a, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  relax_kernel<<<ceil_div(n, kThreads), kThreads, 0, stream>>>(x, sol, n, a);
  return cudaGetLastError();
}

cudaError_t blast_flag_nonzero(const int* info, int n, int* flag, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  flag_nonzero_kernel<<<1, kThreads, 0, stream>>>(info, n, flag);
  return cudaGetLastError();
}

}  // namespace blr::kern
