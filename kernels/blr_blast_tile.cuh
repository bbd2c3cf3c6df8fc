// BLAST stage 1 (z_k = Σ_j s_kj ⊙ (x_j·V_jᵀ), see blr_blast.h) for one (token tile × rank slice), as a
// device function of the stage-1 kernel (blr_blast.cu; CTAs loop over tiles).
//
// The CTA runs the tensor-core mainloop over b segments (segment j: K = i/b columns of x against V_j's BN
// rows). At the end of each segment the warps park y_j in shared memory as 16-bit values (rounded once, as
// PyTorch's bf16 BLAST does). The mix then runs on the tensor cores too: for one feature n,
// z[t, k, n] = Σ_j y_j[t, n] · s_kj[n] is a small matrix product Y_n · S_nᵀ with Y_n = [tokens × j] and
// S_n = [k × j], so every feature is one m16n8k16 mma per 16 tokens (K = the b input blocks, zero-padded to
// KJ = 8 or 16; N = the b output blocks, one or two n8 tiles). Shared-memory layouts that make this work:
//   - stash: per feature n a block of KJ rows (one per input block j) of BM consecutive tokens, so a
//     transposing ldmatrix delivers Y_n's A fragment (tokens × j) directly; the 16-byte token chunks of a
//     row are XOR-swizzled by a function of j and each feature block is padded by 16 bytes, which makes both the stash
//     writes (8 features × 4 token pairs per warp store) and the ldmatrix phases (8 rows j) conflict-free;
//   - S slice: per feature n a [k][j] block (j contiguous), loaded with plain ldmatrix as the B fragment.
// Rows j >= b of the stash and entries k >= b or j >= b of S are zero (filled once per CTA, never written),
// so the padding adds nothing. A warp mixes 8 consecutive features × 16 tokens at a time and then holds,
// for each (token, k) it owns, the values of 8 consecutive features: one 16-byte store of z, [tokens, b, r]
// row-major, which is exactly what the second stage's batched U GEMM reads.
// Why: the mix on CUDA cores (b² FMAs per element, plus the loads and conversions feeding them) issued
// ~85 % of the kernel's instructions at b = 9 (ncu, H100, 2026-11-27: 64k warp instructions per 64×64
// tile, 2.3k of them mma) while only 8 warps per SM hid latency; on the tensor cores it adds 128·(1 or 2)/i
// mma instructions per K-loop mma (one or two n8 tiles per 16 tokens × feature: 22 % for DiT's b = 9 at
// i = 1152, mostly padding, but each is one instruction) and a few hundred other instructions per warp.
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
  int vec_z;       // z rows allow 16-byte stores of 8 features (r % 8 == 0, z 16-byte aligned)
  int vec_s;       // S rows allow 16-byte loads of 8 features (r % 8 == 0, S 16-byte aligned)
  int wait_first;  // griddepcontrol.wait before reading anything (first kernel of a layer under PDL)
};

// Host side (blr_blast.cu): the kernel parameters for `a` with m_tiles token tiles and n_tiles rank slices.
BlastParams make_blast_params(const BlastStage1Args& a, int m_tiles, int n_tiles, bool wait_first);
// Arguments valid and the shape one the tensor-core tile takes (dtype, b <= 16, aligned rows).
bool blast_stage1_tc_args_ok(const BlastStage1Args& a);

// G warp groups of WM×WN warps each; group g runs input blocks g, g+G, ... through its own pipeline, so a
// CTA's serial K loop is ceil(b/G)·(i/b) long instead of i (what bounds latency at 197–512 tokens).
// KJ: input/output blocks the mix handles (8 or 16; b <= KJ), i.e. the padded K and N of its mma.
template <typename T, int BM_, int BN_, int WM, int WN, int STAGES, int KJ, int G>
struct BlastTile {
  using Core = tile::TcCore<T, BM_, BN_, WM, WN, STAGES>;
  static constexpr int BM = BM_, BN = BN_;
  static constexpr int kThreads = G * Core::kThreads;
  static constexpr int kWarps = kThreads / 32;
  static_assert(KJ == 8 || KJ == 16, "the mix pads the blocks to one or two k8 halves of an m16n8k16");
  static_assert(BM % 16 == 0 && BN % 8 == 0, "the mix takes 16 tokens x 8 features at a time");
  static_assert(G >= 1 && G <= 8, "named barriers 1..G");
  static_assert(sizeof(T) == 2, "tensor-core tile: 16-bit storage");

  // y stash: feature n -> KJ rows (input block j) of BM tokens.
  static constexpr int kRowBytes = BM * 2;
  static constexpr int kTChunks = BM / 8;  // 16-byte token chunks per row
  static constexpr int kFeatBytes = KJ * kRowBytes + 16;
  static constexpr int kStashBytes = BN * kFeatBytes;
  // S slice: feature n -> [k][j] of KJ × KJ.
  static constexpr int kSFeatBytes = KJ * KJ * 2;
  static constexpr int kSBytes = BN * kSFeatBytes;
  static constexpr int kNT = KJ == 16 ? 2 : 1;  // n8 tiles of output blocks k in the mix
  // Dynamic shared memory: G pipelines, the y stash, the S slice (independent of b).
  static constexpr int smem_bytes() { return G * Core::kPipeBytes + kStashBytes + kSBytes; }

  // Byte offset of y_j(t, n) in the stash (t even for a 4-byte word of tokens t, t+1). The token chunk is
  // XOR-ed with a function of j chosen so that the 8 rows j..j+7 of one ldmatrix phase land on 8 different
  // 16-byte bank slots whatever the row length (32, 64, 128 or 256 bytes).
  __device__ static int stash_off(int n, int j, int t) {
    constexpr int kDiv = kTChunks >= 8 ? 1 : 8 / kTChunks;
    constexpr int kMask = kTChunks >= 8 ? 7 : kTChunks - 1;
    const int phys = (t >> 3) ^ ((j / kDiv) & kMask);
    return n * kFeatBytes + j * kRowBytes + phys * 16 + (t & 7) * 2;
  }
  // Byte offset of s_kj[n] in the S slice. KJ = 16: 32-byte rows with their 16-byte halves swapped on rows
  // 4-7 of every 8 (an 8-row ldmatrix phase then hits all banks); KJ = 8: 16-byte rows, already conflict-free.
  __device__ static int s_off(int n, int k, int j) {
    if constexpr (KJ == 16) return n * kSFeatBytes + k * 32 + (((j >> 3) ^ ((k >> 2) & 1)) << 4) + (j & 7) * 2;
    else return n * kSFeatBytes + k * 16 + j * 2;
  }
  __device__ static char* stash_of(char* smem) { return smem + G * Core::kPipeBytes; }
  __device__ static char* s_of(char* smem) { return stash_of(smem) + kStashBytes; }

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

  // Stash and S slice to zero, once per CTA: the padding rows/entries (j >= b, k >= b) are never written
  // afterwards and must contribute exact zeros (a stale NaN times a zero weight would not).
  __device__ static void zero_mix_buffers(char* smem) {
    uint4* p = reinterpret_cast<uint4*>(stash_of(smem));
    constexpr int kVecs = (kStashBytes + kSBytes) / 16;
    for (int i = threadIdx.x; i < kVecs; i += kThreads) p[i] = make_uint4(0u, 0u, 0u, 0u);
  }

  // S slice of rank slice n0 into shared memory (a weight: safe to read before any dependency wait). A
  // thread copies 8 consecutive features of one s_kj (one 16-byte load) into 8 feature blocks; the 32
  // lanes of a warp take consecutive (k, j) — one feature block when b² is a multiple of 32 (b = 8, 16),
  // otherwise several, whose 128-byte-aligned starts make the 2-byte stores 2- to 8-way bank-conflicted
  // (tools/blr_kernel_index_sim.py measures it). It runs once per tile, a few hundred stores: left as is.
  __device__ static void load_s(const BlastParams& p, int n0, char* smem) {
    char* ss = s_of(smem);
    const T* S = static_cast<const T*>(p.S);
    const int b = p.b, bb = b * b, r = p.r;
    for (int idx = threadIdx.x; idx < bb * (BN / 8); idx += kThreads) {
      const int fg = idx / bb, kj = idx - fg * bb;
      const int k = kj / b, j = kj - k * b;
      const int c0 = fg * 8, gn = n0 + c0;
      const T* src = S + static_cast<long long>(kj) * r + gn;
      // Raw 16-bit patterns in registers (no addressable local array: that would go to local memory).
      uint32_t w[4] = {0u, 0u, 0u, 0u};
      if (p.vec_s && gn + 8 <= r) {
        const uint4 v = *reinterpret_cast<const uint4*>(src);
        w[0] = v.x;
        w[1] = v.y;
        w[2] = v.z;
        w[3] = v.w;
      } else {
#pragma unroll
        for (int f = 0; f < 8; ++f)
          if (gn + f < r) w[f >> 1] |= static_cast<uint32_t>(*reinterpret_cast<const uint16_t*>(src + f)) << (16 * (f & 1));
      }
#pragma unroll
      for (int f = 0; f < 8; ++f)
        *reinterpret_cast<uint16_t*>(ss + s_off(c0 + f, k, j)) = static_cast<uint16_t>(w[f >> 1] >> (16 * (f & 1)));
    }
  }

  // The tensor-core pass of one tile: y_j for this group's blocks j, each parked in the stash. A lane's
  // accumulators hold tokens (g, g+8) × features (2q, 2q+1); one shuffle with the lane of the neighbouring
  // token row turns them into 4-byte words of two consecutive tokens of one feature, the stash's layout.
  __device__ static void gemm(const BlastParams& p, int m0, int n0, char* smem) {
    const typename Core::Group grp = group_of();
    const int lane = grp.tid & 31, gwarp = grp.tid >> 5;
    const int wm0 = (gwarp / WN) * Core::kWarpM, wn0 = (gwarp % WN) * Core::kWarpN;
    const int g = lane >> 2, q = lane & 3;
    const bool odd = (g & 1) != 0;
    char* stash = stash_of(smem);
    typename Core::Acc acc;
    Core::zero(acc);
    Core::mainloop(ring_of(smem), operand_x(p, m0), operand_v(p, n0), p.ib, p.b, grp, acc,
                   [&](int seg, typename Core::Acc& a) {
#pragma unroll
                     for (int mi = 0; mi < Core::MI; ++mi)
#pragma unroll
                       for (int ni = 0; ni < Core::NI; ++ni)
#pragma unroll
                         for (int h = 0; h < 2; ++h) {
                           // (row g+8h, feature 2q) and (row g+8h, feature 2q+1). An even row keeps feature 2q
                           // and takes row g+1's value of it; an odd row keeps 2q+1 and takes row g-1's.
                           const float v0 = a[mi][ni][2 * h], v1 = a[mi][ni][2 * h + 1];
                           const float other = __shfl_xor_sync(0xffffffffu, odd ? v0 : v1, 4);
                           const uint32_t w = odd ? tile::pack2<T>(other, v1) : tile::pack2<T>(v0, other);
                           const int t = wm0 + mi * 16 + h * 8 + (g & ~1);
                           const int n = wn0 + ni * 8 + 2 * q + (odd ? 1 : 0);
                           *reinterpret_cast<uint32_t*>(stash + stash_off(n, seg, t)) = w;
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

  // z_k = Σ_j s_kj ⊙ y_j for every k of one tile, on the tensor cores (see the top of this file), stored to
  // global memory. Work item = 16 tokens × 8 features; items are spread over all warps of the CTA.
  __device__ static void mix(const BlastParams& p, int m0, int n0, char* smem) {
    constexpr int kFG = BN / 8, kItems = kFG * (BM / 16);
    const uint32_t st = tile::smem_addr(stash_of(smem)), ss = tile::smem_addr(s_of(smem));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, q = lane & 3;
    const int b = p.b, r = p.r;
    const bool second = KJ == 16 && b > 8;  // output blocks k = 8..15 exist
    T* z = static_cast<T*>(p.z);
    const long long ldz = static_cast<long long>(b) * r;
    // ldmatrix lane roles: A (transposed stash rows): lanes 0-7 / 8-15 / 16-23 / 24-31 give rows j 0-7 of
    // tokens 0-7 / j 0-7 of tokens 8-15 / j 8-15 of tokens 0-7 / j 8-15 of tokens 8-15 -> a0..a3;
    // B (S rows k): k 0-7 at j 0-7 / k 0-7 at j 8-15 / k 8-15 at j 0-7 / k 8-15 at j 8-15 -> b of two n8 tiles.
    const int a_j = (lane & 7) + ((lane >> 4) << 3), a_t = ((lane >> 3) & 1) * 8;
    const int b_k = (lane & 7) + ((lane >> 4) << 3), b_j = ((lane >> 3) & 1) * 8;
    for (int it = warp; it < kItems; it += kWarps) {
      const int fg = it % kFG, t0 = (it / kFG) * 16;
      float c[8][kNT][4];
#pragma unroll
      for (int f = 0; f < 8; ++f)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) c[f][nt][e] = 0.0f;
#pragma unroll
      for (int f = 0; f < 8; ++f) {
        const int n = fg * 8 + f;
        uint32_t a[4], b0[2], b1[2];
        if constexpr (KJ == 16) {
          tile::ldmatrix_x4_trans(a[0], a[1], a[2], a[3], st + stash_off(n, a_j, t0 + a_t));
          tile::ldmatrix_x4(b0[0], b0[1], b1[0], b1[1], ss + s_off(n, b_k, b_j));
        } else {
          tile::ldmatrix_x2_trans(a[0], a[1], st + stash_off(n, lane & 7, t0 + a_t));
          a[2] = a[3] = 0u;
          tile::ldmatrix_x1(b0[0], ss + s_off(n, lane & 7, 0));
          b0[1] = 0u;
          b1[0] = b1[1] = 0u;
        }
        tile::mma16816<T>(c[f][0], a, b0);
        if constexpr (KJ == 16) {
          if (second) tile::mma16816<T>(c[f][kNT - 1], a, b1);
        }
      }
      // c[f][nt][e] = z[t0 + g + 8(e/2), k = 2q + e%2 + 8nt, feature fg·8 + f].
      const int gn = n0 + fg * 8;
      const int valid = r - gn;
      if (valid <= 0) continue;
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int k = 2 * q + (e & 1) + 8 * nt;
          const int gm = m0 + t0 + g + 8 * (e >> 1);
          if (k >= b || gm >= p.M) continue;
          T* dst = z + gm * ldz + static_cast<long long>(k) * r + gn;
          if (p.vec_z && valid >= 8) {
            uint4 w;
            w.x = tile::pack2<T>(c[0][nt][e], c[1][nt][e]);
            w.y = tile::pack2<T>(c[2][nt][e], c[3][nt][e]);
            w.z = tile::pack2<T>(c[4][nt][e], c[5][nt][e]);
            w.w = tile::pack2<T>(c[6][nt][e], c[7][nt][e]);
            *reinterpret_cast<uint4*>(dst) = w;
          } else {
#pragma unroll
            for (int f = 0; f < 8; ++f)
              if (f < valid) dst[f] = from_f32<T>(c[f][nt][e]);
          }
        }
    }
  }

  // Tiles blockIdx.x, blockIdx.x + gridDim.x, ... (rank slice fastest) with the whole CTA. A CTA that
  // owns several tiles issues the next tile's first ring of copies before mixing the current one, so the
  // mix overlaps the next tile's pipeline fill instead of leaving the SM's memory pipe idle. wait_a: see
  // TcCore::prologue (only the first tile waits).
  template <class WaitA>
  __device__ static void run_tiles(const BlastParams& p, char* smem, WaitA&& wait_a) {
    const int tiles = p.m_tiles * p.n_tiles;
    int t = blockIdx.x;
    if (t >= tiles) return;
    const typename Core::Group grp = group_of();
    char* ring = ring_of(smem);
    int m0 = (t / p.n_tiles) * BM, n0 = (t % p.n_tiles) * BN;
    // The first ring of copies goes out before anything else (the rings are disjoint from the stash and S):
    // the zero fill and the S slice's global loads then overlap with its latency instead of preceding it
    // (ncu, 512 tokens: a third of the stall samples were in this preamble when load_s came first).
    Core::prologue(ring, operand_x(p, m0), operand_v(p, n0), p.ib, p.b, grp, static_cast<WaitA&&>(wait_a));
    zero_mix_buffers(smem);
    __syncthreads();  // the zeros land before any thread writes its part of S or the stash
    load_s(p, n0, smem);
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
