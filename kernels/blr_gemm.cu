// Batched block GEMM with a fused bias/activation epilogue and a permuting store (see blr_gemm.h).
// Used for: Monarch stage 1 (batch = input block j, store permuted into u), the second stage of Monarch
// and BLAST (batch = output block k, reading u_k / z_k from the [tokens, b, r] intermediate and writing
// columns [k·o/b, (k+1)·o/b) of y with bias + activation), and both low-rank GEMMs.
//
// Tensor-core kernel: the mainloop of blr_tile.cuh, then the epilogue adds bias and applies the activation
// on the fp32 accumulators in registers, parks the tile in shared memory as 16-bit values, and writes it
// out in 16-byte chunks along rows (a run of the permuted layout is a multiple of 8 columns, so a chunk
// never straddles two runs). Four tile shapes; a cost model picks per shape: 128×128 for thousands of
// tokens, down to 32×64 so that 197 tokens still give every SM work.
// SIMT kernel: same math, element-wise, any dtype/alignment (f32 parity path and general fallback).
#include <algorithm>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/blr_gemm.h"
#include "kernels/blr_launch.cuh"
#include "kernels/blr_simt.cuh"
#include "kernels/blr_tile.cuh"

namespace blr::kern {

namespace {

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
  int m_tiles, n_tiles;  // grid.x = m_tiles·n_tiles (n fastest), grid.y = batch
  int act;
  int vec_store;  // 16-byte stores allowed (aligned C, ldc, c_batch, g, g_stride)
};

// Destination of output column c (the permuted store; g >= N makes it the identity).
template <typename T>
__device__ __forceinline__ T* out_ptr(T* row, int c, int g, long long g_stride) {
  const int grp = c / g;
  return row + grp * g_stride + (c - grp * g);
}

template <typename T, int BM, int BN, int WM, int WN, int STAGES>
__global__ void __launch_bounds__(WM* WN * 32) block_gemm_tc_kernel(GemmParams p) {
  using Core = tile::TcCore<T, BM, BN, WM, WN, STAGES>;
  extern __shared__ __align__(128) char smem[];
  tile::pdl_launch_dependents();

  const int q = blockIdx.y;
  const int tile_m = blockIdx.x / p.n_tiles, tile_n = blockIdx.x - tile_m * p.n_tiles;
  const int m0 = tile_m * BM, n0 = tile_n * BN;
  const tile::Operand A{static_cast<const char*>(p.A) + 2LL * (q * p.a_batch + m0 * p.lda), 2LL * p.lda, 0,
                        p.M - m0};
  const tile::Operand B{static_cast<const char*>(p.B) + 2LL * (q * p.b_batch + n0 * p.ldb), 2LL * p.ldb, 0,
                        p.N - n0};
  typename Core::Acc acc;
  Core::zero(acc);
  Core::run(smem, A, B, p.K, 1, acc, [](int, typename Core::Acc&) {});

  // Epilogue 1: bias + activation in fp32, tile -> shared memory as T (row stride BN+8 elements: the
  // 4-byte fragment stores of a warp then cover all 32 banks once).
  constexpr int kCld = BN + 8;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
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
  __syncthreads();

  // Epilogue 2: shared -> global in 8-column chunks, predicated on the matrix edge.
  const T* cs = reinterpret_cast<const T*>(smem);
  T* C = static_cast<T*>(p.C) + q * p.c_batch;
  constexpr int kChunksPerRow = BN / 8;
  for (int id = tid; id < BM * kChunksPerRow; id += Core::kThreads) {
    const int row = id / kChunksPerRow, cc = id - row * kChunksPerRow;
    const int gm = m0 + row, gc = n0 + cc * 8;
    if (gm >= p.M || gc >= p.N) continue;
    const T* src = cs + row * kCld + cc * 8;
    T* drow = C + gm * p.ldc;
    if (p.vec_store && gc + 8 <= p.N) {
      *reinterpret_cast<uint4*>(out_ptr(drow, gc, p.g, p.g_stride)) = *reinterpret_cast<const uint4*>(src);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e)
        if (gc + e < p.N) *out_ptr(drow, gc + e, p.g, p.g_stride) = src[e];
    }
  }
}

template <typename T, int BM, int BN>
__global__ void __launch_bounds__(simt::kThreads) block_gemm_simt_kernel(GemmParams p) {
  using Core = simt::SimtCore<T, BM, BN>;
  tile::pdl_launch_dependents();
  tile::pdl_wait();
  const int q = blockIdx.y;
  const int tile_m = blockIdx.x / p.n_tiles, tile_n = blockIdx.x - tile_m * p.n_tiles;
  const int m0 = tile_m * BM, n0 = tile_n * BN;
  const simt::SimtOperand<T> A{static_cast<const T*>(p.A) + q * p.a_batch + m0 * p.lda, p.lda, 0, p.M - m0};
  const simt::SimtOperand<T> B{static_cast<const T*>(p.B) + q * p.b_batch + n0 * p.ldb, p.ldb, 0, p.N - n0};
  typename Core::Acc acc = {};
  Core::run(A, B, p.K, 1, acc, [](int, typename Core::Acc&) {});

  const T* bias = p.bias ? static_cast<const T*>(p.bias) + q * p.bias_batch : nullptr;
  const Act act = static_cast<Act>(p.act);
  T* C = static_cast<T*>(p.C) + q * p.c_batch;
#pragma unroll
  for (int i = 0; i < Core::TM; ++i) {
    const int gm = m0 + Core::ty() + 16 * i;
    if (gm >= p.M) continue;
#pragma unroll
    for (int j = 0; j < Core::TN; ++j) {
      const int gc = n0 + Core::tx() + 16 * j;
      if (gc >= p.N) continue;
      const float v = acc[i][j] + (bias ? to_f32(bias[gc]) : 0.0f);
      *out_ptr(C + gm * p.ldc, gc, p.g, p.g_stride) = from_f32<T>(apply_act(act, v));
    }
  }
}

// ---- tile table ------------------------------------------------------------------------------------

struct TcConfig {
  int id;
  const char* name;
  int bm, bn, warps, stages, smem;
  double eff;  // relative mma throughput of the tile (ldmatrix reuse per warp), for the cost model
  void (*kernel)(GemmParams);
};

template <typename T, int BM, int BN, int WM, int WN, int STAGES>
TcConfig make_tc(int id, const char* name, double eff) {
  using Core = tile::TcCore<T, BM, BN, WM, WN, STAGES>;
  const int smem = std::max(Core::kPipeBytes, BM * (BN + 8) * 2);
  return {id, name, BM, BN, WM * WN, STAGES, smem, eff, &block_gemm_tc_kernel<T, BM, BN, WM, WN, STAGES>};
}

template <typename T>
const std::vector<TcConfig>& tc_configs() {
  static const std::vector<TcConfig> cfgs = {
      // Smaller tiles (for few tokens) get deeper pipelines: their K loops are latency-bound.
      make_tc<T, 128, 128, 2, 4, 4>(1, "128x128", 0.85),  // warp 64x32
      make_tc<T, 64, 128, 2, 2, 4>(2, "64x128", 0.80),    // warp 32x64
      make_tc<T, 64, 64, 2, 2, 6>(3, "64x64", 0.68),      // warp 32x32
      make_tc<T, 32, 64, 2, 2, 8>(4, "32x64", 0.50),      // warp 16x32
  };
  return cfgs;
}

struct Choice {
  bool tc = false;
  TcConfig cfg{};
  int simt_bm = 64;
  unsigned m_tiles = 0, n_tiles = 0;
};

bool args_sane(const BlockGemmArgs& a) {
  if (a.M < 0 || a.N < 0 || a.K < 0 || a.batch < 0) return false;
  if (a.M > INT32_MAX || a.N > INT32_MAX || a.K > INT32_MAX || a.batch > 65535) return false;
  if (a.M == 0 || a.N == 0 || a.batch == 0) return true;
  return a.C && (a.K == 0 || (a.A && a.B));
}

template <typename T>
Choice choose(const BlockGemmArgs& a, const BlrLaunch& l) {
  Choice ch;
  const DeviceCaps& caps = device_caps();
  if constexpr (!std::is_same<T, float>::value) {
    if (l.path != BlrPath::Simt && block_gemm_tc_ok(a)) {
      double best = 1e300;
      for (const TcConfig& c : tc_configs<T>()) {
        if (l.tile != 0 && l.tile != c.id) continue;
        const launch::KernelInfo info =
            launch::kernel_info(reinterpret_cast<const void*>(c.kernel), c.warps * 32, c.smem);
        if (info.status != cudaSuccess || info.occupancy <= 0) continue;
        const long long tiles = ((a.M + c.bm - 1) / c.bm) * ((a.N + c.bn - 1) / c.bn) * a.batch;
        const double est = launch::estimate_cycles(tiles, c.bm, c.bn, a.K, info.occupancy, c.eff, caps.sms, c.stages);
        if (est < best) {
          best = est;
          ch.cfg = c;
          ch.tc = true;
        }
      }
    }
  }
  const int bm = ch.tc ? ch.cfg.bm : 0, bn = ch.tc ? ch.cfg.bn : 0;
  if (ch.tc) {
    ch.m_tiles = static_cast<unsigned>((a.M + bm - 1) / bm);
    ch.n_tiles = static_cast<unsigned>((a.N + bn - 1) / bn);
  } else {
    // Small problems get 32x32 SIMT tiles so more SMs take part.
    const long long big_tiles = ((a.M + 63) / 64) * ((a.N + 63) / 64) * a.batch;
    ch.simt_bm = big_tiles < caps.sms ? 32 : 64;
    ch.m_tiles = static_cast<unsigned>((a.M + ch.simt_bm - 1) / ch.simt_bm);
    ch.n_tiles = static_cast<unsigned>((a.N + ch.simt_bm - 1) / ch.simt_bm);
  }
  return ch;
}

GemmParams make_params(const BlockGemmArgs& a, const Choice& ch) {
  GemmParams p{};
  p.A = a.A;
  p.lda = a.M <= 1 ? a.K : a.lda;
  p.a_batch = a.a_batch;
  p.B = a.B;
  p.ldb = a.ldb;
  p.b_batch = a.b_batch;
  p.C = a.C;
  p.ldc = a.ldc;
  p.c_batch = a.c_batch;
  const bool permuted = a.g > 0 && a.g < a.N;
  p.g = permuted ? static_cast<int>(a.g) : static_cast<int>(a.N);
  p.g_stride = permuted ? a.g_stride : 0;
  p.bias = a.bias;
  p.bias_batch = a.bias_batch;
  p.M = static_cast<int>(a.M);
  p.N = static_cast<int>(a.N);
  p.K = static_cast<int>(a.K);
  p.m_tiles = static_cast<int>(ch.m_tiles);
  p.n_tiles = static_cast<int>(ch.n_tiles);
  p.act = static_cast<int>(a.act);
  p.vec_store = launch::aligned16(a.C) && (a.M <= 1 || a.ldc % 8 == 0) && (a.batch <= 1 || a.c_batch % 8 == 0) &&
                (!permuted || (a.g % 8 == 0 && a.g_stride % 8 == 0));
  return p;
}

}  // namespace

const DeviceCaps& device_caps() {
  static std::mutex mu;
  static std::map<int, DeviceCaps> cache;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    cudaGetLastError();
    dev = 0;
  }
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(dev);
  if (it != cache.end()) return it->second;
  DeviceCaps c;
  c.device = dev;
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
  cudaDeviceGetAttribute(&c.sms, cudaDevAttrMultiProcessorCount, dev);
  cudaDeviceGetAttribute(&c.smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  cudaGetLastError();
  c.cc = major * 10 + minor;
  if (c.sms <= 0) c.sms = 1;
  return cache.emplace(dev, c).first->second;
}

bool block_gemm_tc_ok(const BlockGemmArgs& a) {
  if (a.dt != DT::BF16 && a.dt != DT::F16) return false;
  if (device_caps().cc < 80) return false;
  const bool a_rows = a.M <= 1 || a.lda % 8 == 0;
  const bool b_rows = a.N <= 1 || a.ldb % 8 == 0;
  const bool batches = a.batch <= 1 || (a.a_batch % 8 == 0 && a.b_batch % 8 == 0);
  return a.K % 8 == 0 && a_rows && b_rows && batches && launch::aligned16(a.A) && launch::aligned16(a.B);
}

cudaError_t block_gemm(const BlockGemmArgs& a, const BlrLaunch& l, cudaStream_t stream) {
  if (!args_sane(a)) return cudaErrorInvalidValue;
  if (a.M == 0 || a.N == 0 || a.batch == 0) return cudaSuccess;
  return dispatch_dtype(a.dt, [&](auto tag) -> cudaError_t {
    using T = decltype(tag);
    const Choice ch = choose<T>(a, l);
    const GemmParams p = make_params(a, ch);
    const dim3 grid(ch.m_tiles * ch.n_tiles, static_cast<unsigned>(a.batch));
    if (ch.tc) return launch::launch(ch.cfg.kernel, grid, dim3(ch.cfg.warps * 32), ch.cfg.smem, stream, l.pdl, p);
    auto kernel = ch.simt_bm == 32 ? &block_gemm_simt_kernel<T, 32, 32> : &block_gemm_simt_kernel<T, 64, 64>;
    return launch::launch(kernel, grid, dim3(simt::kThreads), 0, stream, l.pdl, p);
  });
}

std::string block_gemm_plan(const BlockGemmArgs& a, const BlrLaunch& l) {
  if (!args_sane(a)) return "invalid";
  if (a.M == 0 || a.N == 0 || a.batch == 0) return "empty";
  std::string out;
  dispatch_dtype(a.dt, [&](auto tag) -> cudaError_t {
    using T = decltype(tag);
    const Choice ch = choose<T>(a, l);
    char buf[160];
    const unsigned ctas = ch.m_tiles * ch.n_tiles * static_cast<unsigned>(a.batch);
    if (ch.tc)
      std::snprintf(buf, sizeof buf, "tc %s w%d s%d (%u CTAs)%s", ch.cfg.name, ch.cfg.warps, ch.cfg.stages, ctas,
                    l.pdl ? " pdl" : "");
    else
      std::snprintf(buf, sizeof buf, "simt %dx%d (%u CTAs)%s", ch.simt_bm, ch.simt_bm, ctas, l.pdl ? " pdl" : "");
    out = buf;
    return cudaSuccess;
  });
  return out;
}

std::string block_gemm_tile_names() {
  std::string s;
  for (const TcConfig& c : tc_configs<__nv_bfloat16>()) s += std::to_string(c.id) + "=" + c.name + " ";
  if (!s.empty()) s.pop_back();
  return s;
}

}  // namespace blr::kern
