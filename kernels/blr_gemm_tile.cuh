// One tensor-core tile of the batched block GEMM (see blr_gemm.h for the math), as a device function of
// the GEMM kernel of blr_gemm.cu (one tile per CTA; the group/wait parameters let a CTA hold several warp
// groups, each computing its own tile, with its own wait for the A operand).
//
// Tile = mainloop of blr_tile.cuh, then the epilogue adds bias and applies the activation on the fp32
// accumulators in registers, parks the tile in shared memory as 16-bit values (row stride BN+8 elements:
// a warp's 4-byte fragment stores then cover all 32 banks once), and writes it out in 16-byte chunks along
// rows (a run of the permuted layout is a multiple of 8 columns, so a chunk never straddles two runs).
#pragma once

#include <algorithm>

#include "kernels/blr_gemm.h"
#include "kernels/blr_tile.cuh"
#include "kernels/common.cuh"

namespace blr::kern::detail {

struct GemmParams {
  const void* A;
  long long lda, a_batch;
  const void* B;
  long long ldb, b_batch;
  void* C;
  long long ldc, c_batch;
  long long g_stride;
  const void* bias;
  long long bias_batch;
  int M, N, K, g;
  int m_tiles, n_tiles;  // stand-alone kernel: grid.x = m_tiles·n_tiles (n fastest), grid.y = batch
  int batch;
  int act;
  int vec_store;   // 16-byte stores allowed (aligned C, ldc, c_batch, g, g_stride)
  int wait_first;  // griddepcontrol.wait before reading anything (first kernel of a layer under PDL)
};

// Host side (blr_gemm.cu): the kernel parameters for `a` with the given tiling.
GemmParams make_gemm_params(const BlockGemmArgs& a, int m_tiles, int n_tiles, bool wait_first);
bool block_gemm_args_sane(const BlockGemmArgs& a);

// Destination of output column c (the permuted store; g >= N makes it the identity).
template <typename T>
__device__ __forceinline__ T* out_ptr(T* row, int c, int g, long long g_stride) {
  const int grp = c / g;
  return row + grp * g_stride + (c - grp * g);
}

template <typename T, int BM_, int BN_, int WM, int WN, int STAGES>
struct GemmTile {
  using Core = tile::TcCore<T, BM_, BN_, WM, WN, STAGES>;
  using Group = typename Core::Group;
  static constexpr int BM = BM_, BN = BN_;
  static constexpr int kThreads = Core::kThreads;
  static constexpr int kCld = BN + 8;
  static constexpr int kSmem = Core::kPipeBytes > BM * kCld * 2 ? Core::kPipeBytes : BM * kCld * 2;

  // Computes tile (tile_m, tile_n) of batch q with the threads of group g, using kSmem bytes at smem.
  // wait_a: see TcCore::run. On return the group's stores are issued (not necessarily visible elsewhere).
  template <class WaitA>
  __device__ static void run(const GemmParams& p, int q, int tile_m, int tile_n, char* smem, const Group& g,
                             WaitA&& wait_a) {
    const int m0 = tile_m * BM, n0 = tile_n * BN;
    const tile::Operand A{static_cast<const char*>(p.A) + 2LL * (q * p.a_batch + static_cast<long long>(m0) * p.lda),
                          2LL * p.lda, 0, p.M - m0};
    const tile::Operand B{static_cast<const char*>(p.B) + 2LL * (q * p.b_batch + static_cast<long long>(n0) * p.ldb),
                          2LL * p.ldb, 0, p.N - n0};
    typename Core::Acc acc;
    Core::zero(acc);
    Core::run(smem, A, B, p.K, 1, g, acc, [](int, typename Core::Acc&) {}, static_cast<WaitA&&>(wait_a));

    // Epilogue 1: bias + activation in fp32, tile -> shared memory as T.
    const int tid = g.tid, lane = tid & 31, warp = tid >> 5;
    const int wm0 = (warp / WN) * Core::kWarpM, wn0 = (warp % WN) * Core::kWarpN;
    const T* bias = p.bias ? static_cast<const T*>(p.bias) + q * p.bias_batch : nullptr;
    const Act act = static_cast<Act>(p.act);
    uint32_t* cs32 = reinterpret_cast<uint32_t*>(smem);
#pragma unroll
    for (int ni = 0; ni < Core::NI; ++ni) {
      const int col = wn0 + ni * 8 + (lane & 3) * 2;
      const int gc = n0 + col;
      float b0 = 0.0f, b1 = 0.0f;
      if (bias) {
        if (gc < p.N) b0 = to_f32(bias[gc]);
        if (gc + 1 < p.N) b1 = to_f32(bias[gc + 1]);
      }
#pragma unroll
      for (int mi = 0; mi < Core::MI; ++mi) {
        const int row = wm0 + mi * 16 + (lane >> 2);
        cs32[(row * kCld + col) >> 1] =
            tile::pack2<T>(apply_act(act, acc[mi][ni][0] + b0), apply_act(act, acc[mi][ni][1] + b1));
        cs32[((row + 8) * kCld + col) >> 1] =
            tile::pack2<T>(apply_act(act, acc[mi][ni][2] + b0), apply_act(act, acc[mi][ni][3] + b1));
      }
    }
    Core::group_sync(g.bar);

    // Epilogue 2: shared -> global in 8-column chunks, predicated on the matrix edge.
    const T* cs = reinterpret_cast<const T*>(smem);
    T* C = static_cast<T*>(p.C) + q * p.c_batch;
    constexpr int kChunksPerRow = BN / 8;
    for (int id = tid; id < BM * kChunksPerRow; id += kThreads) {
      const int row = id / kChunksPerRow, cc = id - row * kChunksPerRow;
      const int gm = m0 + row, gc = n0 + cc * 8;
      if (gm >= p.M || gc >= p.N) continue;
      const T* src = cs + row * kCld + cc * 8;
      T* drow = C + static_cast<long long>(gm) * p.ldc;
      if (p.vec_store && gc + 8 <= p.N) {
        *reinterpret_cast<uint4*>(out_ptr(drow, gc, p.g, p.g_stride)) = *reinterpret_cast<const uint4*>(src);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e)
          if (gc + e < p.N) *out_ptr(drow, gc + e, p.g, p.g_stride) = src[e];
      }
    }
  }
};

}  // namespace blr::kern::detail
