// BLAST stage 1: z_k = Σ_j s_kj ⊙ (x_j · V_jᵀ) for all k, fused (see blr_blast.h for the math).
//
// Shape of the work: the S mixing couples all b input blocks of one (token, feature) pair but nothing
// else, so a CTA takes a BM-token × BN-feature tile and runs the tensor-core mainloop over b segments
// (segment j: K = i/b columns of x against V_j's BN rows). At the end of each segment the warps park y_j
// in shared memory (16-bit, feature-major so that the mix can read it as mma fragments), and the mix
// z[t, k, n] = Σ_j y_j[t, n]·s_kj[n] runs on the tensor cores as one small [tokens × b]·[b × b] product per
// feature (blr_blast_tile.cuh has the layouts). z is written once, [tokens, b, r] row-major, which is exactly
// what the second stage's batched U GEMM reads; no mixing pass over memory exists.
//
// Tiles (blast_configs below): 32×32 and 16×32 for few tokens, 64×64 and 128×64 for many, each with the
// deepest cp.async ring the stash and S slice leave room for. The cost model in blr_launch.cuh picks per
// shape. The SIMT kernel does the same with fp32 FMA and element-wise loads (f32 storage, odd shapes).
#include <algorithm>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/blr_blast.h"
#include "kernels/blr_blast_tile.cuh"
#include "kernels/blr_launch.cuh"
#include "kernels/blr_simt.cuh"
#include "kernels/blr_tile.cuh"

namespace blr::kern {

namespace {

using detail::BlastParams;

template <typename T, int BM, int BN, int WM, int WN, int STAGES, int KJ, int G>
__global__ void __launch_bounds__(G* WM* WN * 32) blast_stage1_tc_kernel(BlastParams p) {
  using Tile = detail::BlastTile<T, BM, BN, WM, WN, STAGES, KJ, G>;
  extern __shared__ __align__(128) char smem[];
  if (p.wait_first) tile::pdl_wait();  // first kernel of a layer under PDL: nothing may be read before this
  tile::pdl_launch_dependents();
  Tile::run_tiles(p, smem, [] { tile::pdl_wait(); });
}

template <typename T, int BM, int BN>
__global__ void __launch_bounds__(simt::kThreads) blast_stage1_simt_kernel(BlastParams p) {
  using Core = simt::SimtCore<T, BM, BN>;
  extern __shared__ __align__(128) char smem[];
  float* stash = reinterpret_cast<float*>(smem);  // [b][BM][BN], each thread touches only its own elements
  tile::pdl_launch_dependents();
  tile::pdl_wait();
  const int tile_m = blockIdx.x / p.n_tiles, tile_n = blockIdx.x - tile_m * p.n_tiles;
  const int m0 = tile_m * BM, n0 = tile_n * BN;
  const int b = p.b, r = p.r;
  const simt::SimtOperand<T> A{static_cast<const T*>(p.x) + m0 * p.ldx, p.ldx, p.ib, p.M - m0};
  const simt::SimtOperand<T> B{static_cast<const T*>(p.V) + static_cast<long long>(n0) * p.ib, p.ib,
                               static_cast<long long>(r) * p.ib, r - n0};
  typename Core::Acc acc = {};
  Core::run(A, B, p.ib, b, acc, [&](int seg, typename Core::Acc& a) {
#pragma unroll
    for (int i = 0; i < Core::TM; ++i)
#pragma unroll
      for (int j = 0; j < Core::TN; ++j)
        stash[(seg * BM + Core::ty() + 16 * i) * BN + Core::tx() + 16 * j] = a[i][j];
  });
  const T* S = static_cast<const T*>(p.S);
  T* z = static_cast<T*>(p.z);
  const long long ldz = static_cast<long long>(b) * r;
  for (int i = 0; i < Core::TM; ++i) {
    const int row = Core::ty() + 16 * i, gm = m0 + row;
    if (gm >= p.M) continue;
    for (int j = 0; j < Core::TN; ++j) {
      const int col = Core::tx() + 16 * j, gc = n0 + col;
      if (gc >= r) continue;
      for (int k = 0; k < b; ++k) {
        float o = 0.0f;
        for (int jj = 0; jj < b; ++jj) o = fmaf(to_f32(S[(k * b + jj) * r + gc]), stash[(jj * BM + row) * BN + col], o);
        z[gm * ldz + k * r + gc] = from_f32<T>(o);
      }
    }
  }
}

// ---- tile table ------------------------------------------------------------------------------------

struct BlastTc {
  int id;
  const char* name;
  int bm, bn, warps, stages, bmax, groups;  // warps = all warps of the CTA; bmax = the mix's padded blocks (KJ)
  int smem_total;                            // rings + y stash + S slice (independent of b)
  double eff;
  void (*kernel)(BlastParams);
  int smem(int /*b*/) const { return smem_total; }
};

template <typename T, int BM, int BN, int WM, int WN, int STAGES, int KJ, int G>
BlastTc make_blast(int id, const char* name, double eff) {
  using Tile = detail::BlastTile<T, BM, BN, WM, WN, STAGES, KJ, G>;
  BlastTc c{};
  c.id = id;
  c.name = name;
  c.bm = BM;
  c.bn = BN;
  c.warps = G * WM * WN;
  c.stages = STAGES;
  c.bmax = KJ;
  c.groups = G;
  c.smem_total = Tile::smem_bytes();
  c.eff = eff;
  c.kernel = &blast_stage1_tc_kernel<T, BM, BN, WM, WN, STAGES, KJ, G>;
  return c;
}

template <typename T>
const std::vector<BlastTc>& blast_configs() {
  // Stage 1 keeps copies in flight with deep cp.async rings where shared memory allows (docs/perf-notes/
  // blr-kernels.md §9) next to the 16-bit y stash and S slice of the tensor-core mix (§10), whose size
  // depends on the tile and the mix's padded block count KJ, not on b. Few tokens: 32x32 / 16x32 tiles
  // (enough CTAs for the SMs) whose warp groups each run a ring over their share of the input blocks; many
  // tokens: 64x64 and 128x64. Ids 5-8 fit sm_87's 163 KiB (Jetson Orin).
  static const std::vector<BlastTc> cfgs = {
      make_blast<T, 128, 64, 4, 2, 3, 8, 1>(1, "128x64/b<=8 s3", 0.80),              // warp 32x32, 209 KiB
      make_blast<T, 64, 64, 2, 4, 4, 16, 1>(2, "64x64/b<=16 s4", 0.60),              // warp 32x16, 225 KiB
      make_blast<T, 64, 64, 2, 4, 8, 8, 1>(3, "64x64/b<=8 s8", 0.60),                // 201 KiB
      make_blast<T, 32, 32, 2, 2, 8, 16, 2>(4, "32x32/b<=16 2 groups s8", 0.40),     // warp 16x16, 177 KiB
      make_blast<T, 32, 32, 2, 2, 4, 16, 2>(5, "32x32/b<=16 2 groups s4", 0.40),     // 113 KiB
      make_blast<T, 32, 32, 2, 2, 4, 16, 1>(6, "32x32/b<=16 s4", 0.40),              // 81 KiB
      make_blast<T, 16, 32, 1, 2, 5, 8, 3>(7, "16x32/b<=8 3 groups s5", 0.35),       // warp 16x16, 103 KiB
      make_blast<T, 32, 32, 2, 2, 5, 8, 3>(8, "32x32/b<=8 3 groups s5", 0.40),       // 141 KiB
      make_blast<T, 32, 32, 2, 2, 6, 16, 3>(9, "32x32/b<=16 3 groups s6", 0.40),     // 193 KiB
      make_blast<T, 32, 64, 2, 2, 4, 16, 2>(10, "32x64/b<=16 2 groups s4", 0.50),   // warp 16x32, 193 KiB
  };
  return cfgs;
}

struct Choice {
  bool tc = false;
  BlastTc cfg{};
  int smem = 0;
  int simt_tile = 32;
  unsigned m_tiles = 0, n_tiles = 0;
  unsigned ctas = 0;  // grid size: tensor-core CTAs loop over tiles (at most what is resident at once)
};

bool args_sane(const BlastStage1Args& a) {
  if (a.M < 0 || a.b < 1 || a.r < 0 || a.ib < 0) return false;
  if (a.M > INT32_MAX || a.r > INT32_MAX || a.ib > INT32_MAX) return false;
  if (static_cast<long long>(a.b) * a.b * a.r > INT32_MAX || static_cast<long long>(a.b) * a.r * a.ib > INT32_MAX)
    return false;
  if (a.M == 0 || a.r == 0) return true;
  return a.z && (a.ib == 0 || (a.x && a.V)) && a.S;
}

bool tc_shape_ok(const BlastStage1Args& a) {
  if (a.dt != DT::BF16 && a.dt != DT::F16) return false;
  if (device_caps().cc < 80 || a.b > 16) return false;
  // ib > 0: with no K at all no segment would end, and the stash the mix reads would never be written.
  return a.ib > 0 && a.ib % 8 == 0 && (a.M <= 1 || a.ldx % 8 == 0) && launch::aligned16(a.x) &&
         launch::aligned16(a.V);
}

template <typename T>
Choice choose(const BlastStage1Args& a, const BlrLaunch& l) {
  Choice ch;
  const DeviceCaps& caps = device_caps();
  if constexpr (!std::is_same<T, float>::value) {
    if (l.path != BlrPath::Simt && tc_shape_ok(a)) {
      double best = 1e300;
      for (const BlastTc& c : blast_configs<T>()) {
        if (l.tile != 0 && l.tile != c.id) continue;
        if (a.b > c.bmax || c.smem(a.b) > caps.smem_optin) continue;
        const launch::KernelInfo info =
            launch::kernel_info(reinterpret_cast<const void*>(c.kernel), c.warps * 32, c.smem(a.b));
        if (info.status != cudaSuccess || info.occupancy <= 0) continue;
        const long long kt = (a.ib + 63) / 64;  // k-tiles per input block
        launch::TileCost tc;
        tc.tiles = ((a.M + c.bm - 1) / c.bm) * ((a.r + c.bn - 1) / c.bn);
        tc.bm = c.bm;
        tc.bn = c.bn;
        tc.k_total = a.b * kt * 64;
        tc.k_serial = static_cast<long long>((a.b + c.groups - 1) / c.groups) * kt * 64;
        tc.ring = c.stages - 1;
        tc.groups = c.groups;
        tc.eff = c.eff;
        // The tensor-core mix: ~4 instructions per 16 tokens x feature, plus one 16-byte store per 8 features.
        tc.extra_cycles = (0.5 + a.b / 16.0) * c.bm * c.bn;
        tc.persistent = true;
        const double est = launch::estimate_cycles(tc, info.occupancy, caps.sms);
        if (est < best) {
          best = est;
          ch.cfg = c;
          ch.tc = true;
          ch.ctas = static_cast<unsigned>(std::min<long long>(tc.tiles, static_cast<long long>(info.occupancy) * caps.sms));
        }
      }
    }
  }
  if (ch.tc) {
    ch.smem = ch.cfg.smem(a.b);
    ch.m_tiles = static_cast<unsigned>((a.M + ch.cfg.bm - 1) / ch.cfg.bm);
    ch.n_tiles = static_cast<unsigned>((a.r + ch.cfg.bn - 1) / ch.cfg.bn);
  } else {
    // 32x32 while the fp32 stash (plus ~4 KiB of static tiles) fits comfortably, else 16x16.
    ch.simt_tile = a.b * 32 * 32 * 4 <= std::min(caps.smem_optin - 8 * 1024, 160 * 1024) ? 32 : 16;
    ch.smem = a.b * ch.simt_tile * ch.simt_tile * 4;
    ch.m_tiles = static_cast<unsigned>((a.M + ch.simt_tile - 1) / ch.simt_tile);
    ch.n_tiles = static_cast<unsigned>((a.r + ch.simt_tile - 1) / ch.simt_tile);
    ch.ctas = ch.m_tiles * ch.n_tiles;
  }
  return ch;
}

BlastParams make_params(const BlastStage1Args& a, const Choice& ch, const BlrLaunch& l) {
  return detail::make_blast_params(a, static_cast<int>(ch.m_tiles), static_cast<int>(ch.n_tiles), l.wait_first);
}

}  // namespace

namespace detail {

BlastParams make_blast_params(const BlastStage1Args& a, int m_tiles, int n_tiles, bool wait_first) {
  BlastParams p{};
  p.x = a.x;
  p.ldx = a.M <= 1 ? static_cast<long long>(a.b) * a.ib : a.ldx;
  p.V = a.V;
  p.S = a.S;
  p.z = a.z;
  p.M = static_cast<int>(a.M);
  p.b = a.b;
  p.r = static_cast<int>(a.r);
  p.ib = static_cast<int>(a.ib);
  p.m_tiles = m_tiles;
  p.n_tiles = n_tiles;
  p.vec_z = a.r % 8 == 0 && launch::aligned16(a.z);
  p.vec_s = a.r % 8 == 0 && launch::aligned16(a.S);
  p.wait_first = wait_first ? 1 : 0;
  return p;
}

bool blast_stage1_tc_args_ok(const BlastStage1Args& a) { return args_sane(a) && (a.M == 0 || a.r == 0 || tc_shape_ok(a)); }

}  // namespace detail

bool blast_stage1_tc_ok(const BlastStage1Args& a) {
  if (!args_sane(a) || !tc_shape_ok(a)) return false;
  bool ok = false;
  dispatch_dtype(a.dt, [&](auto tag) -> cudaError_t {
    using T = decltype(tag);
    ok = choose<T>(a, BlrLaunch{}).tc;
    return cudaSuccess;
  });
  return ok;
}

cudaError_t blast_stage1(const BlastStage1Args& a, const BlrLaunch& l, cudaStream_t stream) {
  if (!args_sane(a)) return cudaErrorInvalidValue;
  if (a.M == 0 || a.r == 0) return cudaSuccess;
  return dispatch_dtype(a.dt, [&](auto tag) -> cudaError_t {
    using T = decltype(tag);
    const Choice ch = choose<T>(a, l);
    const BlastParams p = make_params(a, ch, l);
    const dim3 grid(ch.ctas);
    if (ch.tc) return launch::launch(ch.cfg.kernel, grid, dim3(ch.cfg.warps * 32), ch.smem, stream, l.pdl, p);
    auto kernel = ch.simt_tile == 32 ? &blast_stage1_simt_kernel<T, 32, 32> : &blast_stage1_simt_kernel<T, 16, 16>;
    const launch::KernelInfo info = launch::kernel_info(reinterpret_cast<const void*>(kernel), simt::kThreads, ch.smem);
    if (info.status != cudaSuccess) return info.status;
    if (info.occupancy <= 0) return cudaErrorInvalidConfiguration;  // b too large for shared memory
    return launch::launch(kernel, grid, dim3(simt::kThreads), ch.smem, stream, l.pdl, p);
  });
}

std::string blast_stage1_plan(const BlastStage1Args& a, const BlrLaunch& l) {
  if (!args_sane(a)) return "invalid";
  if (a.M == 0 || a.r == 0) return "empty";
  std::string out;
  dispatch_dtype(a.dt, [&](auto tag) -> cudaError_t {
    using T = decltype(tag);
    const Choice ch = choose<T>(a, l);
    char buf[200];
    const unsigned tiles = ch.m_tiles * ch.n_tiles;
    char grid[64];
    if (ch.ctas < tiles) std::snprintf(grid, sizeof grid, "%u tiles on %u CTAs", tiles, ch.ctas);
    else std::snprintf(grid, sizeof grid, "%u CTAs", tiles);
    if (ch.tc)
      std::snprintf(buf, sizeof buf, "tc-mix %s w%d s%d smem %dK (%s)%s", ch.cfg.name, ch.cfg.warps, ch.cfg.stages,
                    (ch.smem + 1023) / 1024, grid, launch::pdl_tag(l.pdl, l.wait_first));
    else
      std::snprintf(buf, sizeof buf, "simt-mix %dx%d (%u CTAs)%s", ch.simt_tile, ch.simt_tile, tiles,
                    launch::pdl_tag(l.pdl, l.wait_first));
    out = buf;
    return cudaSuccess;
  });
  return out;
}

int blast_stage1_tile_count() { return static_cast<int>(blast_configs<__nv_bfloat16>().size()); }

std::string blast_stage1_tile_names() {
  std::string s;
  for (const BlastTc& c : blast_configs<__nv_bfloat16>()) s += std::to_string(c.id) + "=" + c.name + "; ";
  if (!s.empty()) s.resize(s.size() - 2);
  return s;
}

}  // namespace blr::kern
