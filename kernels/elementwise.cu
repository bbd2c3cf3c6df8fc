// Elementwise and layout kernels: activation, add with row broadcast, softmax over rows, strided copy
// with dtype conversion (rank ≤ 4), fill, nearest 2× upsample, embedding gather, sinusoidal timestep
// embedding, and softmax top-k.
//
// Why they are shaped this way. All of these are memory-bound (or tiny), so each kernel reads and writes
// every byte once with the widest aligned access the operands allow (16 bytes where pointers, strides and
// the innermost extent permit, a scalar fallback otherwise), computes in fp32, and keeps index arithmetic
// in 32 bits with FastDiv (a launch covers < 2^31 vectors; larger problems are split on the host).
// - Data movement without conversion (copy, fill, upsample, gather, and through copy patchify /
//   unpatchify) is done on raw "units" of up to 16 bytes, independent of the dtype: the innermost
//   contiguous run is re-expressed in the widest unit that divides it.
// - softmax mirrors add_layer_norm: a row cached in registers by a warp (≤ 256 vectors) or a block
//   (≤ 4096 vectors), a scalar block-per-row kernel past that; max and sum in fp32.
// - softmax_topk: one block per row. Each thread keeps a sorted top-K list (K = 8 or 16, fully unrolled so
//   it stays in registers) of the entries it visits, then k rounds of a block-wide argmax over the list
//   heads pop the global order. Ties go to the smaller index, so the result is deterministic. k > 16 uses
//   a simple k-pass selection instead.
#include "kernels/elementwise.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "kernels/vec_util.cuh"

namespace blr::kern {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t work, int64_t threads = kThreads) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(ceil_div(work, threads), int64_t{1} << 20)));
}

bool rows_vec_ok(const void* p, int64_t rs, int64_t rows, int V, int es) {
  return !p || (aligned_to(p, int64_t{V} * es) && (rows <= 1 || rs % V == 0));
}

// ---------------------------------------------------------------------------------------------------
// activation and add over [rows, cols] with row strides

template <typename T, int V, bool kAdd>
__global__ void rows_kernel(const T* a, int64_t a_rs, const T* b, int64_t b_rs, T* y, int64_t y_rs,
                            uint32_t total, FastDiv nvec_div, Act act) {
  const uint32_t nvec = nvec_div.d;
  for (uint32_t idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    const uint32_t r = nvec_div.div(idx);
    const int64_t c0 = static_cast<int64_t>(idx - r * nvec) * V;
    float v[V];
    load_vec<T, V>(a + r * a_rs + c0, v);
    if (kAdd) {
      float w[V];
      load_vec<T, V>(b + r * b_rs + c0, w);
#pragma unroll
      for (int j = 0; j < V; ++j) v[j] += w[j];
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) v[j] = apply_act(act, v[j]);
    }
    store_vec<T, V>(y + r * y_rs + c0, v);
  }
}

template <typename T, int V, bool kAdd>
cudaError_t launch_rows_v(const T* a, int64_t a_rs, const T* b, int64_t b_rs, T* y, int64_t y_rs, int64_t rows,
                          int64_t cols, Act act, cudaStream_t stream) {
  const int64_t nvec = cols / V;
  if (nvec > kMaxIndex32) return cudaErrorInvalidValue;
  const int64_t rows_per_launch = std::max<int64_t>(1, kMaxIndex32 / nvec);
  const FastDiv nd(static_cast<uint32_t>(nvec));
  for (int64_t r0 = 0; r0 < rows; r0 += rows_per_launch) {
    const int64_t nr = std::min(rows_per_launch, rows - r0);
    const int64_t total = nr * nvec;
    rows_kernel<T, V, kAdd><<<grid_for(total), kThreads, 0, stream>>>(
        a + r0 * a_rs, a_rs, kAdd ? b + r0 * b_rs : nullptr, b_rs, y + r0 * y_rs, y_rs,
        static_cast<uint32_t>(total), nd, act);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

template <bool kAdd>
cudaError_t launch_rows(const void* a, int64_t a_rs, const void* b, int64_t b_rs, void* y, int64_t y_rs,
                        int64_t rows, int64_t cols, Act act, DT dt, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (!a || !y || (kAdd && !b)) return cudaErrorInvalidValue;
  // Dense rows everywhere: one long row (no per-row index arithmetic, full vectors across row ends).
  if (rows > 1 && a_rs == cols && y_rs == cols && (!kAdd || b_rs == cols) && rows * cols <= kMaxIndex32) {
    cols *= rows;
    rows = 1;
  }
  return dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    constexpr int VM = kMaxVec<T>;
    constexpr int es = sizeof(T);
    const T* at = static_cast<const T*>(a);
    const T* bt = static_cast<const T*>(b);
    T* yt = static_cast<T*>(y);
    const bool vec = cols % VM == 0 && rows_vec_ok(a, a_rs, rows, VM, es) && rows_vec_ok(y, y_rs, rows, VM, es) &&
                     (!kAdd || rows_vec_ok(b, b_rs, rows, VM, es));
    if (vec) return launch_rows_v<T, VM, kAdd>(at, a_rs, bt, b_rs, yt, y_rs, rows, cols, act, stream);
    return launch_rows_v<T, 1, kAdd>(at, a_rs, bt, b_rs, yt, y_rs, rows, cols, act, stream);
  });
}

// ---------------------------------------------------------------------------------------------------
// softmax over rows

constexpr int kWarpRowThreads = 128;
constexpr int kBlockRowThreadsMax = 512;
constexpr int kBlockRowVecs = 8;

template <typename T, int V, int R, bool kWarpRow>
__global__ void __launch_bounds__(kWarpRow ? kWarpRowThreads : kBlockRowThreadsMax)
    softmax_cached_kernel(const T* x, int64_t x_rs, T* y, int64_t y_rs, int64_t rows, int64_t cols) {
  __shared__ float sh[32];
  using G = RowGroup<kWarpRow>;
  const int64_t row = G::row();
  if (row >= rows) return;  // warp path only: whole warps leave together
  const T* xr = x + row * x_rs;
  T* yr = y + row * y_rs;
  const int nvec = static_cast<int>(cols / V);
  const int lane = G::rank(), gs = G::size();
  float v[R][V];
  float m = -INFINITY;
#pragma unroll
  for (int k = 0; k < R; ++k) {
    const int i = lane + k * gs;
#pragma unroll
    for (int j = 0; j < V; ++j) v[k][j] = -INFINITY;
    if (i < nvec) {
      load_vec<T, V>(xr + i * V, v[k]);
#pragma unroll
      for (int j = 0; j < V; ++j) m = fmaxf(m, v[k][j]);
    }
  }
  m = G::max(m, sh);
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < R; ++k) {
    if (lane + k * gs < nvec) {
#pragma unroll
      for (int j = 0; j < V; ++j) {
        v[k][j] = expf(v[k][j] - m);
        s += v[k][j];
      }
    }
  }
  s = G::sum(s, sh);
#pragma unroll
  for (int k = 0; k < R; ++k) {
    const int i = lane + k * gs;
    if (i < nvec) {
      float o[V];
#pragma unroll
      for (int j = 0; j < V; ++j) o[j] = v[k][j] / s;
      store_vec<T, V>(yr + i * V, o);
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(256) softmax_general_kernel(const T* x, int64_t x_rs, T* y, int64_t y_rs,
                                                               int64_t cols) {
  __shared__ float sh[32];
  const T* xr = x + static_cast<int64_t>(blockIdx.x) * x_rs;
  T* yr = y + static_cast<int64_t>(blockIdx.x) * y_rs;
  float m = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, to_f32<T>(xr[c]));
  m = block_max(m, sh);
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += expf(to_f32<T>(xr[c]) - m);
  s = block_sum(s, sh);
  // Each thread reads the elements it writes (in place is safe).
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = from_f32<T>(expf(to_f32<T>(xr[c]) - m) / s);
}

template <typename T, int R>
cudaError_t launch_softmax_warp(const T* x, int64_t x_rs, T* y, int64_t y_rs, int64_t rows, int64_t cols,
                                cudaStream_t stream) {
  softmax_cached_kernel<T, kMaxVec<T>, R, true>
      <<<ceil_div(rows, kWarpRowThreads / 32), kWarpRowThreads, 0, stream>>>(x, x_rs, y, y_rs, rows, cols);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_softmax(const T* x, int64_t x_rs, T* y, int64_t y_rs, int64_t rows, int64_t cols,
                           cudaStream_t stream) {
  constexpr int V = kMaxVec<T>;
  const bool vec = cols % V == 0 && rows_vec_ok(x, x_rs, rows, V, sizeof(T)) && rows_vec_ok(y, y_rs, rows, V, sizeof(T));
  const int64_t nvec = cols / V;
  if (vec && nvec <= 32 * 1) return launch_softmax_warp<T, 1>(x, x_rs, y, y_rs, rows, cols, stream);
  if (vec && nvec <= 32 * 2) return launch_softmax_warp<T, 2>(x, x_rs, y, y_rs, rows, cols, stream);
  if (vec && nvec <= 32 * 4) return launch_softmax_warp<T, 4>(x, x_rs, y, y_rs, rows, cols, stream);
  if (vec && nvec <= 32 * 8) return launch_softmax_warp<T, 8>(x, x_rs, y, y_rs, rows, cols, stream);
  if (vec && nvec <= int64_t{kBlockRowThreadsMax} * kBlockRowVecs) {
    const int threads = static_cast<int>(
        std::min<int64_t>(kBlockRowThreadsMax, (ceil_div(nvec, kBlockRowVecs) + 31) / 32 * 32));
    softmax_cached_kernel<T, V, kBlockRowVecs, false>
        <<<static_cast<unsigned>(rows), threads, 0, stream>>>(x, x_rs, y, y_rs, rows, cols);
    return cudaGetLastError();
  }
  const int threads = cols >= 256 ? 256 : static_cast<int>((cols + 31) / 32 * 32);
  softmax_general_kernel<T><<<static_cast<unsigned>(rows), threads, 0, stream>>>(x, x_rs, y, y_rs, cols);
  return cudaGetLastError();
}

// ---------------------------------------------------------------------------------------------------
// strided copy / convert / fill over up to 4 dimensions

// 4 dims, outermost first; the innermost (index 3) moves fastest.
struct Dims4 {
  int64_t size[4];
  int64_t ss[4];  // source strides (in the kernel's units)
  int64_t ds[4];  // destination strides
};

struct Dims4Div {
  FastDiv d3, d2, d1;  // divide by size[3], size[2], size[1]
};

__device__ __forceinline__ void dims4_offsets(uint32_t idx, const Dims4& s, const Dims4Div& dv, int64_t& so,
                                              int64_t& dof) {
  uint32_t q = dv.d3.div(idx);
  const uint32_t i3 = idx - q * dv.d3.d;
  uint32_t q2 = dv.d2.div(q);
  const uint32_t i2 = q - q2 * dv.d2.d;
  const uint32_t i0 = dv.d1.div(q2);
  const uint32_t i1 = q2 - i0 * dv.d1.d;
  so = i0 * s.ss[0] + i1 * s.ss[1] + i2 * s.ss[2] + i3 * s.ss[3];
  dof = i0 * s.ds[0] + i1 * s.ds[1] + i2 * s.ds[2] + i3 * s.ds[3];
}

template <typename U>
__global__ void copy_units_kernel(const U* __restrict__ src, U* __restrict__ dst, Dims4 s, Dims4Div dv,
                                  uint32_t total) {
  for (uint32_t idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    int64_t so, dof;
    dims4_offsets(idx, s, dv, so, dof);
    dst[dof] = src[so];
  }
}

template <typename U>
__global__ void fill_units_kernel(U* __restrict__ dst, U value, Dims4 s, Dims4Div dv, uint32_t total) {
  for (uint32_t idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    int64_t so, dof;
    dims4_offsets(idx, s, dv, so, dof);
    dst[dof] = value;
  }
}

// Innermost dimension in vectors of V elements (V = 1: scalar).
template <typename Ti, typename To, int V>
__global__ void convert_kernel(const Ti* __restrict__ src, To* __restrict__ dst, Dims4 s, Dims4Div dv,
                               uint32_t total) {
  for (uint32_t idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    int64_t so, dof;
    dims4_offsets(idx, s, dv, so, dof);
    float v[V];
    if (V == 1) {
      v[0] = to_f32<Ti>(src[so]);
      dst[dof] = from_f32<To>(v[0]);
    } else {
      load_vec<Ti, V>(src + so * V, v);
      store_vec<To, V>(dst + dof * V, v);
    }
  }
}

Dims4 pad_dims(const StridedShape& s) {
  Dims4 d;
  const int pad = kMaxCopyRank - s.rank;
  for (int i = 0; i < kMaxCopyRank; ++i) {
    const bool real = i >= pad;
    d.size[i] = real ? s.size[i - pad] : 1;
    d.ss[i] = real ? s.src_stride[i - pad] : 0;
    d.ds[i] = real ? s.dst_stride[i - pad] : 0;
  }
  return d;
}

// Largest multiple m of the element (m·elem_bytes ≤ 16, power of two) such that the innermost run can be
// read and written in units of m elements: both innermost strides 1, m | size[3], pointers aligned and
// every other stride (of a dimension longer than 1) a multiple of m. src may be null (fill).
int64_t unit_multiple(const Dims4& d, const void* src, const void* dst, int elem_bytes, int max_bytes = 16) {
  if (d.ds[3] != 1 || (src && d.ss[3] != 1) || d.size[3] <= 1) return 1;
  for (int64_t m = max_bytes / elem_bytes; m > 1; m /= 2) {
    const int64_t bytes = m * elem_bytes;
    bool ok = d.size[3] % m == 0 && aligned_to(dst, bytes) && (!src || aligned_to(src, bytes));
    for (int i = 0; i < 3 && ok; ++i)
      if (d.size[i] > 1) ok = d.ds[i] % m == 0 && (!src || d.ss[i] % m == 0);
    if (ok) return m;
  }
  return 1;
}

Dims4 in_units(Dims4 d, int64_t m) {
  if (m == 1) return d;
  d.size[3] /= m;
  for (int i = 0; i < 3; ++i) {
    d.ss[i] /= m;
    d.ds[i] /= m;
  }
  return d;
}

// Runs launch(dims, src_offset_units, dst_offset_units, total) over chunks of the outermost dimension so
// that each launch indexes fewer than 2^31 items.
template <typename F>
cudaError_t for_each_chunk(const Dims4& d, F&& launch) {
  for (int i = 0; i < 4; ++i)
    if (d.size[i] <= 0) return cudaSuccess;
  const int64_t inner = d.size[1] * d.size[2] * d.size[3];
  if (inner > kMaxIndex32 || d.size[1] > kMaxIndex32 || d.size[2] > kMaxIndex32 || d.size[3] > kMaxIndex32)
    return cudaErrorInvalidValue;
  const int64_t per = std::max<int64_t>(1, kMaxIndex32 / inner);
  for (int64_t i0 = 0; i0 < d.size[0]; i0 += per) {
    Dims4 c = d;
    c.size[0] = std::min(per, d.size[0] - i0);
    Dims4Div dv{FastDiv(static_cast<uint32_t>(c.size[3])), FastDiv(static_cast<uint32_t>(c.size[2])),
                FastDiv(static_cast<uint32_t>(c.size[1]))};
    const cudaError_t err = launch(c, dv, i0 * d.ss[0], i0 * d.ds[0], static_cast<uint32_t>(c.size[0] * inner));
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

template <typename U>
cudaError_t copy_units(const void* src, void* dst, const Dims4& d, cudaStream_t stream) {
  return for_each_chunk(d, [&](const Dims4& c, const Dims4Div& dv, int64_t so, int64_t dof, uint32_t total) {
    copy_units_kernel<U><<<grid_for(total), kThreads, 0, stream>>>(static_cast<const U*>(src) + so,
                                                                   static_cast<U*>(dst) + dof, c, dv, total);
    return cudaGetLastError();
  });
}

template <typename U>
cudaError_t fill_units(void* dst, const unsigned char (&bytes)[16], const Dims4& d, cudaStream_t stream) {
  U value;
  memcpy(&value, bytes, sizeof(U));
  return for_each_chunk(d, [&](const Dims4& c, const Dims4Div& dv, int64_t, int64_t dof, uint32_t total) {
    fill_units_kernel<U><<<grid_for(total), kThreads, 0, stream>>>(static_cast<U*>(dst) + dof, value, c, dv, total);
    return cudaGetLastError();
  });
}

cudaError_t copy_by_unit_bytes(const void* src, void* dst, int64_t unit_bytes, const Dims4& d, cudaStream_t stream) {
  switch (unit_bytes) {
    case 1: return copy_units<unsigned char>(src, dst, d, stream);
    case 2: return copy_units<unsigned short>(src, dst, d, stream);
    case 4: return copy_units<unsigned int>(src, dst, d, stream);
    case 8: return copy_units<uint2>(src, dst, d, stream);
    case 16: return copy_units<uint4>(src, dst, d, stream);
  }
  return cudaErrorInvalidValue;
}

template <typename Ti, typename To>
cudaError_t launch_convert(const void* src, void* dst, const Dims4& d, cudaStream_t stream) {
  constexpr int V = 4;  // 16 bytes of f32, 8 bytes of f16/bf16
  bool vec = d.ss[3] == 1 && d.ds[3] == 1 && d.size[3] % V == 0 && aligned_to(src, V * sizeof(Ti)) &&
             aligned_to(dst, V * sizeof(To));
  for (int i = 0; i < 3 && vec; ++i)
    if (d.size[i] > 1) vec = d.ss[i] % V == 0 && d.ds[i] % V == 0;
  const Dims4 u = in_units(d, vec ? V : 1);
  return for_each_chunk(u, [&](const Dims4& c, const Dims4Div& dv, int64_t so, int64_t dof, uint32_t total) {
    const Ti* s = static_cast<const Ti*>(src) + so * (vec ? V : 1);
    To* t = static_cast<To*>(dst) + dof * (vec ? V : 1);
    if (vec)
      convert_kernel<Ti, To, V><<<grid_for(total), kThreads, 0, stream>>>(s, t, c, dv, total);
    else
      convert_kernel<Ti, To, 1><<<grid_for(total), kThreads, 0, stream>>>(s, t, c, dv, total);
    return cudaGetLastError();
  });
}

// ---------------------------------------------------------------------------------------------------
// upsample, embedding, timestep embedding

template <typename U>
__global__ void upsample2x_kernel(const U* __restrict__ x, U* __restrict__ y, uint32_t total, FastDiv npu_div,
                                  FastDiv w_div, FastDiv h_div) {
  const uint32_t npu = npu_div.d, W = w_div.d, H = h_div.d;
  for (uint32_t idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    const uint32_t pix = npu_div.div(idx);
    const uint32_t u = idx - pix * npu;
    const uint32_t t = w_div.div(pix);
    const uint32_t ix = pix - t * W;
    const uint32_t b = h_div.div(t);
    const uint32_t iy = t - b * H;
    const U v = x[idx];
    const int64_t row = static_cast<int64_t>(2 * W) * npu;  // one output row in units
    const int64_t o = (static_cast<int64_t>(b) * 2 * H + 2 * iy) * row + static_cast<int64_t>(2 * ix) * npu + u;
    y[o] = v;
    y[o + npu] = v;
    y[o + row] = v;
    y[o + row + npu] = v;
  }
}

template <typename U>
cudaError_t launch_upsample(const void* x, void* y, int64_t B, int64_t H, int64_t W, int64_t npu,
                            cudaStream_t stream) {
  const int64_t per_sample = H * W * npu;
  if (per_sample > kMaxIndex32 || 2 * W * npu > kMaxIndex32) return cudaErrorInvalidValue;
  const int64_t per = std::max<int64_t>(1, kMaxIndex32 / per_sample);
  const FastDiv nd(static_cast<uint32_t>(npu)), wd(static_cast<uint32_t>(W)), hd(static_cast<uint32_t>(H));
  for (int64_t b0 = 0; b0 < B; b0 += per) {
    const int64_t nb = std::min(per, B - b0);
    const int64_t total = nb * per_sample;
    upsample2x_kernel<U><<<grid_for(total), kThreads, 0, stream>>>(
        static_cast<const U*>(x) + b0 * per_sample, static_cast<U*>(y) + b0 * 4 * per_sample,
        static_cast<uint32_t>(total), nd, wd, hd);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

template <typename U>
__global__ void embedding_kernel(const U* __restrict__ table, int64_t vocab, int64_t table_rs,
                                 const int32_t* __restrict__ ids, int64_t B, U* __restrict__ y, int64_t y_rs,
                                 int64_t npu) {
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    const int64_t id = ids[b];
    const bool ok = id >= 0 && id < vocab;
    U bad;
    memset(&bad, 0xff, sizeof(U));
    for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < npu;
         u += static_cast<int64_t>(gridDim.x) * blockDim.x)
      y[b * y_rs + u] = ok ? table[id * table_rs + u] : bad;
  }
}

template <typename U>
cudaError_t launch_embedding(const void* table, int64_t vocab, int64_t table_rs, const int32_t* ids, int64_t B,
                             void* y, int64_t y_rs, int64_t npu, cudaStream_t stream) {
  const dim3 grid(grid_for(npu), static_cast<unsigned>(std::min<int64_t>(B, 65535)));
  embedding_kernel<U><<<grid, kThreads, 0, stream>>>(static_cast<const U*>(table), vocab, table_rs, ids, B,
                                                      static_cast<U*>(y), y_rs, npu);
  return cudaGetLastError();
}

template <typename T>
__global__ void timestep_embedding_kernel(const float* __restrict__ t, int64_t B, T* __restrict__ y, int64_t y_rs,
                                          int64_t dim, float neg_log_period) {
  const int64_t half = dim / 2;
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    const float tb = t[b];
    for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < dim;
         j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      float v = 0.0f;
      if (j < 2 * half) {
        const int64_t i = j < half ? j : j - half;
        // Frequencies in fp32 like the reference implementations: exp(−ln(P)·i/half).
        const float f = expf(neg_log_period * static_cast<float>(i) / static_cast<float>(half));
        const float arg = tb * f;
        v = j < half ? cosf(arg) : sinf(arg);
      }
      y[b * y_rs + j] = from_f32<T>(v);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// softmax top-k

// (v, i) ranks before (w, j): larger value first, then smaller index. NaN never ranks before anything.
__device__ __forceinline__ bool ranks_before(float v, int i, float w, int j) { return v > w || (v == w && i < j); }

// Block-wide best (value, index); all threads return the same pair. sv/si hold 32 entries each.
__device__ __forceinline__ void block_best(float& v, int& i, float* sv, int* si) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, i, o);
    if (ranks_before(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) {
    sv[warp] = v;
    si[warp] = i;
  }
  __syncthreads();
  v = lane < nwarps ? sv[lane] : -INFINITY;
  i = lane < nwarps ? si[lane] : INT_MAX;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, i, o);
    if (ranks_before(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
}

// Row max and Σ exp(x − max) of one row, by the whole block.
template <typename T>
__device__ __forceinline__ void row_softmax_stats(const T* xr, int64_t cols, float* sh, float& m, float& s) {
  m = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, to_f32<T>(xr[c]));
  m = block_max(m, sh);
  s = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += expf(to_f32<T>(xr[c]) - m);
  s = block_sum(s, sh);
}

__device__ __forceinline__ void write_topk(int j, float v, int i, float m, float s, float* probs, int32_t* indices) {
  const bool found = i != INT_MAX;
  probs[j] = found ? expf(v - m) / s : NAN;
  indices[j] = found ? i : -1;
}

template <typename T, int K>
__global__ void __launch_bounds__(512) topk_list_kernel(const T* x, int64_t rs, int64_t cols, int k, float* probs,
                                                         int64_t probs_rs, int32_t* indices, int64_t indices_rs) {
  __shared__ float sh[32];
  __shared__ float sv[32];
  __shared__ int si[32];
  const T* xr = x + static_cast<int64_t>(blockIdx.x) * rs;
  // This thread's best K entries, sorted; kept in registers by full unrolling.
  float lv[K];
  int li[K];
#pragma unroll
  for (int q = 0; q < K; ++q) {
    lv[q] = -INFINITY;
    li[q] = INT_MAX;
  }
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = to_f32<T>(xr[c]);
    int i = static_cast<int>(c);
    if (ranks_before(v, i, lv[K - 1], li[K - 1])) {
#pragma unroll
      for (int q = 0; q < K; ++q) {
        if (ranks_before(v, i, lv[q], li[q])) {
          const float tv = lv[q];
          const int ti = li[q];
          lv[q] = v;
          li[q] = i;
          v = tv;
          i = ti;
        }
      }
    }
  }
  // The list head is this thread's maximum (NaN ignored, as fmaxf does), so the row max needs no extra pass.
  const float m = block_max(lv[0], sh);
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += expf(to_f32<T>(xr[c]) - m);
  s = block_sum(s, sh);
  float* pr = probs + static_cast<int64_t>(blockIdx.x) * probs_rs;
  int32_t* ir = indices + static_cast<int64_t>(blockIdx.x) * indices_rs;
  for (int j = 0; j < k; ++j) {
    float bv = lv[0];
    int bi = li[0];
    block_best(bv, bi, sv, si);
    if (bi != INT_MAX && li[0] == bi) {  // this thread owned the winner: pop it
#pragma unroll
      for (int q = 0; q + 1 < K; ++q) {
        lv[q] = lv[q + 1];
        li[q] = li[q + 1];
      }
      lv[K - 1] = -INFINITY;
      li[K - 1] = INT_MAX;
    }
    if (threadIdx.x == 0) write_topk(j, bv, bi, m, s, pr, ir);
  }
}

// Any k: k passes, each selecting the best entry ranked after the previous pick.
template <typename T>
__global__ void __launch_bounds__(512) topk_scan_kernel(const T* x, int64_t rs, int64_t cols, int k, float* probs,
                                                         int64_t probs_rs, int32_t* indices, int64_t indices_rs) {
  __shared__ float sh[32];
  __shared__ float sv[32];
  __shared__ int si[32];
  const T* xr = x + static_cast<int64_t>(blockIdx.x) * rs;
  float m, s;
  row_softmax_stats<T>(xr, cols, sh, m, s);
  float* pr = probs + static_cast<int64_t>(blockIdx.x) * probs_rs;
  int32_t* ir = indices + static_cast<int64_t>(blockIdx.x) * indices_rs;
  float pv = INFINITY;
  int pi = -1;  // previous pick; (+inf, −1) ranks before everything
  for (int j = 0; j < k; ++j) {
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float v = to_f32<T>(xr[c]);
      const int i = static_cast<int>(c);
      if (ranks_before(pv, pi, v, i) && ranks_before(v, i, bv, bi)) {
        bv = v;
        bi = i;
      }
    }
    block_best(bv, bi, sv, si);
    if (threadIdx.x == 0) write_topk(j, bv, bi, m, s, pr, ir);
    pv = bv;
    pi = bi;
    if (bi == INT_MAX) pv = -INFINITY;  // nothing left: later passes find nothing either
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// launchers

cudaError_t activation(const void* x, int64_t x_rs, void* y, int64_t y_rs, int64_t rows, int64_t cols, Act act,
                       DT dt, cudaStream_t stream) {
  return launch_rows<false>(x, x_rs, nullptr, 0, y, y_rs, rows, cols, act, dt, stream);
}

cudaError_t add(const void* a, int64_t a_rs, const void* b, int64_t b_rs, void* y, int64_t y_rs, int64_t rows,
                int64_t cols, DT dt, cudaStream_t stream) {
  return launch_rows<true>(a, a_rs, b, b_rs, y, y_rs, rows, cols, Act::None, dt, stream);
}

cudaError_t softmax(const void* x, int64_t x_rs, void* y, int64_t y_rs, int64_t rows, int64_t cols, DT dt,
                    cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (!x || !y || rows > kMaxIndex32) return cudaErrorInvalidValue;
  return dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    return launch_softmax<T>(static_cast<const T*>(x), x_rs, static_cast<T*>(y), y_rs, rows, cols, stream);
  });
}

cudaError_t copy_convert(const void* src, DT src_dt, void* dst, DT dst_dt, const StridedShape& s,
                         cudaStream_t stream) {
  if (s.rank < 0 || s.rank > kMaxCopyRank || !src || !dst) return cudaErrorInvalidValue;
  const Dims4 d = pad_dims(s);
  return dispatch_dtype(src_dt, [&](auto in_tag) {
    using Ti = decltype(in_tag);
    return dispatch_dtype(dst_dt, [&](auto out_tag) {
      using To = decltype(out_tag);
      if (sizeof(Ti) == sizeof(To) && src_dt == dst_dt) return copy_elements(src, dst, sizeof(Ti), s, stream);
      return launch_convert<Ti, To>(src, dst, d, stream);
    });
  });
}

cudaError_t copy_elements(const void* src, void* dst, int elem_bytes, const StridedShape& s, cudaStream_t stream) {
  if (s.rank < 0 || s.rank > kMaxCopyRank || !src || !dst) return cudaErrorInvalidValue;
  if (elem_bytes != 1 && elem_bytes != 2 && elem_bytes != 4 && elem_bytes != 8) return cudaErrorInvalidValue;
  const Dims4 d = pad_dims(s);
  const int64_t m = unit_multiple(d, src, dst, elem_bytes);
  return copy_by_unit_bytes(src, dst, m * elem_bytes, in_units(d, m), stream);
}

cudaError_t fill_elements(void* dst, int elem_bytes, uint64_t pattern, const StridedShape& s, cudaStream_t stream) {
  if (s.rank < 0 || s.rank > kMaxCopyRank || !dst) return cudaErrorInvalidValue;
  if (elem_bytes != 1 && elem_bytes != 2 && elem_bytes != 4 && elem_bytes != 8) return cudaErrorInvalidValue;
  Dims4 d = pad_dims(s);
  for (int i = 0; i < 4; ++i) d.ss[i] = 0;
  const int64_t m = unit_multiple(d, nullptr, dst, elem_bytes);
  // The element's bytes repeated across a 16-byte buffer (little-endian, like the device).
  unsigned char bytes[16];
  for (int i = 0; i < 16; ++i) bytes[i] = static_cast<unsigned char>(pattern >> (8 * (i % elem_bytes)));
  const Dims4 u = in_units(d, m);
  switch (m * elem_bytes) {
    case 1: return fill_units<unsigned char>(dst, bytes, u, stream);
    case 2: return fill_units<unsigned short>(dst, bytes, u, stream);
    case 4: return fill_units<unsigned int>(dst, bytes, u, stream);
    case 8: return fill_units<uint2>(dst, bytes, u, stream);
    case 16: return fill_units<uint4>(dst, bytes, u, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t upsample_nearest2x(const void* x, void* y, int64_t B, int64_t H, int64_t W, int64_t C, int elem_bytes,
                               cudaStream_t stream) {
  if (B <= 0 || H <= 0 || W <= 0 || C <= 0) return cudaSuccess;
  if (!x || !y) return cudaErrorInvalidValue;
  // Widest unit that divides a pixel (C elements) and that both pointers are aligned to.
  const int64_t pixel_bytes = C * elem_bytes;
  int64_t unit = 16;
  while (unit > 1 && (pixel_bytes % unit || !aligned_to(x, unit) || !aligned_to(y, unit))) unit /= 2;
  const int64_t npu = pixel_bytes / unit;
  switch (unit) {
    case 1: return launch_upsample<unsigned char>(x, y, B, H, W, npu, stream);
    case 2: return launch_upsample<unsigned short>(x, y, B, H, W, npu, stream);
    case 4: return launch_upsample<unsigned int>(x, y, B, H, W, npu, stream);
    case 8: return launch_upsample<uint2>(x, y, B, H, W, npu, stream);
    case 16: return launch_upsample<uint4>(x, y, B, H, W, npu, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t embedding(const void* table, int64_t vocab, int64_t table_rs, const int32_t* ids, int64_t B, void* y,
                      int64_t y_rs, int64_t C, int elem_bytes, cudaStream_t stream) {
  if (B <= 0 || C <= 0) return cudaSuccess;
  if (!table || !ids || !y) return cudaErrorInvalidValue;
  const int64_t row_bytes = C * elem_bytes;
  int64_t unit = 16;
  auto fits = [&](int64_t u) {
    return row_bytes % u == 0 && aligned_to(table, u) && aligned_to(y, u) && (table_rs * elem_bytes) % u == 0 &&
           (y_rs * elem_bytes) % u == 0;
  };
  while (unit > elem_bytes && !fits(unit)) unit /= 2;
  if (unit < elem_bytes) unit = elem_bytes;
  const int64_t m = unit / elem_bytes;  // elements per unit
  const int64_t npu = C / m, trs = table_rs / m, yrs = y_rs / m;
  switch (unit) {
    case 1: return launch_embedding<unsigned char>(table, vocab, trs, ids, B, y, yrs, npu, stream);
    case 2: return launch_embedding<unsigned short>(table, vocab, trs, ids, B, y, yrs, npu, stream);
    case 4: return launch_embedding<unsigned int>(table, vocab, trs, ids, B, y, yrs, npu, stream);
    case 8: return launch_embedding<uint2>(table, vocab, trs, ids, B, y, yrs, npu, stream);
    case 16: return launch_embedding<uint4>(table, vocab, trs, ids, B, y, yrs, npu, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t timestep_embedding(const float* t, int64_t B, void* y, int64_t y_rs, int64_t dim, float max_period,
                               DT dt, cudaStream_t stream) {
  if (B <= 0 || dim <= 0) return cudaSuccess;
  if (!t || !y || !(max_period > 0.0f)) return cudaErrorInvalidValue;
  const float neg_log_period = -logf(max_period);
  const dim3 grid(grid_for(dim), static_cast<unsigned>(std::min<int64_t>(B, 65535)));
  return dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    timestep_embedding_kernel<T><<<grid, kThreads, 0, stream>>>(t, B, static_cast<T*>(y), y_rs, dim, neg_log_period);
    return cudaGetLastError();
  });
}

cudaError_t softmax_topk(const void* logits, int64_t rs, int64_t rows, int64_t cols, int k, float* probs,
                         int64_t probs_rs, int32_t* indices, int64_t indices_rs, DT dt, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (!logits || !probs || !indices || k < 1 || k > cols || cols >= INT_MAX || rows > kMaxIndex32)
    return cudaErrorInvalidValue;
  // About 8 entries per thread for large rows; never more threads than entries (rounded to a warp).
  const int threads = static_cast<int>(std::min<int64_t>(512, std::max<int64_t>(32, (ceil_div(cols, 8) + 31) / 32 * 32)));
  return dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(logits);
    const unsigned grid = static_cast<unsigned>(rows);
    if (k <= 8)
      topk_list_kernel<T, 8><<<grid, threads, 0, stream>>>(x, rs, cols, k, probs, probs_rs, indices, indices_rs);
    else if (k <= 16)
      topk_list_kernel<T, 16><<<grid, threads, 0, stream>>>(x, rs, cols, k, probs, probs_rs, indices, indices_rs);
    else
      topk_scan_kernel<T><<<grid, threads, 0, stream>>>(x, rs, cols, k, probs, probs_rs, indices, indices_rs);
    return cudaGetLastError();
  });
}

}  // namespace blr::kern
