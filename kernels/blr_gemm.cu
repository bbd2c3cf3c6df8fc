// Batched block GEMM with a fused bias/activation epilogue and a permuting store (see blr_gemm.h).
// Used for: Monarch stage 1 (batch = input block j, store permuted into u), the second stage of Monarch
// and BLAST (batch = output block k, reading u_k / z_k from the [tokens, b, r] intermediate and writing
// columns [k·o/b, (k+1)·o/b) of y with bias + activation), and both low-rank GEMMs when they do not go to
// cuBLASLt.
//
// Tensor-core kernel: the mainloop of blr_tile.cuh (64-wide k-tiles, whole-cache-line copies, rings of
// ~96 KiB so two CTAs share an SM with ~190 KiB of copies in flight), then the epilogue adds bias and
// applies the activation on the fp32 accumulators in registers, parks the tile in shared memory as 16-bit
// values, and writes it out in 16-byte chunks along rows (a run of the permuted layout is a multiple of 8
// columns, so a chunk never straddles two runs) — one tile per CTA; the tile body is blr_gemm_tile.cuh.
// Four tile shapes; a cost model (blr_launch.cuh) picks per shape: 128×128 for thousands of tokens, down
// to 32×64 so that 197 tokens still give every SM work.
// SIMT kernel: same math, element-wise, any dtype/alignment (f32 parity path and general fallback).
#include <algorithm>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/blr_gemm.h"
#include "kernels/blr_gemm_tile.cuh"
#include "kernels/blr_launch.cuh"
#include "kernels/blr_simt.cuh"
#include "kernels/blr_tile.cuh"

namespace blr::kern {

namespace {

using detail::GemmParams;
using detail::out_ptr;

// Two CTAs per SM: at most 128 registers for 256 threads (the rings are sized for two CTAs as well).
template <typename T, int BM, int BN, int WM, int WN, int STAGES>
__global__ void __launch_bounds__(WM* WN * 32, 2) block_gemm_tc_kernel(GemmParams p) {
  using Tile = detail::GemmTile<T, BM, BN, WM, WN, STAGES>;
  extern __shared__ __align__(128) char smem[];
  if (p.wait_first) tile::pdl_wait();  // first kernel of a layer under PDL: nothing may be read before this
  tile::pdl_launch_dependents();
  const int tile_m = blockIdx.x / p.n_tiles, tile_n = blockIdx.x - tile_m * p.n_tiles;
  Tile::run(p, blockIdx.y, tile_m, tile_n, smem, typename Tile::Group{static_cast<int>(threadIdx.x), 0, 0, 1},
            [] { tile::pdl_wait(); });
}

// An empty kernel that triggers its dependents and waits for its predecessor, as our kernels do: what one
// kernel node costs in a CUDA graph (blr bench-layer --probe).
__global__ void probe_kernel() {
  tile::pdl_launch_dependents();
  tile::pdl_wait();
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
  const int smem = detail::GemmTile<T, BM, BN, WM, WN, STAGES>::kSmem;
  return {id, name, BM, BN, WM * WN, STAGES, smem, eff, &block_gemm_tc_kernel<T, BM, BN, WM, WN, STAGES>};
}

template <typename T>
const std::vector<TcConfig>& tc_configs() {
  // Rings of 96 KiB (two CTAs per SM on sm_90, one on sm_87): 3-8 k-tiles of 64 in flight per CTA.
  static const std::vector<TcConfig> cfgs = {
      make_tc<T, 128, 128, 2, 4, 3>(1, "128x128", 0.85),  // warp 64x32, 3 x 32 KiB
      make_tc<T, 64, 128, 2, 2, 4>(2, "64x128", 0.80),    // warp 32x64, 4 x 24 KiB
      make_tc<T, 64, 64, 2, 2, 6>(3, "64x64", 0.68),      // warp 32x32, 6 x 16 KiB
      make_tc<T, 32, 64, 2, 2, 8>(4, "32x64", 0.50),      // warp 16x32, 8 x 12 KiB
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
      // At a few hundred tokens the cost model prefers fewer, larger tiles, but the H200 sweeps (run 5 vs
      // run 7 in docs/device-runs) measured the opposite: a ViT stage 2 at 197 tokens took 4.7 us on 32-row
      // tiles (336 CTAs) and 9.9 us on 64x128 (96 CTAs). With few rows, spread the work over more SMs.
      const bool few_rows = a.M <= 256;
      for (const TcConfig& c : tc_configs<T>()) {
        if (l.tile != 0 && l.tile != c.id) continue;
        if (l.tile == 0 && few_rows && c.bm != 32) continue;
        const launch::KernelInfo info =
            launch::kernel_info(reinterpret_cast<const void*>(c.kernel), c.warps * 32, c.smem);
        if (info.status != cudaSuccess || info.occupancy <= 0) continue;
        const long long tiles = ((a.M + c.bm - 1) / c.bm) * ((a.N + c.bn - 1) / c.bn) * a.batch;
        launch::TileCost tc;
        tc.tiles = tiles;
        tc.bm = c.bm;
        tc.bn = c.bn;
        tc.k_total = a.K;
        tc.k_serial = a.K;
        tc.ring = c.stages - 1;
        tc.eff = c.eff;
        const double est = launch::estimate_cycles(tc, info.occupancy, caps.sms);
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

GemmParams make_params(const BlockGemmArgs& a, const Choice& ch, const BlrLaunch& l) {
  return detail::make_gemm_params(a, static_cast<int>(ch.m_tiles), static_cast<int>(ch.n_tiles), l.wait_first);
}

}  // namespace

namespace detail {

GemmParams make_gemm_params(const BlockGemmArgs& a, int m_tiles, int n_tiles, bool wait_first) {
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
  p.m_tiles = m_tiles;
  p.n_tiles = n_tiles;
  p.batch = a.batch;
  p.act = static_cast<int>(a.act);
  p.vec_store = launch::aligned16(a.C) && (a.M <= 1 || a.ldc % 8 == 0) && (a.batch <= 1 || a.c_batch % 8 == 0) &&
                (!permuted || (a.g % 8 == 0 && a.g_stride % 8 == 0));
  p.wait_first = wait_first ? 1 : 0;
  return p;
}

bool block_gemm_args_sane(const BlockGemmArgs& a) { return args_sane(a); }

}  // namespace detail

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
    const GemmParams p = make_params(a, ch, l);
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
                    launch::pdl_tag(l.pdl, l.wait_first));
    else
      std::snprintf(buf, sizeof buf, "simt %dx%d (%u CTAs)%s", ch.simt_bm, ch.simt_bm, ctas,
                    launch::pdl_tag(l.pdl, l.wait_first));
    out = buf;
    return cudaSuccess;
  });
  return out;
}

cudaError_t launch_probe(int ctas, int threads, bool pdl, cudaStream_t stream) {
  if (ctas < 1 || threads < 1 || threads > 1024) return cudaErrorInvalidValue;
  return launch::launch(&probe_kernel, dim3(static_cast<unsigned>(ctas)), dim3(static_cast<unsigned>(threads)), 0,
                        stream, pdl);
}

int block_gemm_tile_count() { return static_cast<int>(tc_configs<__nv_bfloat16>().size()); }

std::string block_gemm_tile_names() {
  std::string s;
  for (const TcConfig& c : tc_configs<__nv_bfloat16>()) s += std::to_string(c.id) + "=" + c.name + " ";
  if (!s.empty()) s.pop_back();
  return s;
}

}  // namespace blr::kern
