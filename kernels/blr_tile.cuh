// Shared tensor-core tile code for the block-low-rank kernels (blr_gemm.cu, blr_blast.cu).
//
// Every BLR stage is a set of "TN" products C = A·Bᵀ with both operands K-major (activations [rows, K],
// weights [N, K] like nn.Linear), so one mainloop serves them all:
//   - a cp.async multi-stage pipeline of 16-byte copies global -> shared (zero-filled outside the matrix,
//     so ragged token counts, ragged N and ragged K need no special case in the math),
//   - 64-wide k-tiles: each tile row is one whole 128-byte cache line, fetched by 8 consecutive threads
//     (full-line requests, half as many requests and barriers per K as 32-wide tiles), with an L2 prefetch
//     hint of 256 bytes so that the line of the next k-tile is on its way to L2 with this one,
//   - rows XOR-swizzled in 16-byte chunks (chunk ^ (row & 7)) so both the cp.async stores and the ldmatrix
//     reads are free of bank conflicts,
//   - every per-thread address computed once before the loop (a base pointer per operand, advanced by a
//     byte offset per k-tile; ring slots by increment-and-wrap): no division or 64-bit multiply per k-tile,
//   - ldmatrix.x4 + mma.sync.m16n8k16 (f16/bf16 in, fp32 accumulate): the same code for sm_80, sm_87
//     (Jetson Orin) and sm_90 (H100),
//   - a "segment" loop: the K dimension may consist of several segments (the input blocks of BLAST), and a
//     hook sees the accumulators at the end of each one. Plain GEMMs have one segment.
// Why the pipeline depth matters more than anything else here: the device runs showed every stage-1 kernel
// moving only ~10-20 GB/s per SM from L2 while cuBLAS moves 60+ — the K loop of one CTA is bound by how many
// bytes it keeps in flight (Little's law: throughput = bytes in flight / latency, and the loaded latency of
// a cold L2/HBM fetch is microseconds). Tiles for few tokens therefore get rings deep enough to hold most
// or all of their K panel (blr_blast.cu, blr_gemm.cu pick them), and every stage is a whole cache line.
// Programmatic dependent launch (sm_90): the weight operand B is prefetched *before* the wait for A's
// producer (griddepcontrol.wait, or a caller-given wait), the activation operand A after it, so a second
// stage launched early overlaps its weight loads with the tail of the first stage. Without the launch
// attribute griddepcontrol.wait returns at once.
#pragma once

#include <cstdint>

#include "kernels/common.cuh"

namespace blr::kern::tile {

constexpr int kBK = 64;             // K elements per pipeline stage
constexpr int kRowBytes = kBK * 2;  // one tile row: 64 16-bit elements = one 128-byte line = 8 chunks of 16 bytes

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Byte offset of 16-byte chunk `c` (0..7) of tile row `row`. A row is one 128-byte bank line; XOR-ing the
// chunk with the row's low 3 bits puts the same logical chunk of 8 consecutive rows (what one ldmatrix
// phase reads) into 8 different 16-byte bank slots.
__device__ __forceinline__ uint32_t swz(int row, int c) {
  return static_cast<uint32_t>(row * kRowBytes + ((c ^ (row & 7)) << 4));
}

// 16-byte global->shared copy that bypasses L1 (data is reused from shared memory, and stage-2 inputs were
// written by another kernel), asking L2 to fetch the whole aligned 256-byte block around it (the next
// k-tile's line of the same row). When !valid nothing is read and the 16 bytes are zero-filled.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}

// Transposing loads: each 8x8 matrix is stored as 8 rows of 8 consecutive 16-bit elements and delivered
// transposed (thread i gets elements (2(i%4), i/4) and (2(i%4)+1, i/4) of the stored matrix), so a fragment
// whose K dimension runs across stored rows comes out in mma.sync's layout.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3,
                                                  uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t& r0, uint32_t& r1, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x1(uint32_t& r0, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r0) : "r"(addr));
}

// c += a·b for one m16n8k16 tile (row-major A fragment, "col" B fragment = B stored [n][k]).
template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();
#endif
}
template <>
__device__ __forceinline__ void mma16816<__half>(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();
#endif
}

// Two fp32 values -> one 32-bit word of two 16-bit elements (lower address first).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Programmatic dependent launch (sm_90+). wait: block until the grids this one depends on have finished
// and their writes are visible (no-op when launched without the attribute). launch_dependents: allow the
// next grid in the stream, if launched with the attribute, to start its prologue now.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// One operand of the mainloop, already offset to this CTA's first row (and batch).
// Element (row, k) of segment s lives at base + s·seg_bytes + row·ld_bytes + 2·k.
struct Operand {
  const char* base;
  long long ld_bytes;
  long long seg_bytes;
  int rows;  // valid rows from this CTA's first row on (>= 1; may exceed the tile; may be less)
};

// The copies one thread issues for a ROWS×kBK tile of an operand. Thread `tid` of NT owns chunk tid % 8
// of rows tid / 8, tid / 8 + NT / 8, ...: 8 consecutive threads fetch one whole 128-byte row. Everything
// that does not change from one k-tile to the next (row pointers, swizzled shared offsets, which rows
// exist) is computed once by the constructor; load() only adds the k-tile's byte offset.
template <int ROWS, int NT>
struct TileLoader {
  static_assert(NT % 64 == 0, "row step NT/8 must keep (row & 7), so the swizzle is one offset per thread");
  static constexpr int kChunks = ROWS * 8;
  static_assert(kChunks % NT == 0, "every thread copies the same number of chunks (no partial last round)");
  static constexpr int kIters = kChunks / NT;
  static constexpr int kRowStep = NT / 8;

  const char* row_ptr;  // base + row0·ld + chunk·16: this thread's first row, segment 0, k = 0
  const char* fallback; // a valid address for zero-size copies (row 0 of the tile)
  long long row_step_bytes;
  uint32_t soff;        // swizzled offset of the first chunk within a stage
  int kc;               // first K element of this thread's chunk
  int valid_rows;       // how many of this thread's kIters rows exist

  __device__ TileLoader(const Operand& op, int tid) {
    const int c = tid & 7, row0 = tid >> 3;
    row_ptr = op.base + row0 * op.ld_bytes + c * 16;
    fallback = op.base;
    row_step_bytes = kRowStep * op.ld_bytes;
    soff = swz(row0, c);
    kc = c * 8;
    const int left = op.rows - row0;
    valid_rows = left <= 0 ? 0 : (left + kRowStep - 1) / kRowStep;
  }

  // Copies the k-tile whose first element is `k0` at byte offset `off` (= segment·seg_bytes + 2·k0) into
  // the stage at shared address `stage`. Chunks at k >= K are zero-filled (K is a multiple of 8).
  __device__ __forceinline__ void load(uint32_t stage, long long off, int k0, int K) const {
    const bool k_ok = kc + k0 < K;
    const char* p = row_ptr + off;
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const bool ok = k_ok && i < valid_rows;
      // A zero-size copy reads nothing, but its address must still be a valid, aligned global address.
      cp_async16(stage + soff + i * kRowStep * kRowBytes, ok ? p + i * row_step_bytes : fallback, ok);
    }
  }
};

// The mainloop of a BM×BN CTA tile with WM×WN warps (each warp computes a (BM/WM)×(BN/WN) sub-tile out of
// MI×NI m16n8 accumulator tiles). Shared memory: STAGES × (A tile + B tile), reusable after run().
template <typename T, int BM, int BN, int WM, int WN, int STAGES>
struct TcCore {
  static constexpr int kThreads = WM * WN * 32;
  static constexpr int kWarpM = BM / WM, kWarpN = BN / WN;
  static constexpr int MI = kWarpM / 16, NI = kWarpN / 8;
  static constexpr int kABytes = BM * kRowBytes, kBBytes = BN * kRowBytes;
  static constexpr int kStageBytes = kABytes + kBBytes;
  static constexpr int kPipeBytes = STAGES * kStageBytes;
  static constexpr int kStages = STAGES;
  static_assert(kWarpM % 16 == 0 && kWarpN % 16 == 0, "warp tile must be a multiple of 16x16");
  static_assert(STAGES >= 2, "need at least double buffering");

  using Acc = float[MI][NI][4];

  __device__ static void zero(Acc& acc) {
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < NI; ++ni)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.0f;
  }

  // acc += A_tile · B_tileᵀ for one pipeline stage (four k16 steps).
  __device__ static void compute_stage(uint32_t sA, uint32_t sB, int wm0, int wn0, int lane, Acc& acc) {
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      uint32_t a[MI][4], b[NI][2];
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        // lanes 0-15: rows 0-15 at chunk 2kk; lanes 16-31: rows 0-15 at chunk 2kk+1 -> a0..a3 of m16n8k16.
        const int row = wm0 + mi * 16 + (lane & 15);
        ldmatrix_x4(a[mi][0], a[mi][1], a[mi][2], a[mi][3], sA + swz(row, kk * 2 + (lane >> 4)));
      }
#pragma unroll
      for (int nj = 0; nj < NI / 2; ++nj) {
        // matrices: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) -> b0,b1 of two n8 tiles.
        const int row = wn0 + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
        ldmatrix_x4(b[2 * nj][0], b[2 * nj][1], b[2 * nj + 1][0], b[2 * nj + 1][1],
                    sB + swz(row, kk * 2 + ((lane >> 3) & 1)));
      }
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) mma16816<T>(acc[mi][ni], a[mi], b[ni]);
    }
  }

  // Which part of the CTA runs this mainloop: a warp group (threads [base, base + kThreads)) with its own
  // pipeline buffers and named barrier takes segments seg_start, seg_start + seg_step, ... (BLAST splits
  // its b input blocks over groups, so each group issues its own copies and the CTA keeps G rings of
  // copies in flight). bar 0 = __syncthreads (one group).
  struct Group {
    int tid;  // thread index within the group
    int bar;  // named barrier id (0: the whole CTA is this group)
    int seg_start, seg_step;
  };

  // Immediate barrier ids (a register id would make ptxas reserve all 16 barriers for the kernel).
  __device__ static void group_sync(int bar) {
    switch (bar) {
      case 0: __syncthreads(); break;
      case 1: asm volatile("bar.sync 1, %0;\n" ::"n"(kThreads) : "memory"); break;
      case 2: asm volatile("bar.sync 2, %0;\n" ::"n"(kThreads) : "memory"); break;
      case 3: asm volatile("bar.sync 3, %0;\n" ::"n"(kThreads) : "memory"); break;
      case 4: asm volatile("bar.sync 4, %0;\n" ::"n"(kThreads) : "memory"); break;
      case 5: asm volatile("bar.sync 5, %0;\n" ::"n"(kThreads) : "memory"); break;
      case 6: asm volatile("bar.sync 6, %0;\n" ::"n"(kThreads) : "memory"); break;
      case 7: asm volatile("bar.sync 7, %0;\n" ::"n"(kThreads) : "memory"); break;
      default: asm volatile("bar.sync 8, %0;\n" ::"n"(kThreads) : "memory"); break;
    }
  }

  // Position of the next k-tile to load: its first K element within its segment, and its byte offsets in
  // A and B (segment·seg_bytes + 2·k0). Advanced by additions only.
  struct Cursor {
    int k0;
    long long a_off, b_off;
    __device__ void next(int K, int kt_per_seg_end, long long a_seg_step, long long b_seg_step) {
      k0 += kBK;
      a_off += 2 * kBK;
      b_off += 2 * kBK;
      if (k0 >= K) {  // next segment of this group: back to k = 0, forward by seg_step segments
        a_off += a_seg_step - 2LL * kt_per_seg_end;
        b_off += b_seg_step - 2LL * kt_per_seg_end;
        k0 = 0;
      }
    }
  };

  // What one group's pass over its segments needs: the copies each thread issues, the step from one of
  // the group's segments to the next, and how many k-tiles there are. Cheap to build (a few integer ops),
  // so the prologue and the mainloop each build their own.
  struct Plan {
    TileLoader<BM, kThreads> la;
    TileLoader<BN, kThreads> lb;
    long long a_seg_step, b_seg_step;  // from the end of one segment's k range to the group's next segment
    Cursor first;
    int K, k_end, kt_per_seg, my_segs, total;
    __device__ Plan(const Operand& A, const Operand& B, int K_, int nseg, const Group& g)
        : la(A, g.tid), lb(B, g.tid) {
      K = K_;
      kt_per_seg = (K + kBK - 1) / kBK;
      k_end = kt_per_seg * kBK;
      my_segs = g.seg_start < nseg ? (nseg - g.seg_start + g.seg_step - 1) / g.seg_step : 0;
      total = my_segs * kt_per_seg;
      a_seg_step = static_cast<long long>(g.seg_step) * A.seg_bytes;
      b_seg_step = static_cast<long long>(g.seg_step) * B.seg_bytes;
      first = Cursor{0, g.seg_start * A.seg_bytes, g.seg_start * B.seg_bytes};
    }
    __device__ void next(Cursor& c) const { c.next(K, k_end, a_seg_step, b_seg_step); }
  };

  // Issues the first STAGES-1 k-tiles of the group's pass: weights (B) first, then wait_a() (in every
  // thread of the group: griddepcontrol.wait for kernels launched under PDL, nothing when A is known to
  // be ready), then A. Commit group s holds A(s) (and group 0 all prologue B tiles), so "group t complete"
  // still means "tile t complete". The ring must be free: nothing of an earlier pass still in flight or
  // unread (mainloop() ends that way).
  template <class WaitA>
  __device__ static void prologue(char* smem, const Operand& A, const Operand& B, int K, int nseg, const Group& g,
                                  WaitA&& wait_a) {
    const Plan pl(A, B, K, nseg, g);
    const uint32_t s0 = smem_addr(smem);
    Cursor c = pl.first;
#pragma unroll 1
    for (int s = 0; s < STAGES - 1 && s < pl.total; ++s) {
      pl.lb.load(s0 + s * kStageBytes + kABytes, c.b_off, c.k0, K);
      pl.next(c);
    }
    wait_a();
    c = pl.first;
#pragma unroll 1
    for (int s = 0; s < STAGES - 1; ++s) {
      if (s < pl.total) {
        pl.la.load(s0 + s * kStageBytes, c.a_off, c.k0, K);
        pl.next(c);
      }
      cp_async_commit();
    }
  }

  // The pass itself, after prologue() with the same arguments: runs this group's segments (of K each, out
  // of nseg). After the last k-tile of segment s, hook(s, acc) is called; acc is then zeroed unless it was
  // the group's last segment (so a one-segment GEMM leaves its result in acc). On return all of the
  // group's copies have landed and its threads are past their last read of the ring (free for the next
  // prologue; other smem reusable after a barrier covering the readers).
  template <class Hook>
  __device__ static void mainloop(char* smem, const Operand& A, const Operand& B, int K, int nseg, const Group& g,
                                  Acc& acc, Hook&& hook) {
    const Plan pl(A, B, K, nseg, g);
    const int lane = g.tid & 31, warp = g.tid >> 5;
    const int wm0 = (warp / WN) * kWarpM, wn0 = (warp % WN) * kWarpN;
    const uint32_t s0 = smem_addr(smem);
    Cursor ld = pl.first;  // where the prologue stopped
#pragma unroll 1
    for (int s = 0; s < STAGES - 1 && s < pl.total; ++s) pl.next(ld);

    int ls = 0, kt = 0;                             // local segment and k-tile of tile t
    uint32_t cs = s0;                               // stage of tile t
    uint32_t ns = s0 + (STAGES - 1) * kStageBytes;  // stage tile t + STAGES - 1 is loaded into
    const uint32_t s_last = s0 + (STAGES - 1) * kStageBytes;
    for (int t = 0; t < pl.total; ++t) {
      cp_async_wait<STAGES - 2>();
      group_sync(g.bar);  // tile t visible to the group; everyone is done with the stage about to be refilled
      if (t + STAGES - 1 < pl.total) {
        pl.la.load(ns, ld.a_off, ld.k0, K);
        pl.lb.load(ns + kABytes, ld.b_off, ld.k0, K);
        pl.next(ld);
      }
      cp_async_commit();
      compute_stage(cs, cs + kABytes, wm0, wn0, lane, acc);
      ns = cs;  // the stage just consumed is the next one to refill
      cs = cs == s_last ? s0 : cs + kStageBytes;
      if (++kt == pl.kt_per_seg) {
        hook(g.seg_start + ls * g.seg_step, acc);
        if (ls + 1 < pl.my_segs) zero(acc);
        kt = 0;
        ++ls;
      }
    }
    cp_async_wait<0>();
    group_sync(g.bar);
  }

  // prologue() + mainloop().
  template <class Hook, class WaitA>
  __device__ static void run(char* smem, const Operand& A, const Operand& B, int K, int nseg, const Group& g, Acc& acc,
                             Hook&& hook, WaitA&& wait_a) {
    prologue(smem, A, B, K, nseg, g, static_cast<WaitA&&>(wait_a));
    mainloop(smem, A, B, K, nseg, g, acc, static_cast<Hook&&>(hook));
  }

  // Waits as a kernel launched under programmatic dependent launch must before reading its producer's output.
  template <class Hook>
  __device__ static void run(char* smem, const Operand& A, const Operand& B, int K, int nseg, const Group& g, Acc& acc,
                             Hook&& hook) {
    run(smem, A, B, K, nseg, g, acc, static_cast<Hook&&>(hook), [] { pdl_wait(); });
  }

  // The whole CTA as one group, segments 0..nseg-1 in order.
  template <class Hook>
  __device__ static void run(char* smem, const Operand& A, const Operand& B, int K, int nseg, Acc& acc, Hook&& hook) {
    run(smem, A, B, K, nseg, Group{static_cast<int>(threadIdx.x), 0, 0, 1}, acc, static_cast<Hook&&>(hook));
  }
};

}  // namespace blr::kern::tile
