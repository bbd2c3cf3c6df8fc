// BLAST stage 1 (z_k = Σ_j s_kj ⊙ (x_j·V_jᵀ), see blr_blast.h) for one (token tile × rank slice), as a
// device function of the stage-1 kernel (blr_blast.cu, one tile per CTA).
//
// The CTA runs the tensor-core mainloop over b segments (segment j: K = i/b columns of x against V_j's BN
// rows). At the end of each segment the warps park y_j in shared memory (fp32 or 16-bit; rows padded so
// the mixing reads are conflict-free). Then every warp mixes: a lane holds y_0..y_{b-1} of its rows × 4
// features in registers (b <= BMAX, unrolled with guards) and, for each output block k, reads
// s_k0..s_k{b-1} for its 4 features (8 distinct addresses per warp: one shared-memory wavefront) and
// accumulates b² FMAs per element in fp32 before one rounding to the storage type. z is written once,
// [tokens, b, r] row-major, which is exactly what the second stage's batched U GEMM reads.
#pragma once

#include <type_traits>

#include "kernels/blr_blast.h"
#include "kernels/blr_tile.cuh"
#include "kernels/common.cuh"

namespace blr::kern::detail {

struct BlastParams {
  const void* x;
  long long ldx;
  const void* V;
  const void* S;
  void* z;
  int M, b, r, ib;
  int m_tiles, n_tiles;  // token tiles and rank slices; tile t = (t / n_tiles, t % n_tiles): slice fastest, so
                         // CTAs sharing x rows run together; CTA c takes tiles c, c + gridDim.x, ...
  int vec_store;   // z rows allow 8-byte stores of 4 elements (r % 4 == 0)
  int wait_first;  // griddepcontrol.wait before reading anything (first kernel of a layer under PDL)
};

// Host side (blr_blast.cu): the kernel parameters for `a` with m_tiles token tiles and n_tiles rank slices.
BlastParams make_blast_params(const BlastStage1Args& a, int m_tiles, int n_tiles, bool wait_first);
// Arguments valid and the shape one the tensor-core tile takes (dtype, b <= 16, aligned rows).
bool blast_stage1_tc_args_ok(const BlastStage1Args& a);

template <typename T>
__device__ __forceinline__ void store4(T* dst, const float (&v)[4], int valid, bool vec) {
  if (vec && valid >= 4) {
    uint2 w;
    w.x = tile::pack2<T>(v[0], v[1]);
    w.y = tile::pack2<T>(v[2], v[3]);
    *reinterpret_cast<uint2*>(dst) = w;
  } else {
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (e < valid) dst[e] = from_f32<T>(v[e]);
  }
}

// The y_j stash: fp32 (exact) or the 16-bit storage type (half the shared memory, which is what lets
// b=9 use 128×64 tiles; y_j is then rounded once before mixing, as PyTorch's bf16 BLAST does).
__device__ __forceinline__ void stash_store2(float* p, float a, float b) { *reinterpret_cast<float2*>(p) = make_float2(a, b); }
template <typename T>
__device__ __forceinline__ void stash_store2(T* p, float a, float b) {
  *reinterpret_cast<uint32_t*>(p) = tile::pack2<T>(a, b);
}
__device__ __forceinline__ float4 stash_load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 stash_load4(const __nv_bfloat16* p) {
  const uint2 w = *reinterpret_cast<const uint2*>(p);
  const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w.x));
  const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w.y));
  return make_float4(lo.x, lo.y, hi.x, hi.y);
}
__device__ __forceinline__ float4 stash_load4(const __half* p) {
  const uint2 w = *reinterpret_cast<const uint2*>(p);
  const float2 lo = __half22float2(*reinterpret_cast<const __half2*>(&w.x));
  const float2 hi = __half22float2(*reinterpret_cast<const __half2*>(&w.y));
  return make_float4(lo.x, lo.y, hi.x, hi.y);
}
// Stash row stride in elements: padded so a warp's fragment stores and the mixing reads spread over banks.
template <typename ST, int BN>
constexpr int stash_ld() {
  return BN + (sizeof(ST) == 4 ? 4 : 8);
}

// G warp groups of WM×WN warps each; group g runs input blocks g, g+G, ... through its own pipeline, so a
// CTA's serial K loop is ceil(b/G)·(i/b) long instead of i (what bounds latency at 197–512 tokens).
// ST: element type of the y stash (fp32, or the 16-bit storage type: y rounded once, half the space).
// SST: element type of the S slice in shared memory (fp32, or the storage type T itself: S is a weight held
// in T, so keeping it in T loses nothing and halves its space; it is widened when read).
template <typename T, int BM_, int BN_, int WM, int WN, int STAGES, int BMAX, int G, typename ST, typename SST = float>
struct BlastTile {
  using Core = tile::TcCore<T, BM_, BN_, WM, WN, STAGES>;
  static constexpr int BM = BM_, BN = BN_;
  static constexpr int kThreads = G * Core::kThreads;
  static constexpr int kSld = stash_ld<ST, BN>();
  // Dynamic shared memory for b blocks: G pipelines, the y stash, the S slice.
  static constexpr int smem_bytes(int b) {
    return G * Core::kPipeBytes + b * BM * kSld * static_cast<int>(sizeof(ST)) +
           b * b * BN * static_cast<int>(sizeof(SST));
  }

  // Mixing: a lane owns kMixRows rows × 4 features. Two rows amortise each S read over more FMAs; with
  // several warp groups there are enough warps to give each one row (more items, fewer registers).
  static constexpr int kMixRows = G > 1 ? 1 : 2;
  static_assert(BM % (4 * kMixRows) == 0 && BN % 32 == 0, "mixing maps 4·kMixRows rows x 32 features per item");
  static_assert(G >= 1 && G <= 8, "named barriers 1..G");

  __device__ static ST* stash_of(const BlastParams&, char* smem) {
    return reinterpret_cast<ST*>(smem + G * Core::kPipeBytes);  // [b][BM][kSld]
  }
  __device__ static SST* s_of(const BlastParams& p, char* smem) {
    return reinterpret_cast<SST*>(stash_of(p, smem) + p.b * BM * kSld);  // [b·b][BN]: s_kj here
  }

  // This thread's warp group: its ring, named barrier and share of the b input blocks (g, g+G, ...).
  __device__ static typename Core::Group group_of() {
    const int group = threadIdx.x / Core::kThreads;
    return typename Core::Group{static_cast<int>(threadIdx.x) - group * Core::kThreads, G > 1 ? 1 + group : 0, group,
                                G};
  }
  __device__ static char* ring_of(char* smem) { return smem + (threadIdx.x / Core::kThreads) * Core::kPipeBytes; }

  __device__ static tile::Operand operand_x(const BlastParams& p, int m0) {
    return tile::Operand{static_cast<const char*>(p.x) + 2LL * m0 * p.ldx, 2LL * p.ldx, 2LL * p.ib, p.M - m0};
  }
  __device__ static tile::Operand operand_v(const BlastParams& p, int n0) {
    return tile::Operand{static_cast<const char*>(p.V) + 2LL * n0 * p.ib, 2LL * p.ib, 2LL * p.r * p.ib, p.r - n0};
  }

  // S slice of rank slice n0 into shared memory (a weight: safe to read before any dependency wait).
  __device__ static void load_s(const BlastParams& p, int n0, char* smem) {
    SST* ss = s_of(p, smem);
    const T* S = static_cast<const T*>(p.S);
    const int b = p.b, r = p.r;
    for (int idx = threadIdx.x; idx < b * b * BN; idx += kThreads) {
      const int kj = idx / BN, c = idx - kj * BN;
      if constexpr (std::is_same<SST, float>::value)
        ss[idx] = n0 + c < r ? to_f32(S[kj * r + n0 + c]) : 0.0f;
      else
        ss[idx] = n0 + c < r ? S[kj * r + n0 + c] : from_f32<T>(0.0f);
    }
  }

  // The tensor-core pass of one tile: y_j for this group's blocks j, each parked in the stash.
  __device__ static void gemm(const BlastParams& p, int m0, int n0, char* smem) {
    const typename Core::Group grp = group_of();
    const int lane = grp.tid & 31, gwarp = grp.tid >> 5;
    const int wm0 = (gwarp / WN) * Core::kWarpM, wn0 = (gwarp % WN) * Core::kWarpN;
    ST* stash = stash_of(p, smem);
    typename Core::Acc acc;
    Core::zero(acc);
    Core::mainloop(ring_of(smem), operand_x(p, m0), operand_v(p, n0), p.ib, p.b, grp, acc,
                   [&](int seg, typename Core::Acc& a) {
                     ST* ys = stash + seg * BM * kSld;
#pragma unroll
                     for (int mi = 0; mi < Core::MI; ++mi)
#pragma unroll
                       for (int ni = 0; ni < Core::NI; ++ni) {
                         const int row = wm0 + mi * 16 + (lane >> 2), col = wn0 + ni * 8 + (lane & 3) * 2;
                         stash_store2(ys + row * kSld + col, a[mi][ni][0], a[mi][ni][1]);
                         stash_store2(ys + (row + 8) * kSld + col, a[mi][ni][2], a[mi][ni][3]);
                       }
                   });
    if constexpr (G > 1) {
      // Every group now passes the same number of its named barriers (one per k-tile of the busiest
      // group, which has ceil(b/G) input blocks). Nothing depends on this for correctness: each group's
      // barriers order only its own ring, and __syncthreads() follows. It is for compute-sanitizer's
      // racecheck, which loses track of the CTA-wide barriers that follow when groups pass unequal numbers
      // of named barriers and then reports the next tile's S/stash writes as races against this tile's mix
      // (tests/sanitizer/named_barrier_probe.cu shows it on a race-free kernel; H100, 2026-11-27). The
      // extra barriers cost nothing measurable: the group would wait at __syncthreads() anyway.
      const int kt = (p.ib + tile::kBK - 1) / tile::kBK;
      const int mine = grp.seg_start < p.b ? (p.b - grp.seg_start + G - 1) / G : 0;
      const int most = (p.b + G - 1) / G;
      for (int i = mine * kt; i < most * kt; ++i) Core::group_sync(grp.bar);
    }
  }

  // z_k = Σ_j s_kj ⊙ y_j for every k of one tile, from the stash and the S slice, stored to global memory.
  __device__ static void mix(const BlastParams& p, int m0, int n0, char* smem) {
    constexpr int kColGroups = BN / 32;
    constexpr int kItems = (BM / (4 * kMixRows)) * kColGroups;
    constexpr int kWarps = kThreads / 32;
    const ST* stash = stash_of(p, smem);
    const SST* ss = s_of(p, smem);
    const int b = p.b, r = p.r;
    const int tid = threadIdx.x, lane = tid & 31;
    const int warp = tid >> 5, rg = lane >> 3, cq = lane & 7;
    T* z = static_cast<T*>(p.z);
    const long long ldz = static_cast<long long>(b) * r;
    const bool vec = p.vec_store != 0;
    for (int it = warp; it < kItems; it += kWarps) {
      const int ir = it / kColGroups, ic = it - ir * kColGroups;
      const int col = ic * 32 + cq * 4, gc = n0 + col;
      const int row0 = ir * (4 * kMixRows) + rg;  // rows row0 + 4·rr
      float y[BMAX][kMixRows][4];
#pragma unroll
      for (int j = 0; j < BMAX; ++j) {
        if (j < b) {
#pragma unroll
          for (int rr = 0; rr < kMixRows; ++rr) {
            const float4 v = stash_load4(stash + (j * BM + row0 + 4 * rr) * kSld + col);
            y[j][rr][0] = v.x;
            y[j][rr][1] = v.y;
            y[j][rr][2] = v.z;
            y[j][rr][3] = v.w;
          }
        }
      }
      for (int k = 0; k < b; ++k) {
        float o[kMixRows][4] = {};
#pragma unroll
        for (int j = 0; j < BMAX; ++j) {
          if (j < b) {
            const float4 s = stash_load4(ss + (k * b + j) * BN + col);
#pragma unroll
            for (int rr = 0; rr < kMixRows; ++rr) {
              o[rr][0] = fmaf(s.x, y[j][rr][0], o[rr][0]);
              o[rr][1] = fmaf(s.y, y[j][rr][1], o[rr][1]);
              o[rr][2] = fmaf(s.z, y[j][rr][2], o[rr][2]);
              o[rr][3] = fmaf(s.w, y[j][rr][3], o[rr][3]);
            }
          }
        }
#pragma unroll
        for (int rr = 0; rr < kMixRows; ++rr) {
          const int gm = m0 + row0 + 4 * rr;
          if (gm < p.M && gc < r) store4<T>(z + gm * ldz + k * r + gc, o[rr], r - gc, vec);
        }
      }
    }
  }

  // Tiles blockIdx.x, blockIdx.x + gridDim.x, ... (rank slice fastest) with the whole CTA. A CTA that
  // owns several tiles issues the next tile's first ring of copies before mixing the current one, so the
  // mix (CUDA cores, shared memory) overlaps the next tile's pipeline fill instead of leaving the SM's
  // memory pipe idle. wait_a: see TcCore::prologue (only the first tile waits).
  template <class WaitA>
  __device__ static void run_tiles(const BlastParams& p, char* smem, WaitA&& wait_a) {
    const int tiles = p.m_tiles * p.n_tiles;
    int t = blockIdx.x;
    if (t >= tiles) return;
    const typename Core::Group grp = group_of();
    char* ring = ring_of(smem);
    int m0 = (t / p.n_tiles) * BM, n0 = (t % p.n_tiles) * BN;
    load_s(p, n0, smem);
    Core::prologue(ring, operand_x(p, m0), operand_v(p, n0), p.ib, p.b, grp, static_cast<WaitA&&>(wait_a));
    for (;;) {
      gemm(p, m0, n0, smem);
      __syncthreads();  // every group's y_j tiles and the S slice are visible to all warps
      const int next = t + static_cast<int>(gridDim.x);
      const int nm0 = (next / p.n_tiles) * BM, nn0 = (next % p.n_tiles) * BN;
      // The rings are free (each group's mainloop ended with all copies landed and read).
      if (next < tiles) Core::prologue(ring, operand_x(p, nm0), operand_v(p, nn0), p.ib, p.b, grp, [] {});
      mix(p, m0, n0, smem);
      if (next >= tiles) break;
      __syncthreads();  // the mix is done with the stash and the S slice
      load_s(p, nn0, smem);  // visible to the next mix through the barrier after the next gemm
      t = next;
      m0 = nm0;
      n0 = nn0;
    }
  }
};

}  // namespace blr::kern::detail
