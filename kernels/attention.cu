// Fused multi-head self-attention on tensor cores (FlashAttention-2 style), and the fp32 row softmax the
// engine's GEMM-based fallback uses.
//
// What it computes: out[b, n, h, :] = Σ_j softmax_j(scale · q[b,n,h,:]·k[b,j,h,:]) · v[b,j,h,:], reading
// q, k and v straight from the fused qkv projection [B, N, 3·H·D] (order q|k|v, head, d) and writing
// [B, N, H·D], so no transpose or split of qkv is ever materialised.
//
// Why it is shaped this way:
// - One launch covers every (query tile, head, batch): grid (⌈N/rows⌉, H, B). For DiT-XL/2 at 256 tokens,
//   16 heads, batch 2 that is 128 CTAs of 64 query rows — about one per SM of an H100, so the latency-bound
//   case runs in a single wave. Consecutive CTAs share (b, h), so their K/V tiles are served from L2.
// - The N×N score matrix never exists: each warp owns 16·MT query rows, streams K/V in tiles of 64 keys
//   through shared memory (cp.async, double-buffered so the next tile loads while this one computes) and
//   keeps a running max m, running sum l and unnormalised output O in registers (online softmax, fp32).
//   Memory is O(N·D) and 16384-token sequences work like short ones.
// - Both products use mma.sync m16n8k16 (bf16 or f16 in, fp32 accumulate). Q fragments are loaded once
//   into registers; S = Q·Kᵀ accumulates into registers whose layout is exactly the A-operand layout of
//   the second product, so P = exp(S − m) is packed to 16 bits in registers and multiplied by V (read with
//   ldmatrix.trans) without touching shared memory.
// - Head dims that are not a multiple of 16 (DiT's 72) pad the QKᵀ reduction: K and Q columns D..DQK−1
//   are zero-filled in shared memory (cp.async with a zero source size), so they add nothing. The PV
//   product's n-dimension only needs multiples of 8: 72 = 9 n-tiles, the odd one read with ldmatrix.x2.
// - Shared-memory rows are padded to an odd number of 16-byte chunks, so the 8 row addresses of every
//   ldmatrix fall into 8 distinct bank groups (no conflicts) without a swizzle.
// - MT = 2 (32 query rows per warp, 128 per CTA) reuses every K/V fragment read from shared memory for
//   two MMAs, which matters once the problem is large enough to be compute-bound; small problems use
//   MT = 1 for twice as many CTAs. MT = 2 is only built for D = 64 and 72, where its registers fit (sm_90:
//   240 and 254, no spills; sm_87 spills 16 bytes for D = 72).
// - exp is exp2 of a pre-scaled argument (scale·log2 e folded into one FMA) on the fast ex2.approx unit.
// - Ragged tiles: query rows ≥ N load zeros and are not stored; key columns ≥ N are set to −inf before the
//   softmax (only in the last key tile) and their V rows load as zeros.
// - Small problems (split-key variant): with few query tiles per head (ViT-B/16 at batch 1: 197 tokens ×
//   12 heads is 48 CTAs of 64 rows for 132 SMs) every warp still walks all key tiles one after another,
//   so the latency is that walk. The split-key kernel gives a CTA one m-tile of 16 query rows and lets
//   its four warps take the key tiles round robin (warp w: tiles w, w+4, ...), each into its own
//   shared-memory buffer with its own running max, sum and output; at the end the warps' partial results
//   are merged through shared memory (rescaled by exp2 of their max relative to the overall max). Four
//   times the CTAs, a quarter of the serial key walk. Chosen by the engine (flash_split_keys_pays).
//
// The engine (engine/backend/cuda/cuda_attention.cpp) uses this kernel for bf16/f16 with D a multiple of
// 8 up to 128, and otherwise (fp32, D = 512 in the VAE, odd D) a cuBLAS path: S = Q·Kᵀ in fp32 chunks,
// softmax_rows_f32 below, then P·V.
#include "kernels/attention.h"

#include <atomic>
#include <cmath>
#include <cstdint>

#include "kernels/common.cuh"

namespace blr::kern {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kBlockKeys = 64;

// Row stride (elements) in shared memory for rows of `d` 16-bit values: an odd number of 16-byte chunks.
__host__ __device__ constexpr int smem_stride(int d) { return (d / 8) % 2 == 0 ? d + 8 : d; }

template <int DQK, int DV, int MT>
constexpr size_t flash_smem_bytes() {
  return static_cast<size_t>(kWarps * 16 * MT * smem_stride(DQK) + 2 * kBlockKeys * smem_stride(DQK) +
                             2 * kBlockKeys * smem_stride(DV)) *
         2;
}

struct FlashParams {
  const void* qkv;
  void* out;
  int tokens;
  int heads;
  int head_dim;
  int64_t qkv_bs, qkv_ts, out_bs, out_ts;
  float scale_log2;  // scale · log2(e)
};

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy; when !valid nothing is read and the destination is zero-filled.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x2_trans(uint32_t& r0, uint32_t& r1, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r0), "=r"(r1)
               : "r"(addr));
}

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// The 16-bit element type's MMA and packing of two fp32 values into one A-operand register.
template <typename T>
struct Mma;
template <>
struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
};
template <>
struct Mma<__half> {
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
};

// Copies `rows` rows of `chunks` 16-byte chunks (row r = token row0 + r of `src`, token stride ts) into
// shared memory with row stride `stride`; rows past the sequence and chunks past the head dim are zeros.
template <typename T, int kChunks>
__device__ __forceinline__ void load_tile(T* dst, int stride, const T* src, int64_t ts, int row0, int rows,
                                          int tokens, int head_dim) {
  for (int i = threadIdx.x; i < rows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = i % kChunks;
    const int n = row0 + r;
    const bool valid = n < tokens && c * 8 < head_dim;
    const T* g = valid ? src + static_cast<int64_t>(n) * ts + c * 8 : src;
    cp_async_16(smem_u32(dst + r * stride + c * 8), g, valid);
  }
}

// load_tile by the 32 lanes of one warp (the split-key kernel's per-warp buffers).
template <typename T, int kChunks>
__device__ __forceinline__ void load_tile_warp(T* dst, int stride, const T* src, int64_t ts, int row0, int rows,
                                               int tokens, int head_dim, int lane) {
  for (int i = lane; i < rows * kChunks; i += 32) {
    const int r = i / kChunks, c = i % kChunks;
    const int n = row0 + r;
    const bool valid = n < tokens && c * 8 < head_dim;
    const T* g = valid ? src + static_cast<int64_t>(n) * ts + c * 8 : src;
    cp_async_16(smem_u32(dst + r * stride + c * 8), g, valid);
  }
}

template <typename T, int DQK, int DV, int MT>
__global__ void __launch_bounds__(kThreads) flash_attention_kernel(const FlashParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // mma.sync bf16 and cp.async need sm_80; the host never launches this on older GPUs
#else
  constexpr int kRowsPerWarp = 16 * MT;
  constexpr int kBlockRows = kWarps * kRowsPerWarp;
  constexpr int QS = smem_stride(DQK);  // Q and K rows
  constexpr int VS = smem_stride(DV);
  constexpr int kKSteps = DQK / 16;            // k-steps of S = Q·Kᵀ
  constexpr int kKeyTiles = kBlockKeys / 8;    // n-tiles of S (8 keys each)
  constexpr int kDTiles = DV / 8;              // n-tiles of O (8 dims each)
  static_assert(DQK % 16 == 0 && DV % 8 == 0 && DV <= DQK + 8, "bad head-dim tiling");

  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + kBlockRows * QS;       // two buffers of kBlockKeys rows
  T* sV = sK + 2 * kBlockKeys * QS;   // two buffers of kBlockKeys rows

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int q0 = blockIdx.x * kBlockRows;
  const int h = blockIdx.y, b = blockIdx.z;
  const int N = p.tokens, D = p.head_dim;
  const T* qbase = static_cast<const T*>(p.qkv) + b * p.qkv_bs + static_cast<int64_t>(h) * D;
  const T* kbase = qbase + static_cast<int64_t>(p.heads) * D;
  const T* vbase = kbase + static_cast<int64_t>(p.heads) * D;
  const int num_key_tiles = (N + kBlockKeys - 1) / kBlockKeys;

  load_tile<T, DQK / 8>(sQ, QS, qbase, p.qkv_ts, q0, kBlockRows, N, D);
  load_tile<T, DQK / 8>(sK, QS, kbase, p.qkv_ts, 0, kBlockKeys, N, D);
  load_tile<T, DV / 8>(sV, VS, vbase, p.qkv_ts, 0, kBlockKeys, N, D);
  cp_async_commit();
  cp_async_wait_all();
  __syncthreads();

  // Q as A fragments, kept in registers for the whole key loop.
  uint32_t qf[MT][kKSteps][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      const int row = warp * kRowsPerWarp + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
      const int col = ks * 16 + (lane >> 4) * 8;
      ldsm_x4(qf[mt][ks], smem_u32(sQ + row * QS + col));
    }

  float o[MT][kDTiles][4];
  float row_max[MT][2], row_sum[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int dt = 0; dt < kDTiles; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][dt][e] = 0.0f;
    row_max[mt][0] = row_max[mt][1] = -INFINITY;
    row_sum[mt][0] = row_sum[mt][1] = 0.0f;
  }

  for (int kt = 0; kt < num_key_tiles; ++kt) {
    const int buf = kt & 1;
    if (kt > 0) {
      cp_async_wait_all();  // tile kt has landed (this thread's copies) ...
      __syncthreads();      // ... for every thread, and everyone is done with tile kt-1's buffer
    }
    if (kt + 1 < num_key_tiles) {  // prefetch tile kt+1 into the other buffer while this one computes
      load_tile<T, DQK / 8>(sK + (buf ^ 1) * kBlockKeys * QS, QS, kbase, p.qkv_ts, (kt + 1) * kBlockKeys,
                            kBlockKeys, N, D);
      load_tile<T, DV / 8>(sV + (buf ^ 1) * kBlockKeys * VS, VS, vbase, p.qkv_ts, (kt + 1) * kBlockKeys,
                           kBlockKeys, N, D);
      cp_async_commit();
    }
    const T* k_tile = sK + buf * kBlockKeys * QS;
    const T* v_tile = sV + buf * kBlockKeys * VS;

    // ---- S = Q·Kᵀ for this warp's rows and the tile's 64 keys ----
    float s[MT][kKeyTiles][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
#pragma unroll
      for (int np = 0; np < kKeyTiles / 2; ++np) {
        // Four 8×8 matrices: keys [np·16, +8) and [np·16+8, +8) × dims [ks·16, +8) and [ks·16+8, +8).
        uint32_t kf[4];
        const int key = np * 16 + (lane & 7) + (lane >> 4) * 8;
        const int col = ks * 16 + ((lane >> 3) & 1) * 8;
        ldsm_x4(kf, smem_u32(k_tile + key * QS + col));
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          Mma<T>::run(s[mt][2 * np], qf[mt][ks], kf[0], kf[1]);
          Mma<T>::run(s[mt][2 * np + 1], qf[mt][ks], kf[2], kf[3]);
        }
      }
    }
    if ((kt + 1) * kBlockKeys > N) {  // last, ragged tile: keys past the sequence get no weight
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int key = kt * kBlockKeys + nt * 8 + 2 * (lane & 3) + e;
          if (key >= N) {
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) s[mt][nt][e] = s[mt][nt][2 + e] = -INFINITY;
          }
        }
    }

    // ---- online softmax: each thread holds rows g and g+8 of each m-tile; a quad shares a row ----
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < kKeyTiles; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(row_max[mt][r], mx * p.scale_log2);  // scale > 0 keeps the argmax
        const float m_use = m_new == -INFINITY ? 0.0f : m_new;        // a fully masked row stays finite
        const float alpha = fast_exp2(row_max[mt][r] - m_use);
        row_max[mt][r] = m_new;
        float tile_sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float pv = fast_exp2(fmaf(s[mt][nt][2 * r + e], p.scale_log2, -m_use));
            s[mt][nt][2 * r + e] = pv;
            tile_sum += pv;
          }
        row_sum[mt][r] = row_sum[mt][r] * alpha + tile_sum;  // per-thread partial; reduced at the end
#pragma unroll
        for (int dt = 0; dt < kDTiles; ++dt) {
          o[mt][dt][2 * r] *= alpha;
          o[mt][dt][2 * r + 1] *= alpha;
        }
      }

    // ---- O += P·V: S's accumulator layout for keys [16j, 16j+16) is the A layout of k-step j ----
#pragma unroll
    for (int j = 0; j < kBlockKeys / 16; ++j) {
      uint32_t pa[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        pa[mt][0] = Mma<T>::pack(s[mt][2 * j][0], s[mt][2 * j][1]);
        pa[mt][1] = Mma<T>::pack(s[mt][2 * j][2], s[mt][2 * j][3]);
        pa[mt][2] = Mma<T>::pack(s[mt][2 * j + 1][0], s[mt][2 * j + 1][1]);
        pa[mt][3] = Mma<T>::pack(s[mt][2 * j + 1][2], s[mt][2 * j + 1][3]);
      }
      const int key = j * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
      for (int dp = 0; dp < kDTiles / 2; ++dp) {
        // Four 8×8 matrices: keys [16j, +8), [16j+8, +8) × dims [dp·16, +8), then dims [dp·16+8, +8).
        uint32_t vf[4];
        const int col = dp * 16 + (lane >> 4) * 8;
        ldsm_x4_trans(vf, smem_u32(v_tile + key * VS + col));
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          Mma<T>::run(o[mt][2 * dp], pa[mt], vf[0], vf[1]);
          Mma<T>::run(o[mt][2 * dp + 1], pa[mt], vf[2], vf[3]);
        }
      }
      if constexpr (kDTiles % 2 == 1) {  // the odd last n-tile (e.g. dims 64..71 of D = 72)
        uint32_t v0, v1;
        ldsm_x2_trans(v0, v1, smem_u32(v_tile + key * VS + (kDTiles - 1) * 8));
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) Mma<T>::run(o[mt][kDTiles - 1], pa[mt], v0, v1);
      }
    }
  }

  // ---- normalise and store: thread holds columns 2t, 2t+1 of each 8-wide d-tile ----
  T* obase = static_cast<T*>(p.out) + b * p.out_bs + static_cast<int64_t>(h) * D;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float l = row_sum[mt][r];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      const int row = q0 + warp * kRowsPerWarp + mt * 16 + (lane >> 2) + 8 * r;
      if (row < N) {
        T* dst = obase + static_cast<int64_t>(row) * p.out_ts;
#pragma unroll
        for (int dt = 0; dt < kDTiles; ++dt) {
          const int col = dt * 8 + 2 * (lane & 3);
          if (col < D)
            *reinterpret_cast<uint32_t*>(dst + col) =
                Mma<T>::pack(o[mt][dt][2 * r] * inv, o[mt][dt][2 * r + 1] * inv);
        }
      }
    }
#endif
}

template <typename T, int DQK, int DV, int MT>
cudaError_t launch_flash(const FlashParams& p, int batch, cudaStream_t stream) {
  constexpr size_t smem = flash_smem_bytes<DQK, DV, MT>();
  constexpr int rows = kWarps * 16 * MT;
  auto kernel = flash_attention_kernel<T, DQK, DV, MT>;
  if (smem > 48 * 1024) {
    // Opt in to more than 48 KiB of dynamic shared memory, once per device (host-only call, so it is
    // also fine on the first eager run before a graph capture).
    static std::atomic<uint64_t> opted_in{0};
    int device = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err != cudaSuccess) return err;
    const uint64_t bit = 1ull << (device & 63);
    if (!(opted_in.load() & bit)) {
      err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
      if (err != cudaSuccess) return err;
      opted_in.fetch_or(bit);
    }
  }
  const dim3 grid(ceil_div(p.tokens, rows), static_cast<unsigned>(p.heads), static_cast<unsigned>(batch));
  kernel<<<grid, kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

// ---- split-key variant (small problems; see the file comment) ----

template <int DQK, int DV>
constexpr size_t split_smem_bytes() {
  return static_cast<size_t>(16 * smem_stride(DQK) + kWarps * kBlockKeys * smem_stride(DQK) +
                             kWarps * kBlockKeys * smem_stride(DV)) *
         2;
}

template <typename T, int DQK, int DV>
__global__ void __launch_bounds__(kThreads) flash_attention_split_kernel(const FlashParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();
#else
  constexpr int QS = smem_stride(DQK);
  constexpr int VS = smem_stride(DV);
  constexpr int kKSteps = DQK / 16;
  constexpr int kKeyTiles = kBlockKeys / 8;
  constexpr int kDTiles = DV / 8;
  constexpr int kPartial = 4 + 4 * kDTiles;  // floats per thread in the merge: max[2], sum[2], o[kDTiles][4]
  static_assert(DQK % 16 == 0 && DV % 8 == 0 && DV <= DQK + 8, "bad head-dim tiling");
  static_assert(kWarps * 32 * kPartial * 4 <= kWarps * kBlockKeys * QS * 2, "merge buffer must fit the K buffers");

  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);  // 16 query rows
  T* sK = sQ + 16 * QS;                    // one buffer of kBlockKeys rows per warp
  T* sV = sK + kWarps * kBlockKeys * QS;   // likewise

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int q0 = blockIdx.x * 16;
  const int h = blockIdx.y, b = blockIdx.z;
  const int N = p.tokens, D = p.head_dim;
  const T* qbase = static_cast<const T*>(p.qkv) + b * p.qkv_bs + static_cast<int64_t>(h) * D;
  const T* kbase = qbase + static_cast<int64_t>(p.heads) * D;
  const T* vbase = kbase + static_cast<int64_t>(p.heads) * D;
  const int num_key_tiles = (N + kBlockKeys - 1) / kBlockKeys;
  T* k_tile = sK + warp * kBlockKeys * QS;
  T* v_tile = sV + warp * kBlockKeys * VS;

  // Q by the whole CTA, and each warp's first key tile, in one group.
  load_tile<T, DQK / 8>(sQ, QS, qbase, p.qkv_ts, q0, 16, N, D);
  if (warp < num_key_tiles) {
    load_tile_warp<T, DQK / 8>(k_tile, QS, kbase, p.qkv_ts, warp * kBlockKeys, kBlockKeys, N, D, lane);
    load_tile_warp<T, DV / 8>(v_tile, VS, vbase, p.qkv_ts, warp * kBlockKeys, kBlockKeys, N, D, lane);
  }
  cp_async_commit();
  cp_async_wait_all();
  __syncthreads();

  uint32_t qf[kKSteps][4];
#pragma unroll
  for (int ks = 0; ks < kKSteps; ++ks) {
    const int row = (lane & 7) + ((lane >> 3) & 1) * 8;
    const int col = ks * 16 + (lane >> 4) * 8;
    ldsm_x4(qf[ks], smem_u32(sQ + row * QS + col));
  }

  float o[kDTiles][4];
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};
#pragma unroll
  for (int dt = 0; dt < kDTiles; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[dt][e] = 0.0f;

  for (int kt = warp; kt < num_key_tiles; kt += kWarps) {
    if (kt != warp) {  // a later tile of this warp (long sequences): single-buffered reload
      __syncwarp();    // every lane is done reading the previous tile
      load_tile_warp<T, DQK / 8>(k_tile, QS, kbase, p.qkv_ts, kt * kBlockKeys, kBlockKeys, N, D, lane);
      load_tile_warp<T, DV / 8>(v_tile, VS, vbase, p.qkv_ts, kt * kBlockKeys, kBlockKeys, N, D, lane);
      cp_async_commit();
      cp_async_wait_all();  // this lane's copies have landed ...
      __syncwarp();         // ... and every lane's are visible to the warp
    }

    // ---- S = Q·Kᵀ for the 16 rows and the tile's 64 keys ----
    float sc[kKeyTiles][4];
#pragma unroll
    for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) sc[nt][e] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
#pragma unroll
      for (int np = 0; np < kKeyTiles / 2; ++np) {
        uint32_t kf[4];
        const int key = np * 16 + (lane & 7) + (lane >> 4) * 8;
        const int col = ks * 16 + ((lane >> 3) & 1) * 8;
        ldsm_x4(kf, smem_u32(k_tile + key * QS + col));
        Mma<T>::run(sc[2 * np], qf[ks], kf[0], kf[1]);
        Mma<T>::run(sc[2 * np + 1], qf[ks], kf[2], kf[3]);
      }
    }
    if ((kt + 1) * kBlockKeys > N) {  // the ragged last tile: keys past the sequence get no weight
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int key = kt * kBlockKeys + nt * 8 + 2 * (lane & 3) + e;
          if (key >= N) sc[nt][e] = sc[nt][2 + e] = -INFINITY;
        }
    }

    // ---- online softmax (as the row-tiled kernel) ----
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt) mx = fmaxf(mx, fmaxf(sc[nt][2 * r], sc[nt][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(row_max[r], mx * p.scale_log2);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = fast_exp2(row_max[r] - m_use);
      row_max[r] = m_new;
      float tile_sum = 0.0f;
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float pv = fast_exp2(fmaf(sc[nt][2 * r + e], p.scale_log2, -m_use));
          sc[nt][2 * r + e] = pv;
          tile_sum += pv;
        }
      row_sum[r] = row_sum[r] * alpha + tile_sum;
#pragma unroll
      for (int dt = 0; dt < kDTiles; ++dt) {
        o[dt][2 * r] *= alpha;
        o[dt][2 * r + 1] *= alpha;
      }
    }

    // ---- O += P·V ----
#pragma unroll
    for (int j = 0; j < kBlockKeys / 16; ++j) {
      uint32_t pa[4];
      pa[0] = Mma<T>::pack(sc[2 * j][0], sc[2 * j][1]);
      pa[1] = Mma<T>::pack(sc[2 * j][2], sc[2 * j][3]);
      pa[2] = Mma<T>::pack(sc[2 * j + 1][0], sc[2 * j + 1][1]);
      pa[3] = Mma<T>::pack(sc[2 * j + 1][2], sc[2 * j + 1][3]);
      const int key = j * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
      for (int dp = 0; dp < kDTiles / 2; ++dp) {
        uint32_t vf[4];
        const int col = dp * 16 + (lane >> 4) * 8;
        ldsm_x4_trans(vf, smem_u32(v_tile + key * VS + col));
        Mma<T>::run(o[2 * dp], pa, vf[0], vf[1]);
        Mma<T>::run(o[2 * dp + 1], pa, vf[2], vf[3]);
      }
      if constexpr (kDTiles % 2 == 1) {
        uint32_t v0, v1;
        ldsm_x2_trans(v0, v1, smem_u32(v_tile + key * VS + (kDTiles - 1) * 8));
        Mma<T>::run(o[kDTiles - 1], pa, v0, v1);
      }
    }
  }

  // ---- merge the warps' partial results ----
  // A thread's sum covers its quad's columns only: complete it within the quad first. (The max is already
  // the quad's.) A warp without key tiles has max −inf, sum 0, o 0 and adds nothing.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 1);
    row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 2);
  }
  __syncthreads();  // every warp is done with its K/V buffer: they now hold the partial results
  float* partial = reinterpret_cast<float*>(sK);
  {
    float* mine = partial + (warp * 32 + lane) * kPartial;
    mine[0] = row_max[0];
    mine[1] = row_max[1];
    mine[2] = row_sum[0];
    mine[3] = row_sum[1];
#pragma unroll
    for (int dt = 0; dt < kDTiles; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) mine[4 + dt * 4 + e] = o[dt][e];
  }
  __syncthreads();
  if (warp != 0) return;  // warp 0 merges and stores (same fragment layout in every warp)

  float m_all[2], l_all[2] = {0.0f, 0.0f}, acc[kDTiles][4];
#pragma unroll
  for (int dt = 0; dt < kDTiles; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[dt][e] = 0.0f;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    m_all[r] = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) m_all[r] = fmaxf(m_all[r], partial[(w * 32 + lane) * kPartial + r]);
  }
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    const float* pw = partial + (w * 32 + lane) * kPartial;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float f = pw[r] == -INFINITY ? 0.0f : fast_exp2(pw[r] - m_all[r]);
      l_all[r] += f * pw[2 + r];
#pragma unroll
      for (int dt = 0; dt < kDTiles; ++dt) {
        acc[dt][2 * r] += f * pw[4 + dt * 4 + 2 * r];
        acc[dt][2 * r + 1] += f * pw[4 + dt * 4 + 2 * r + 1];
      }
    }
  }
  T* obase = static_cast<T*>(p.out) + b * p.out_bs + static_cast<int64_t>(h) * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float inv = l_all[r] > 0.0f ? 1.0f / l_all[r] : 0.0f;
    const int row = q0 + (lane >> 2) + 8 * r;
    if (row < N) {
      T* dst = obase + static_cast<int64_t>(row) * p.out_ts;
#pragma unroll
      for (int dt = 0; dt < kDTiles; ++dt) {
        const int col = dt * 8 + 2 * (lane & 3);
        if (col < D)
          *reinterpret_cast<uint32_t*>(dst + col) = Mma<T>::pack(acc[dt][2 * r] * inv, acc[dt][2 * r + 1] * inv);
      }
    }
  }
#endif
}

template <typename T, int DQK, int DV>
cudaError_t launch_flash_split(const FlashParams& p, int batch, cudaStream_t stream) {
  constexpr size_t smem = split_smem_bytes<DQK, DV>();
  auto kernel = flash_attention_split_kernel<T, DQK, DV>;
  if (smem > 48 * 1024) {  // opt in once per device, as launch_flash does
    static std::atomic<uint64_t> opted_in{0};
    int device = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err != cudaSuccess) return err;
    const uint64_t bit = 1ull << (device & 63);
    if (!(opted_in.load() & bit)) {
      err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
      if (err != cudaSuccess) return err;
      opted_in.fetch_or(bit);
    }
  }
  const dim3 grid(ceil_div(p.tokens, 16), static_cast<unsigned>(p.heads), static_cast<unsigned>(batch));
  kernel<<<grid, kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

// The compiled (DQK, DV, MT) variants, smallest first. A head dim D uses the first with
// DQK ≥ round_up(D, 16) and DV ≥ D; extra V columns are zero-filled and not stored.
struct Variant {
  int dqk, dv, mt;
  const char* name_bf16;
  const char* name_f16;
};
constexpr Variant kVariants[] = {
    {16, 16, 1, "flash<bf16,D16/16,rows64>", "flash<f16,D16/16,rows64>"},
    {32, 32, 1, "flash<bf16,D32/32,rows64>", "flash<f16,D32/32,rows64>"},
    {48, 40, 1, "flash<bf16,D48/40,rows64>", "flash<f16,D48/40,rows64>"},
    {48, 48, 1, "flash<bf16,D48/48,rows64>", "flash<f16,D48/48,rows64>"},
    {64, 64, 1, "flash<bf16,D64/64,rows64>", "flash<f16,D64/64,rows64>"},
    {80, 72, 1, "flash<bf16,D80/72,rows64>", "flash<f16,D80/72,rows64>"},
    {80, 80, 1, "flash<bf16,D80/80,rows64>", "flash<f16,D80/80,rows64>"},
    {96, 96, 1, "flash<bf16,D96/96,rows64>", "flash<f16,D96/96,rows64>"},
    {128, 128, 1, "flash<bf16,D128/128,rows64>", "flash<f16,D128/128,rows64>"},
    {64, 64, 2, "flash<bf16,D64/64,rows128>", "flash<f16,D64/64,rows128>"},
    {80, 72, 2, "flash<bf16,D80/72,rows128>", "flash<f16,D80/72,rows128>"},
};

int sm_count() {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 1;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) return 1;
  return sms > 0 ? sms : 1;
}

// Index into kVariants of the MT = 1 variant for this head dim, or -1.
int pick_base_variant(const AttentionShape& s) {
  const int d = s.head_dim;
  const int dqk = (d + 15) / 16 * 16;
  for (int i = 0; i < static_cast<int>(sizeof(kVariants) / sizeof(kVariants[0])); ++i)
    if (kVariants[i].mt == 1 && kVariants[i].dqk >= dqk && kVariants[i].dv >= d) return i;
  return -1;
}

// Index into kVariants for this problem, or -1.
int pick_variant(const AttentionShape& s) {
  const int base = pick_base_variant(s);
  if (base < 0) return -1;
  // Two query m-tiles per warp once there are enough 128-row CTAs to fill every SM twice (two CTAs of
  // this size fit per SM): then the K/V fragment reuse pays; below that, more and smaller CTAs win.
  const int64_t big_ctas = (static_cast<int64_t>(s.tokens) + 127) / 128 * s.heads * s.batch;
  if (big_ctas >= 2 * static_cast<int64_t>(sm_count()))
    for (int i = 0; i < static_cast<int>(sizeof(kVariants) / sizeof(kVariants[0])); ++i)
      if (kVariants[i].mt == 2 && kVariants[i].dqk == kVariants[base].dqk && kVariants[i].dv == kVariants[base].dv)
        return i;
  return base;
}

template <typename T>
cudaError_t launch_variant(int index, const FlashParams& p, int batch, cudaStream_t stream) {
  switch (index) {
    case 0: return launch_flash<T, 16, 16, 1>(p, batch, stream);
    case 1: return launch_flash<T, 32, 32, 1>(p, batch, stream);
    case 2: return launch_flash<T, 48, 40, 1>(p, batch, stream);
    case 3: return launch_flash<T, 48, 48, 1>(p, batch, stream);
    case 4: return launch_flash<T, 64, 64, 1>(p, batch, stream);
    case 5: return launch_flash<T, 80, 72, 1>(p, batch, stream);
    case 6: return launch_flash<T, 80, 80, 1>(p, batch, stream);
    case 7: return launch_flash<T, 96, 96, 1>(p, batch, stream);
    case 8: return launch_flash<T, 128, 128, 1>(p, batch, stream);
    case 9: return launch_flash<T, 64, 64, 2>(p, batch, stream);
    case 10: return launch_flash<T, 80, 72, 2>(p, batch, stream);
    default: return cudaErrorInvalidValue;
  }
}

// The split-key kernel for the MT = 1 variant `index` (same head-dim tiling).
template <typename T>
cudaError_t launch_split_variant(int index, const FlashParams& p, int batch, cudaStream_t stream) {
  switch (index) {
    case 0: return launch_flash_split<T, 16, 16>(p, batch, stream);
    case 1: return launch_flash_split<T, 32, 32>(p, batch, stream);
    case 2: return launch_flash_split<T, 48, 40>(p, batch, stream);
    case 3: return launch_flash_split<T, 48, 48>(p, batch, stream);
    case 4: return launch_flash_split<T, 64, 64>(p, batch, stream);
    case 5: return launch_flash_split<T, 80, 72>(p, batch, stream);
    case 6: return launch_flash_split<T, 80, 80>(p, batch, stream);
    case 7: return launch_flash_split<T, 96, 96>(p, batch, stream);
    case 8: return launch_flash_split<T, 128, 128>(p, batch, stream);
    default: return cudaErrorInvalidValue;
  }
}

FlashParams make_params(const AttentionShape& s, const void* qkv, void* out, float scale) {
  FlashParams p;
  p.qkv = qkv;
  p.out = out;
  p.tokens = s.tokens;
  p.heads = s.heads;
  p.head_dim = s.head_dim;
  p.qkv_bs = s.qkv_batch_stride;
  p.qkv_ts = s.qkv_token_stride;
  p.out_bs = s.out_batch_stride;
  p.out_ts = s.out_token_stride;
  p.scale_log2 = scale * 1.4426950408889634f;
  return p;
}

// ---- row softmax for the GEMM path ----

constexpr int kSoftmaxThreads = 256;

template <bool kMax>
__device__ __forceinline__ float block_reduce(float v, float* shared) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) {
    const float other = __shfl_xor_sync(0xffffffffu, v, off);
    v = kMax ? fmaxf(v, other) : v + other;
  }
  __syncthreads();  // `shared` may still be read by a previous reduction
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = v;
  __syncthreads();
  v = shared[0];
  for (int w = 1; w < kSoftmaxThreads / 32; ++w) v = kMax ? fmaxf(v, shared[w]) : v + shared[w];
  return v;
}

// One CTA per row: max, sum of exp, then the normalised write. No __restrict__: p may alias s.
template <typename T>
__global__ void __launch_bounds__(kSoftmaxThreads)
    softmax_rows_kernel(const float* s, int64_t ld_s, T* p, int64_t ld_p, int64_t cols) {
  __shared__ float partial[kSoftmaxThreads / 32];
  const float* in = s + static_cast<int64_t>(blockIdx.x) * ld_s;
  T* out = p + static_cast<int64_t>(blockIdx.x) * ld_p;
  float mx = -INFINITY;
  for (int64_t i = threadIdx.x; i < cols; i += kSoftmaxThreads) mx = fmaxf(mx, in[i]);
  mx = block_reduce<true>(mx, partial);
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < cols; i += kSoftmaxThreads) sum += expf(in[i] - mx);
  sum = block_reduce<false>(sum, partial);  // its barriers also order every read above before any write
  const float inv = 1.0f / sum;
  for (int64_t i = threadIdx.x; i < cols; i += kSoftmaxThreads) out[i] = from_f32<T>(expf(in[i] - mx) * inv);
}

}  // namespace

bool flash_attention_supported(DT dt, const AttentionShape& s, const void* qkv, const void* out, float scale) {
  if (dt != DT::BF16 && dt != DT::F16) return false;
  if (s.batch < 1 || s.tokens < 1 || s.heads < 1 || s.batch > 65535 || s.heads > 65535) return false;
  if (s.head_dim < 8 || s.head_dim > 128 || s.head_dim % 8 != 0) return false;
  if (!(scale > 0.0f) || !std::isfinite(scale)) return false;
  if (reinterpret_cast<uintptr_t>(qkv) % 16 != 0 || reinterpret_cast<uintptr_t>(out) % 4 != 0) return false;
  if (s.qkv_batch_stride % 8 != 0 || s.qkv_token_stride % 8 != 0) return false;
  if (s.out_batch_stride % 2 != 0 || s.out_token_stride % 2 != 0) return false;
  return pick_variant(s) >= 0;
}

const char* flash_attention_variant(DT dt, const AttentionShape& s) {
  if (dt != DT::BF16 && dt != DT::F16) return nullptr;
  const int i = pick_variant(s);
  if (i < 0) return nullptr;
  return dt == DT::BF16 ? kVariants[i].name_bf16 : kVariants[i].name_f16;
}

cudaError_t flash_attention(DT dt, const AttentionShape& s, const void* qkv, void* out, float scale,
                            cudaStream_t stream) {
  if (!flash_attention_supported(dt, s, qkv, out, scale)) return cudaErrorInvalidValue;
  const FlashParams p = make_params(s, qkv, out, scale);
  const int index = pick_variant(s);
  return dt == DT::BF16 ? launch_variant<__nv_bfloat16>(index, p, s.batch, stream)
                        : launch_variant<__half>(index, p, s.batch, stream);
}

bool flash_split_keys_pays(const AttentionShape& s) {
  const int64_t key_tiles = (static_cast<int64_t>(s.tokens) + kBlockKeys - 1) / kBlockKeys;
  const int64_t row_tiled_ctas = (static_cast<int64_t>(s.tokens) + 63) / 64 * s.heads * s.batch;
  return key_tiles >= 2 && row_tiled_ctas < static_cast<int64_t>(sm_count());
}

const char* flash_attention_split_variant(DT dt, const AttentionShape& s) {
  static const char* const kNames[2][9] = {
      {"flash-split<bf16,D16/16,rows16>", "flash-split<bf16,D32/32,rows16>", "flash-split<bf16,D48/40,rows16>",
       "flash-split<bf16,D48/48,rows16>", "flash-split<bf16,D64/64,rows16>", "flash-split<bf16,D80/72,rows16>",
       "flash-split<bf16,D80/80,rows16>", "flash-split<bf16,D96/96,rows16>", "flash-split<bf16,D128/128,rows16>"},
      {"flash-split<f16,D16/16,rows16>", "flash-split<f16,D32/32,rows16>", "flash-split<f16,D48/40,rows16>",
       "flash-split<f16,D48/48,rows16>", "flash-split<f16,D64/64,rows16>", "flash-split<f16,D80/72,rows16>",
       "flash-split<f16,D80/80,rows16>", "flash-split<f16,D96/96,rows16>", "flash-split<f16,D128/128,rows16>"}};
  if (dt != DT::BF16 && dt != DT::F16) return nullptr;
  const int i = pick_base_variant(s);
  if (i < 0 || i > 8) return nullptr;
  return kNames[dt == DT::BF16 ? 0 : 1][i];
}

cudaError_t flash_attention_split_keys(DT dt, const AttentionShape& s, const void* qkv, void* out, float scale,
                                       cudaStream_t stream) {
  if (!flash_attention_supported(dt, s, qkv, out, scale)) return cudaErrorInvalidValue;
  const FlashParams p = make_params(s, qkv, out, scale);
  const int index = pick_base_variant(s);
  return dt == DT::BF16 ? launch_split_variant<__nv_bfloat16>(index, p, s.batch, stream)
                        : launch_split_variant<__half>(index, p, s.batch, stream);
}

cudaError_t softmax_rows_f32(const float* s, int64_t ld_s, DT dt, void* p, int64_t ld_p, int64_t rows,
                             int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (rows > 0x7fffffffLL) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(rows));
  return dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    softmax_rows_kernel<T><<<grid, kSoftmaxThreads, 0, stream>>>(s, ld_s, static_cast<T*>(p), ld_p, cols);
    return cudaGetLastError();
  });
}

}  // namespace blr::kern
