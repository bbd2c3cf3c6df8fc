// SIMT (CUDA-core, fp32 FMA) mainloop for the BLR stages: the reference-quality path used for f32
// storage (tight parity tests) and for shapes the tensor-core path cannot take (unaligned rows, K not a
// multiple of 8, huge b). Plain and obviously right rather than fast: element-wise predicated loads (any
// alignment, any stride), a BM×BK / BN×BK shared tile converted to fp32, 256 threads as a 16×16 grid each
// owning (BM/16)×(BN/16) outputs at stride 16 (conflict-free shared reads). Same segment/hook structure as
// the tensor-core mainloop in blr_tile.cuh.
#pragma once

#include "kernels/common.cuh"

namespace blr::kern::simt {

constexpr int kThreads = 256;
constexpr int kBK = 16;

template <typename T>
struct SimtOperand {  // element (row, k) of segment s: base + s·seg + row·ld + k (this CTA's first row)
  const T* base;
  long long ld;
  long long seg;
  int rows;
};

template <typename T, int BM, int BN>
struct SimtCore {
  static constexpr int TM = BM / 16, TN = BN / 16;
  static_assert(BM % 16 == 0 && BN % 16 == 0, "tile must be a multiple of 16");
  using Acc = float[TM][TN];

  // Thread (ty, tx) owns rows ty + 16·i and columns tx + 16·j of the tile.
  __device__ static int ty() { return threadIdx.x / 16; }
  __device__ static int tx() { return threadIdx.x % 16; }

  template <class Hook>
  __device__ static void run(const SimtOperand<T>& A, const SimtOperand<T>& B, int K, int nseg, Acc& acc, Hook&& hook) {
    __shared__ float As[kBK][BM + 1];  // +1: the transposing stores below hit distinct banks
    __shared__ float Bs[kBK][BN + 1];
    const int tid = threadIdx.x;
    for (int seg = 0; seg < nseg; ++seg) {
      const T* a_seg = A.base + seg * A.seg;
      const T* b_seg = B.base + seg * B.seg;
      for (int k0 = 0; k0 < K; k0 += kBK) {
        for (int e = tid; e < BM * kBK; e += kThreads) {
          const int row = e / kBK, kk = e % kBK;
          const bool ok = row < A.rows && k0 + kk < K;
          As[kk][row] = ok ? to_f32(a_seg[row * A.ld + k0 + kk]) : 0.0f;
        }
        for (int e = tid; e < BN * kBK; e += kThreads) {
          const int row = e / kBK, kk = e % kBK;
          const bool ok = row < B.rows && k0 + kk < K;
          Bs[kk][row] = ok ? to_f32(b_seg[row * B.ld + k0 + kk]) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kBK; ++kk) {
          float a[TM], b[TN];
#pragma unroll
          for (int i = 0; i < TM; ++i) a[i] = As[kk][ty() + 16 * i];
#pragma unroll
          for (int j = 0; j < TN; ++j) b[j] = Bs[kk][tx() + 16 * j];
#pragma unroll
          for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
      }
      hook(seg, acc);
      if (seg + 1 < nseg) {
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
      }
    }
  }
};

}  // namespace blr::kern::simt
