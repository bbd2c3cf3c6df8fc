// Normalisation kernels: fused residual-add + LayerNorm + affine/adaLN modulation, modulate, gated
// residual add, and GroupNorm (+ SiLU) for NHWC feature maps.
//
// Why they are shaped this way. These ops sit between the big GEMMs of DiT-XL/2 ([B·256, 1152] bf16) and
// ViT-B ([B·197, 768]); each is memory-bound, so the goal is one read and one write of every byte:
//
// - add_layer_norm: one warp per row while the row fits in a register tile of R ≤ 6 vectors of 16 bytes
//   per lane (C ≤ 192 vectors: 1536 bf16 / 768 f32 channels; DiT's 1152 bf16 channels are 144 vectors,
//   4.5 per lane), two rows per 64-thread block so that even ViT's 197 rows spread over ~100 SMs; one
//   block per row (R = 4, up to 512 threads) up to 2048 vectors; beyond that, or for rows that cannot be
//   read with aligned 16-byte loads (odd C, misaligned views), a scalar block-per-row kernel that re-reads
//   the row from L1/L2.
//   At these sizes (DiT: 512 rows, ~4.7 MB, mostly L2-resident) the kernel is bound by memory LATENCY,
//   not bandwidth: a warp's row takes one L2/HBM round trip (~1 µs under load) per dependent batch of
//   loads. So every thread issues ALL its loads — x, delta, gate and the finishing vectors (weight/bias or
//   scale/shift), R of each — before it stores or reduces anything; the data waits in registers as packed
//   words. (Loads written after a store to x or y cannot be hoisted above it by the compiler, since the
//   pointers may alias: interleaving them, as a per-vector load-add-store loop does, costs one full round
//   trip per tile slot — 10 trips for DiT, which is what made this kernel take ~12 µs instead of ~2.)
//   The statistics are two-pass from registers: mean, then Σ(x − mean)² — no E[x²] − E[x]²
//   cancellation. The residual is rounded to the storage type before the statistics, so y normalises
//   exactly the x that the next block will read.
// - modulate and gated_add are plain vectorised elementwise kernels with a per-sample broadcast; the grid
//   is (vectors of one sample, samples) so the sample index needs no division. Each thread handles one
//   vector, all its loads independent, so they have no latency chain to break.
// - group_norm (VAE decoder: C = 128..512, 32 groups, H·W up to 256², batch 1-8) cannot give one block to
//   each (sample, group): that is 32·B blocks each scanning up to 2M elements. Instead:
//     1. partial sums: the pixels of each sample are cut into chunks (≈1024 blocks in all); a block reads
//        whole pixels with coalesced vector loads, each thread owning one vector column (so one group) and
//        accumulating Σ(x − s) and Σ(x − s)² over its pixels, where s is the group's first element (a
//        shift that keeps the one-pass variance free of cancellation when |mean| ≫ std). The block folds
//        its columns into per-group partials in a fixed order.
//     2. finalize: one warp per (sample, group) sums the chunk partials in double -> mean, 1/std.
//     3. apply: one vectorised elementwise pass y = (x − mean)·rstd·w + b, then SiLU.
//   Every reduction runs in a fixed order (no float atomics), so results are bitwise reproducible.
#include "kernels/norm.h"

#include <algorithm>

#include "kernels/vec_util.cuh"

namespace blr::kern {
namespace {

// ---------------------------------------------------------------------------------------------------
// add_layer_norm

constexpr int kWarpRowThreads = 64;   // 2 rows per block on the warp path
constexpr int kWarpRowMaxR = 6;       // largest register tile (vectors per lane) of the warp path
constexpr int kBlockRowThreadsMax = 512;
constexpr int kBlockRowVecs = 4;      // R on the block path

// What the register-tile kernel applies after normalising, resolved on the host: o = n·m + a, where m is
// the LayerNorm weight or (1 + scale) and a the bias or the shift, each optional. (An affine and a
// modulation together — which no caller uses and the Ops layer rejects — go to the general kernel.)
struct LnFinish {
  const void* mul = nullptr;  // weight [C] (mul_sb = 0) or per-sample scale rows
  int64_t mul_sb = 0;
  const void* add = nullptr;  // bias [C] (add_sb = 0) or per-sample shift rows
  int64_t add_sb = 0;
  bool mul_is_scale = false;  // m = 1 + scale
};

// The packed 32-bit words of one 16-byte vector of T -> V fp32 values.
template <typename T, int V>
__device__ __forceinline__ void unpack16(const uint32_t (&w)[4], float (&out)[V]) {
  static_assert(V * sizeof(T) == 16, "one 16-byte vector");
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const uint32_t bits = sizeof(T) == 4 ? w[i] : (w[i / 2] >> (16 * (i % 2))) & 0xffffu;
    out[i] = to_f32<T>(from_bits<T>(bits));
  }
}

// Row cached in registers: thread `rank` of the row's group holds vectors rank, rank + G, ...,
// rank + (R−1)·G of the row (slots past the row's end hold zeros and are never stored).
template <typename T, int V, int R, bool kWarpRow>
__global__ void __launch_bounds__(kWarpRow ? kWarpRowThreads : kBlockRowThreadsMax)
    add_ln_cached_kernel(AddLayerNormArgs a, LnFinish f, FastDiv n_div, uint32_t rows) {
  __shared__ float sh[32];
  using G = RowGroup<kWarpRow>;
  const int64_t row = G::row();
  if (row >= rows) return;  // warp path only: whole warps leave together
  const int64_t b = n_div.div(static_cast<uint32_t>(row)), n = row - b * a.N;
  T* x = static_cast<T*>(a.x.ptr) + b * a.x.sb + n * a.x.sn;
  const T* d = a.delta.ptr ? static_cast<const T*>(a.delta.ptr) + b * a.delta.sb + n * a.delta.sn : nullptr;
  const T* gate = a.gate.ptr ? static_cast<const T*>(a.gate.ptr) + b * a.gate.sb : nullptr;
  const T* mul = f.mul ? static_cast<const T*>(f.mul) + b * f.mul_sb : nullptr;
  const T* add = f.add ? static_cast<const T*>(f.add) + b * f.add_sb : nullptr;
  T* y = static_cast<T*>(a.y.ptr) + b * a.y.sb + n * a.y.sn;

  const int nvec = static_cast<int>(a.C / V);
  const int lane = G::rank(), gs = G::size();

  // 1. Issue every load of this thread's slots at once (packed words; nothing depends on them yet).
  uint32_t xw[R][4], dw[R][4], gw[R][4], mw[R][4], aw[R][4];
#pragma unroll
  for (int k = 0; k < R; ++k) {
#pragma unroll
    for (int j = 0; j < 4; ++j) xw[k][j] = dw[k][j] = gw[k][j] = mw[k][j] = aw[k][j] = 0u;
    const int i = lane + k * gs;
    if (i < nvec) {
      load_words<4>(x + i * V, xw[k]);
      if (d) load_words<4>(d + i * V, dw[k]);
      if (gate) load_words<4>(gate + i * V, gw[k]);
      if (mul) load_words<4>(mul + i * V, mw[k]);
      if (add) load_words<4>(add + i * V, aw[k]);
    }
  }

  // 2. Residual (rounded to T, stored back at once so the stores overlap the reductions) and its sum.
  float v[R][V];
  float sum = 0.0f;
#pragma unroll
  for (int k = 0; k < R; ++k) {
    unpack16<T, V>(xw[k], v[k]);
    if (d) {
      float dv[V];
      unpack16<T, V>(dw[k], dv);
      if (gate) {
        float gv[V];
        unpack16<T, V>(gw[k], gv);
#pragma unroll
        for (int j = 0; j < V; ++j) dv[j] *= gv[j];
      }
#pragma unroll
      for (int j = 0; j < V; ++j) v[k][j] = round_to<T>(v[k][j] + dv[j]);
      if (lane + k * gs < nvec) store_vec<T, V>(x + (lane + k * gs) * V, v[k]);
    }
#pragma unroll
    for (int j = 0; j < V; ++j) sum += v[k][j];  // empty slots hold 0
  }
  const float inv_c = 1.0f / static_cast<float>(a.C);
  const float mean = G::sum(sum, sh) * inv_c;
  float sq = 0.0f;
#pragma unroll
  for (int k = 0; k < R; ++k) {
    if (lane + k * gs < nvec) {
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const float t = v[k][j] - mean;
        sq += t * t;
      }
    }
  }
  const float rstd = rsqrtf(G::sum(sq, sh) * inv_c + a.eps);

  // 3. Normalise, then ·weight or ·(1 + scale), then +bias or +shift.
#pragma unroll
  for (int k = 0; k < R; ++k) {
    const int i = lane + k * gs;
    if (i < nvec) {
      float o[V];
#pragma unroll
      for (int j = 0; j < V; ++j) o[j] = (v[k][j] - mean) * rstd;
      if (mul) {
        float m[V];
        unpack16<T, V>(mw[k], m);
#pragma unroll
        for (int j = 0; j < V; ++j) o[j] *= f.mul_is_scale ? 1.0f + m[j] : m[j];
      }
      if (add) {
        float t[V];
        unpack16<T, V>(aw[k], t);
#pragma unroll
        for (int j = 0; j < V; ++j) o[j] += t[j];
      }
      store_vec<T, V>(y + i * V, o);
    }
  }
}

// Normalised value -> output for the general kernel: affine then modulation, each part optional.
template <typename T>
__device__ __forceinline__ float finish_scalar(float o, int64_t c, const T* w, const T* bias, const T* scale,
                                               const T* shift) {
  if (w) o *= to_f32<T>(w[c]);
  if (bias) o += to_f32<T>(bias[c]);
  if (scale) o *= 1.0f + to_f32<T>(scale[c]);
  if (shift) o += to_f32<T>(shift[c]);
  return o;
}

// Any C, any alignment: one block per row, scalar accesses, the row re-read (from L1/L2) for each pass.
template <typename T>
__global__ void __launch_bounds__(256) add_ln_general_kernel(AddLayerNormArgs a) {
  __shared__ float sh[32];
  const int64_t row = blockIdx.x;
  const int64_t b = row / a.N, n = row - b * a.N;
  T* x = static_cast<T*>(a.x.ptr) + b * a.x.sb + n * a.x.sn;
  const T* d = a.delta.ptr ? static_cast<const T*>(a.delta.ptr) + b * a.delta.sb + n * a.delta.sn : nullptr;
  const T* gate = a.gate.ptr ? static_cast<const T*>(a.gate.ptr) + b * a.gate.sb : nullptr;
  const T* scale = a.scale.ptr ? static_cast<const T*>(a.scale.ptr) + b * a.scale.sb : nullptr;
  const T* shift = a.shift.ptr ? static_cast<const T*>(a.shift.ptr) + b * a.shift.sb : nullptr;
  T* y = static_cast<T*>(a.y.ptr) + b * a.y.sb + n * a.y.sn;
  const T* w = static_cast<const T*>(a.weight);
  const T* bias = static_cast<const T*>(a.bias);
  const int64_t C = a.C;

  // Pass 1: residual (each thread later re-reads exactly the elements it wrote here).
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    float xv = to_f32<T>(x[c]);
    if (d) {
      const float dv = to_f32<T>(d[c]) * (gate ? to_f32<T>(gate[c]) : 1.0f);
      const T stored = from_f32<T>(xv + dv);
      x[c] = stored;
      xv = to_f32<T>(stored);
    }
    sum += xv;
  }
  const float inv_c = 1.0f / static_cast<float>(C);
  const float mean = block_sum(sum, sh) * inv_c;
  float sq = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float t = to_f32<T>(x[c]) - mean;
    sq += t * t;
  }
  const float rstd = rsqrtf(block_sum(sq, sh) * inv_c + a.eps);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    y[c] = from_f32<T>(finish_scalar<T>((to_f32<T>(x[c]) - mean) * rstd, c, w, bias, scale, shift));
}

// True when the 16-byte vector path can read every row of every tensor of the call.
bool tokens_vec_ok(const TokensRef& t, int64_t B, int64_t N, int V, int esize) {
  if (!t.ptr) return true;
  if (!aligned_to(t.ptr, V * esize)) return false;
  if (B > 1 && t.sb % V) return false;
  if (N > 1 && t.sn % V) return false;
  return true;
}
bool sample_vec_ok(const SampleRef& s, int64_t B, int V, int esize) {
  if (!s.ptr) return true;
  return aligned_to(s.ptr, V * esize) && (B <= 1 || s.sb % V == 0);
}
bool plain_vec_ok(const void* p, int V, int esize) { return !p || aligned_to(p, V * esize); }

template <typename T, int R>
cudaError_t launch_ln_warp(const AddLayerNormArgs& a, const LnFinish& f, uint32_t rows, cudaStream_t stream) {
  constexpr int V = kMaxVec<T>;
  const unsigned blocks = ceil_div(rows, kWarpRowThreads / 32);
  add_ln_cached_kernel<T, V, R, true>
      <<<blocks, kWarpRowThreads, 0, stream>>>(a, f, FastDiv(static_cast<uint32_t>(a.N)), rows);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_add_layer_norm(const AddLayerNormArgs& a, cudaStream_t stream) {
  constexpr int V = kMaxVec<T>;
  constexpr int es = sizeof(T);
  const int64_t rows = a.B * a.N;
  const bool affine = a.weight || a.bias, modulated = a.shift.ptr || a.scale.ptr;
  const bool vec = a.C % V == 0 && !(affine && modulated) && tokens_vec_ok(a.x, a.B, a.N, V, es) &&
                   tokens_vec_ok(a.delta, a.B, a.N, V, es) && tokens_vec_ok(a.y, a.B, a.N, V, es) &&
                   sample_vec_ok(a.gate, a.B, V, es) && sample_vec_ok(a.shift, a.B, V, es) &&
                   sample_vec_ok(a.scale, a.B, V, es) && plain_vec_ok(a.weight, V, es) &&
                   plain_vec_ok(a.bias, V, es);
  const int64_t nvec = a.C / V;
  if (vec && nvec <= int64_t{kBlockRowThreadsMax} * kBlockRowVecs) {
    LnFinish f;
    if (affine) {
      f.mul = a.weight;
      f.add = a.bias;
    } else {
      f.mul = a.scale.ptr;
      f.mul_sb = a.scale.sb;
      f.mul_is_scale = true;
      f.add = a.shift.ptr;
      f.add_sb = a.shift.sb;
    }
    const uint32_t r32 = static_cast<uint32_t>(rows);
    // The smallest register tile that holds the row: R = ceil(nvec / 32) (ViT-B bf16: 3, DiT bf16: 5);
    // unused slots of a tile cost registers, not memory traffic.
    static_assert(kWarpRowMaxR == 6, "the dispatch below lists R = 1..6");
    if (nvec <= 32 * 1) return launch_ln_warp<T, 1>(a, f, r32, stream);
    if (nvec <= 32 * 2) return launch_ln_warp<T, 2>(a, f, r32, stream);
    if (nvec <= 32 * 3) return launch_ln_warp<T, 3>(a, f, r32, stream);
    if (nvec <= 32 * 4) return launch_ln_warp<T, 4>(a, f, r32, stream);
    if (nvec <= 32 * 5) return launch_ln_warp<T, 5>(a, f, r32, stream);
    if (nvec <= 32 * 6) return launch_ln_warp<T, 6>(a, f, r32, stream);
    const int threads = static_cast<int>(std::min<int64_t>(
        kBlockRowThreadsMax, (ceil_div(nvec, kBlockRowVecs) + 31) / 32 * 32));
    add_ln_cached_kernel<T, V, kBlockRowVecs, false>
        <<<r32, threads, 0, stream>>>(a, f, FastDiv(static_cast<uint32_t>(a.N)), r32);
    return cudaGetLastError();
  }
  const int threads = a.C >= 256 ? 256 : static_cast<int>((a.C + 31) / 32 * 32);
  add_ln_general_kernel<T><<<static_cast<unsigned>(rows), threads, 0, stream>>>(a);
  return cudaGetLastError();
}

// ---------------------------------------------------------------------------------------------------
// modulate and gated_add: grid.x walks the N·C/V vectors of one sample, grid.y the samples.

constexpr int kEltThreads = 256;

dim3 per_sample_grid(int64_t per_sample, int64_t B) {
  const int64_t bx = std::min<int64_t>(ceil_div(per_sample, kEltThreads), int64_t{1} << 20);
  const int64_t by = std::min<int64_t>(B, 65535);
  return dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by));
}

template <typename T, int V>
__global__ void modulate_kernel(int64_t B, uint32_t per_sample, FastDiv nvec_div, TokensRef xr, SampleRef shr,
                                SampleRef scr, TokensRef yr) {
  const uint32_t nvec = nvec_div.d;
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    const T* x = static_cast<const T*>(xr.ptr) + b * xr.sb;
    T* y = static_cast<T*>(yr.ptr) + b * yr.sb;
    const T* shift = static_cast<const T*>(shr.ptr) + b * shr.sb;
    const T* scale = static_cast<const T*>(scr.ptr) + b * scr.sb;
    for (uint32_t idx = blockIdx.x * blockDim.x + threadIdx.x; idx < per_sample; idx += gridDim.x * blockDim.x) {
      const uint32_t n = nvec_div.div(idx);
      const int64_t c0 = static_cast<int64_t>(idx - n * nvec) * V;
      float xv[V], sh[V], sc[V];
      load_vec<T, V>(x + n * xr.sn + c0, xv);
      load_vec<T, V>(shift + c0, sh);
      load_vec<T, V>(scale + c0, sc);
#pragma unroll
      for (int j = 0; j < V; ++j) xv[j] = xv[j] * (1.0f + sc[j]) + sh[j];
      store_vec<T, V>(y + n * yr.sn + c0, xv);
    }
  }
}

template <typename T, int V>
__global__ void gated_add_kernel(int64_t B, uint32_t per_sample, FastDiv nvec_div, TokensRef xr, SampleRef gr,
                                 TokensRef dr) {
  const uint32_t nvec = nvec_div.d;
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    T* x = static_cast<T*>(xr.ptr) + b * xr.sb;
    const T* d = static_cast<const T*>(dr.ptr) + b * dr.sb;
    const T* gate = gr.ptr ? static_cast<const T*>(gr.ptr) + b * gr.sb : nullptr;
    for (uint32_t idx = blockIdx.x * blockDim.x + threadIdx.x; idx < per_sample; idx += gridDim.x * blockDim.x) {
      const uint32_t n = nvec_div.div(idx);
      const int64_t c0 = static_cast<int64_t>(idx - n * nvec) * V;
      float xv[V], dv[V];
      load_vec<T, V>(x + n * xr.sn + c0, xv);
      load_vec<T, V>(d + n * dr.sn + c0, dv);
      if (gate) {
        float gv[V];
        load_vec<T, V>(gate + c0, gv);
#pragma unroll
        for (int j = 0; j < V; ++j) dv[j] *= gv[j];
      }
#pragma unroll
      for (int j = 0; j < V; ++j) xv[j] += dv[j];
      store_vec<T, V>(x + n * xr.sn + c0, xv);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// group_norm

constexpr int kGnThreads = 256;
constexpr int kGnWideThreadsMax = 1024;
constexpr int64_t kGnTargetBlocks = 1024;     // phase-1 blocks over the whole batch (≈8 per H100 SM)
constexpr int64_t kGnMinBlockElems = 8192;    // fewer elements per block is not worth a block
constexpr int kGnPixUnroll = 4;               // pixels whose loads one phase-1 thread keeps in flight

struct GnPlan {
  int64_t chunks = 1, chunk_pix = 1;
  size_t partial_bytes = 0, stats_offset = 0, total_bytes = 0;
};

GnPlan gn_plan(int64_t B, int64_t HW, int64_t C, int groups) {
  GnPlan p;
  int64_t chunks = std::min<int64_t>(ceil_div(kGnTargetBlocks, std::max<int64_t>(B, 1)),
                                     ceil_div(HW * C, kGnMinBlockElems));
  chunks = std::max<int64_t>(1, std::min<int64_t>(chunks, std::max<int64_t>(HW, 1)));
  p.chunk_pix = std::max<int64_t>(1, ceil_div(HW, chunks));
  p.chunks = std::max<int64_t>(1, ceil_div(HW, p.chunk_pix));
  p.partial_bytes = static_cast<size_t>(B * p.chunks * groups) * sizeof(float2);
  p.stats_offset = (p.partial_bytes + 255) / 256 * 256;
  p.total_bytes = p.stats_offset + static_cast<size_t>(B * groups) * sizeof(float2);
  return p;
}

// Phase 1, common layout: vectors of V channels (V divides C/groups, so a vector lies in one group),
// nvec = C/V vector columns. blockDim = pix_par·nvec threads (plus idle ones); thread t owns column
// t % nvec and walks pixels t / nvec, + pix_par, ... of its chunk.
template <typename T, int V>
__global__ void __launch_bounds__(kGnWideThreadsMax)
    gn_partial_kernel(const T* __restrict__ x, int64_t HW, int64_t C, int groups, int64_t chunk_pix,
                      float2* __restrict__ partial) {
  extern __shared__ float2 red[];  // [blockDim.x]
  const int nvec = static_cast<int>(C / V);
  const int vpg = static_cast<int>(C / groups) / V;  // vector columns per group
  const int cpg = static_cast<int>(C / groups);
  const int pix_par = static_cast<int>(blockDim.x) / nvec;
  const int64_t b = blockIdx.y, chunk = blockIdx.x;
  const int64_t p0 = chunk * chunk_pix, p1 = min(HW, p0 + chunk_pix);
  const T* xb = x + b * HW * C;
  const int t = threadIdx.x;
  const int col = t % nvec, po = t / nvec;
  float s1 = 0.0f, s2 = 0.0f;
  if (po < pix_par) {
    const float s = to_f32<T>(xb[(col / vpg) * cpg]);  // the group's first element
    // kGnPixUnroll pixels' loads in flight at once (a plain loop waits one memory round trip per pixel);
    // they are accumulated in pixel order, the same fixed order as one at a time.
    for (int64_t p = p0 + po; p < p1; p += kGnPixUnroll * pix_par) {
      float v[kGnPixUnroll][V];
#pragma unroll
      for (int u = 0; u < kGnPixUnroll; ++u)
        if (p + u * pix_par < p1) load_vec<T, V>(xb + (p + u * pix_par) * C + col * V, v[u]);
#pragma unroll
      for (int u = 0; u < kGnPixUnroll; ++u) {
        if (p + u * pix_par < p1) {
#pragma unroll
          for (int j = 0; j < V; ++j) {
            const float dv = v[u][j] - s;
            s1 += dv;
            s2 += dv * dv;
          }
        }
      }
    }
  }
  red[t] = make_float2(s1, s2);
  __syncthreads();
  // Fold the pixel lanes of each column (fixed order), then the columns of each group.
  if (t < nvec) {
    float2 acc = red[t];
    for (int q = 1; q < pix_par; ++q) {
      const float2 o = red[q * nvec + t];
      acc.x += o.x;
      acc.y += o.y;
    }
    red[t] = acc;  // only thread t reads slots t, t + nvec, ...: no race with other columns
  }
  __syncthreads();
  if (t < groups) {
    float2 acc = make_float2(0.0f, 0.0f);
    for (int k = 0; k < vpg; ++k) {
      const float2 o = red[t * vpg + k];
      acc.x += o.x;
      acc.y += o.y;
    }
    partial[(b * groups + t) * gridDim.x + chunk] = acc;
  }
}

// Phase 1 for very wide rows (C/V > 1024 vector columns): one block per (chunk, group, sample) reads that
// group's channels of each pixel. Less coalesced, but only for shapes no model here uses.
template <typename T>
__global__ void __launch_bounds__(kGnThreads)
    gn_partial_wide_kernel(const T* __restrict__ x, int64_t HW, int64_t C, int groups, int64_t chunk_pix,
                           float2* __restrict__ partial) {
  __shared__ float sh[32];
  const int64_t cpg = C / groups;
  const int64_t b = blockIdx.z, g = blockIdx.y, chunk = blockIdx.x;
  const int64_t p0 = chunk * chunk_pix, p1 = min(HW, p0 + chunk_pix);
  const T* xg = x + b * HW * C + g * cpg;
  const float s = to_f32<T>(xg[0]);
  float s1 = 0.0f, s2 = 0.0f;
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t c = threadIdx.x; c < cpg; c += blockDim.x) {
      const float dv = to_f32<T>(xg[p * C + c]) - s;
      s1 += dv;
      s2 += dv * dv;
    }
  s1 = block_sum(s1, sh);
  s2 = block_sum(s2, sh);
  if (threadIdx.x == 0) partial[(b * groups + g) * gridDim.x + chunk] = make_float2(s1, s2);
}

// Phase 2: one warp per (sample, group) sums that group's chunk partials (contiguous: partial is laid out
// [B, groups, chunks]) in double.
template <typename T>
__global__ void gn_finalize_kernel(const T* __restrict__ x, const float2* __restrict__ partial, int64_t B,
                                   int64_t HW, int64_t C, int groups, int64_t chunks, float eps,
                                   float2* __restrict__ stats) {
  const int64_t wid = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (wid >= B * groups) return;
  const int64_t b = wid / groups, g = wid - b * groups;
  const float2* pg = partial + wid * chunks;
  double s1 = 0.0, s2 = 0.0;
#pragma unroll 4
  for (int64_t k = lane; k < chunks; k += 32) {
    const float2 p = pg[k];
    s1 += p.x;
    s2 += p.y;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    s1 += __shfl_xor_sync(0xffffffffu, s1, o);
    s2 += __shfl_xor_sync(0xffffffffu, s2, o);
  }
  if (lane == 0) {
    const int64_t cpg = C / groups;
    const double n = static_cast<double>(HW * cpg);
    const double shift = to_f32<T>(x[b * HW * C + g * cpg]);
    const double m = s1 / n;
    const double var = fmax(s2 / n - m * m, 0.0);
    stats[wid] = make_float2(static_cast<float>(shift + m), static_cast<float>(1.0 / sqrt(var + eps)));
  }
}

// Phase 3: y = (x − mean)·rstd·w + b, then the activation; idx walks vectors of samples [b0, b0 + nb).
template <typename T, int V>
__global__ void gn_apply_kernel(const T* x, T* y, const T* __restrict__ w, const T* __restrict__ bias,
                                const float2* __restrict__ stats, int64_t b0, uint32_t total, FastDiv nvec_div,
                                FastDiv hw_div, FastDiv vpg_div, int groups, Act act) {
  const uint32_t nvec = nvec_div.d;
  for (uint32_t idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    const uint32_t r = nvec_div.div(idx);  // pixel row within this launch
    const uint32_t col = idx - r * nvec;
    const int64_t b = b0 + hw_div.div(r);
    const uint32_t g = vpg_div.div(col);
    const float2 st = stats[b * groups + g];
    const int64_t off = (b0 * static_cast<int64_t>(hw_div.d) + r) * static_cast<int64_t>(nvec) * V + col * V;
    float v[V], wv[V], bv[V];
    load_vec<T, V>(x + off, v);
    load_vec<T, V>(w + col * V, wv);
    load_vec<T, V>(bias + col * V, bv);
#pragma unroll
    for (int j = 0; j < V; ++j) v[j] = apply_act(act, (v[j] - st.x) * st.y * wv[j] + bv[j]);
    store_vec<T, V>(y + off, v);
  }
}

template <typename T, int V>
cudaError_t launch_group_norm_v(const T* x, T* y, const T* w, const T* bias, int64_t B, int64_t HW, int64_t C,
                                int groups, float eps, Act act, const GnPlan& plan, float2* partial,
                                float2* stats, cudaStream_t stream) {
  const int64_t nvec = C / V;
  // Phase 1.
  if (nvec <= kGnWideThreadsMax) {
    const int threads = nvec <= kGnThreads ? kGnThreads : static_cast<int>((nvec + 31) / 32 * 32);
    gn_partial_kernel<T, V><<<dim3(static_cast<unsigned>(plan.chunks), static_cast<unsigned>(B)), threads,
                              threads * sizeof(float2), stream>>>(x, HW, C, groups, plan.chunk_pix, partial);
  } else {
    gn_partial_wide_kernel<T><<<dim3(static_cast<unsigned>(plan.chunks), static_cast<unsigned>(groups),
                                     static_cast<unsigned>(B)),
                                kGnThreads, 0, stream>>>(x, HW, C, groups, plan.chunk_pix, partial);
  }
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  // Phase 2.
  gn_finalize_kernel<T><<<ceil_div(B * groups * 32, 128), 128, 0, stream>>>(x, partial, B, HW, C, groups,
                                                                         plan.chunks, eps, stats);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  // Phase 3, in launches of whole samples that keep the vector index below 2^31.
  const int64_t per_sample = HW * nvec;
  if (per_sample > kMaxIndex32) return cudaErrorInvalidValue;
  const int64_t samples_per_launch = std::max<int64_t>(1, kMaxIndex32 / per_sample);
  const FastDiv nvec_div(static_cast<uint32_t>(nvec)), hw_div(static_cast<uint32_t>(HW)),
      vpg_div(static_cast<uint32_t>(C / groups / V));
  for (int64_t b0 = 0; b0 < B; b0 += samples_per_launch) {
    const int64_t nb = std::min(samples_per_launch, B - b0);
    const int64_t total = nb * per_sample;
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(total, kGnThreads), int64_t{1} << 20));
    gn_apply_kernel<T, V><<<blocks, kGnThreads, 0, stream>>>(x, y, w, bias, stats, b0, static_cast<uint32_t>(total),
                                                            nvec_div, hw_div, vpg_div, groups, act);
    err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// launchers

cudaError_t add_layer_norm(const AddLayerNormArgs& a, DT dt, cudaStream_t stream) {
  if (a.B <= 0 || a.N <= 0 || a.C <= 0) return cudaSuccess;
  if (a.B * a.N > kMaxIndex32 || !a.x.ptr || !a.y.ptr) return cudaErrorInvalidValue;
  return dispatch_dtype(dt, [&](auto tag) { return launch_add_layer_norm<decltype(tag)>(a, stream); });
}

cudaError_t modulate(int64_t B, int64_t N, int64_t C, TokensRef x, SampleRef shift, SampleRef scale, TokensRef y,
                     DT dt, cudaStream_t stream) {
  if (B <= 0 || N <= 0 || C <= 0) return cudaSuccess;
  if (!x.ptr || !y.ptr || !shift.ptr || !scale.ptr) return cudaErrorInvalidValue;
  return dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    constexpr int es = sizeof(T);
    constexpr int VM = kMaxVec<T>;
    const bool vec = C % VM == 0 && tokens_vec_ok(x, B, N, VM, es) && tokens_vec_ok(y, B, N, VM, es) &&
                     sample_vec_ok(shift, B, VM, es) && sample_vec_ok(scale, B, VM, es);
    const int V = vec ? VM : 1;
    const int64_t per_sample = N * (C / V);
    if (per_sample > kMaxIndex32) return cudaErrorInvalidValue;
    const dim3 grid = per_sample_grid(per_sample, B);
    const FastDiv nd(static_cast<uint32_t>(C / V));
    if (vec)
      modulate_kernel<T, VM><<<grid, kEltThreads, 0, stream>>>(B, static_cast<uint32_t>(per_sample), nd, x, shift,
                                                               scale, y);
    else
      modulate_kernel<T, 1><<<grid, kEltThreads, 0, stream>>>(B, static_cast<uint32_t>(per_sample), nd, x, shift,
                                                              scale, y);
    return cudaGetLastError();
  });
}

cudaError_t gated_add(int64_t B, int64_t N, int64_t C, TokensRef x, SampleRef gate, TokensRef delta, DT dt,
                      cudaStream_t stream) {
  if (B <= 0 || N <= 0 || C <= 0) return cudaSuccess;
  if (!x.ptr || !delta.ptr) return cudaErrorInvalidValue;
  return dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    constexpr int es = sizeof(T);
    constexpr int VM = kMaxVec<T>;
    const bool vec = C % VM == 0 && tokens_vec_ok(x, B, N, VM, es) && tokens_vec_ok(delta, B, N, VM, es) &&
                     sample_vec_ok(gate, B, VM, es);
    const int V = vec ? VM : 1;
    const int64_t per_sample = N * (C / V);
    if (per_sample > kMaxIndex32) return cudaErrorInvalidValue;
    const dim3 grid = per_sample_grid(per_sample, B);
    const FastDiv nd(static_cast<uint32_t>(C / V));
    if (vec)
      gated_add_kernel<T, VM><<<grid, kEltThreads, 0, stream>>>(B, static_cast<uint32_t>(per_sample), nd, x, gate,
                                                                delta);
    else
      gated_add_kernel<T, 1><<<grid, kEltThreads, 0, stream>>>(B, static_cast<uint32_t>(per_sample), nd, x, gate,
                                                               delta);
    return cudaGetLastError();
  });
}

size_t group_norm_workspace_bytes(int64_t B, int64_t HW, int64_t C, int groups, DT) {
  if (B <= 0 || HW <= 0 || C <= 0 || groups <= 0) return 0;
  return gn_plan(B, HW, C, groups).total_bytes;
}

cudaError_t group_norm(const void* x, void* y, const void* weight, const void* bias, int64_t B, int64_t HW,
                       int64_t C, int groups, float eps, Act act, void* workspace, size_t workspace_bytes, DT dt,
                       cudaStream_t stream) {
  if (B <= 0 || HW <= 0 || C <= 0) return cudaSuccess;
  if (groups <= 0 || C % groups || !x || !y || !weight || !bias || B > 65535 || groups > 65535)
    return cudaErrorInvalidValue;
  const GnPlan plan = gn_plan(B, HW, C, groups);
  if (!workspace || workspace_bytes < plan.total_bytes || !aligned_to(workspace, 16)) return cudaErrorInvalidValue;
  float2* partial = static_cast<float2*>(workspace);
  float2* stats = reinterpret_cast<float2*>(static_cast<char*>(workspace) + plan.stats_offset);
  const int64_t cpg = C / groups;
  return dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* xt = static_cast<const T*>(x);
    T* yt = static_cast<T*>(y);
    const T* wt = static_cast<const T*>(weight);
    const T* bt = static_cast<const T*>(bias);
    // Widest vector (≤ 16 bytes) that divides the group width and that every pointer is aligned to.
    auto fits = [&](int V) {
      const int64_t bytes = V * static_cast<int64_t>(sizeof(T));
      return bytes <= 16 && cpg % V == 0 && aligned_to(x, bytes) && aligned_to(y, bytes) &&
             aligned_to(weight, bytes) && aligned_to(bias, bytes);
    };
    if (fits(8)) return launch_group_norm_v<T, (sizeof(T) <= 2 ? 8 : 4)>(xt, yt, wt, bt, B, HW, C, groups, eps,
                                                                          act, plan, partial, stats, stream);
    if (fits(4)) return launch_group_norm_v<T, 4>(xt, yt, wt, bt, B, HW, C, groups, eps, act, plan, partial, stats,
                                                  stream);
    if (fits(2)) return launch_group_norm_v<T, 2>(xt, yt, wt, bt, B, HW, C, groups, eps, act, plan, partial, stats,
                                                  stream);
    return launch_group_norm_v<T, 1>(xt, yt, wt, bt, B, HW, C, groups, eps, act, plan, partial, stats, stream);
  });
}

}  // namespace blr::kern
