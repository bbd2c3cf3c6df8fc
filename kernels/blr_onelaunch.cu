// Single-launch BLR layer: stage-1 and stage-2 tiles as work items of one grid, ordered by tickets and
// per-token-tile ready counters (see blr_onelaunch.h for the protocol and why it cannot deadlock).
//
// A CTA is G warp groups of 4 warps. A stage-1 ticket is one BLAST tile computed by the whole CTA (its G
// groups split the input blocks, as in the stand-alone kernel) or G block-GEMM tiles (one per group); a
// stage-2 ticket is G block-GEMM tiles, one per group, each with its own pipeline, shared memory and named
// barrier. Configurations (ids for BlrLaunch::tile) pair a stage-1 tile with a stage-2 tile of the same
// thread count; the cost model picks one like the stand-alone launchers do.
#include <algorithm>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/blr_blast_tile.cuh"
#include "kernels/blr_gemm_tile.cuh"
#include "kernels/blr_launch.cuh"
#include "kernels/blr_onelaunch.h"

namespace blr::kern {

namespace {

struct OneParams {
  detail::GemmParams g1;
  detail::BlastParams b1;
  detail::GemmParams g2;
  int* sync;      // [0] ticket, [1] done, [2 + t] finished stage-1 items of stage-1 token tile t
  int n1_tickets;
  int n1_items;   // stage-1 tiles
  int n2_items;   // stage-2 tiles
  int per_tm1;    // stage-1 tiles per stage-1 token tile
  int bm1;        // rows of a stage-1 token tile
  int m_tiles1;
  int per_tm2;    // stage-2 tiles per stage-2 token tile (n_tiles · batch)
};

__device__ __forceinline__ int ld_acquire(const int* p) {
  int v;
  asm volatile("ld.acquire.gpu.global.s32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Called by one thread after a barrier that follows all of the tile's stores: makes them visible at GPU
// scope, then counts the tile as done.
__device__ __forceinline__ void signal_ready(int* counter) {
  __threadfence();
  atomicAdd(counter, 1);
}

__device__ __forceinline__ void wait_ready(const int* counter, int need) {
  while (ld_acquire(counter) < need) __nanosleep(32);
}

// Shared memory of one warp group: stage-2 tiles (and, for GEMM stage 1, stage-1 tiles) live side by side.
template <class S1, class S2, bool kBlast>
struct GroupSmem {
  static constexpr int value = S1::kSmem > S2::kSmem ? S1::kSmem : S2::kSmem;
};
template <class S1, class S2>
struct GroupSmem<S1, S2, true> {
  static constexpr int value = S2::kSmem;
};

template <typename T, class S1, class S2, int G, bool kBlast>
__global__ void __launch_bounds__(G * 128) one_launch_kernel(OneParams p) {
  static_assert(S2::kThreads == 128 && (kBlast ? S1::kThreads == G * 128 : S1::kThreads == 128),
                "a CTA is G groups of 4 warps");
  extern __shared__ __align__(128) char smem[];
  __shared__ int s_ticket;
  // The counters may still be in use by the previous launch until it has finished (launch under PDL).
  tile::pdl_wait();
  tile::pdl_launch_dependents();

  const int tid = threadIdx.x, group = tid >> 7, gtid = tid & 127;
  const int bar = G > 1 ? 1 + group : 0;  // named barrier of this group (0: __syncthreads, G == 1)
  if (tid == 0) s_ticket = atomicAdd(p.sync, 1);
  __syncthreads();
  const int ticket = s_ticket;

  if (ticket < p.n1_tickets) {
    if constexpr (kBlast) {
      const int tm = ticket / p.per_tm1, tn = ticket - tm * p.per_tm1;
      S1::run(p.b1, tm, tn, smem, [] {});
      __syncthreads();  // all of the tile's z stores issued
      if (tid == 0) signal_ready(p.sync + 2 + tm);
    } else {
      const int item = ticket * G + group;
      if (item < p.n1_items) {
        const int tm = item / p.per_tm1, rest = item - tm * p.per_tm1;
        const int q = rest / p.g1.n_tiles, tn = rest - q * p.g1.n_tiles;
        S1::run(p.g1, q, tm, tn, smem + group * GroupSmem<S1, S2, kBlast>::value, typename S1::Group{gtid, bar, 0, 1},
                [] {});
        S1::Core::group_sync(bar);
        if (gtid == 0) signal_ready(p.sync + 2 + tm);
      }
    }
  } else {
    const int item = (ticket - p.n1_tickets) * G + group;
    if (item < p.n2_items) {
      const int tm = item / p.per_tm2, rest = item - tm * p.per_tm2;
      const int q = rest / p.g2.n_tiles, tn = rest - q * p.g2.n_tiles;
      const int m0 = tm * S2::BM;
      const int first = m0 / p.bm1, last = min(p.g2.M - 1, m0 + S2::BM - 1) / p.bm1;
      const int need = p.per_tm1;
      S2::run(p.g2, q, tm, tn, smem + group * GroupSmem<S1, S2, kBlast>::value, typename S2::Group{gtid, bar, 0, 1}, [&] {
        if (gtid == 0)
          for (int t = first; t <= last; ++t) wait_ready(p.sync + 2 + t, need);
        S2::Core::group_sync(bar);
      });
    }
  }

  // Done: the last CTA out resets every counter for the next launch (all others have finished with them).
  __syncthreads();
  if (tid == 0) {
    __threadfence();
    if (atomicAdd(p.sync + 1, 1) == static_cast<int>(gridDim.x) - 1) {
      volatile int* s = p.sync;
      for (int i = 0; i < 2 + p.m_tiles1; ++i) s[i] = 0;
      __threadfence();
    }
  }
}

__global__ void probe_kernel() {
  tile::pdl_launch_dependents();
  tile::pdl_wait();
}

// ---- configurations --------------------------------------------------------------------------------

struct OneConfig {
  int id;
  const char* name;
  bool blast;
  int groups;
  int bm1, bn1, bm2, bn2;
  int stages1, stages2;
  int bmax;                    // BLAST: largest b the mixing handles
  int smem_fixed;              // bytes independent of b
  int stash_row_bytes;         // BLAST: per block, per token row of the stash (kSld · sizeof(stash element))
  double eff1, eff2;
  void (*kernel)(OneParams);
  int smem(int b) const {
    if (!blast) return smem_fixed;
    // max(stage-1 tile: pipelines + stash + S slice, stage-2: G tiles)
    const int s1 = smem_fixed + b * bm1 * stash_row_bytes + b * b * bn1 * 4;
    return std::max(s1, groups * s2_bytes);
  }
  int s2_bytes;  // one stage-2 tile's shared memory
};

template <typename T, int BMAX, int G, int STG1, int BM2, int BN2, int STG2>
OneConfig make_blast_cfg(int id, const char* name, double eff1, double eff2) {
  using S1 = detail::BlastTile<T, 32, 32, 2, 2, STG1, BMAX, G, T>;
  using S2 = detail::GemmTile<T, BM2, BN2, 2, 2, STG2>;
  OneConfig c{};
  c.id = id;
  c.name = name;
  c.blast = true;
  c.groups = G;
  c.bm1 = 32;
  c.bn1 = 32;
  c.bm2 = BM2;
  c.bn2 = BN2;
  c.stages1 = STG1;
  c.stages2 = STG2;
  c.bmax = BMAX;
  c.smem_fixed = S1::smem_bytes(0);
  c.stash_row_bytes = S1::kSld * static_cast<int>(sizeof(T));
  c.s2_bytes = S2::kSmem;
  c.eff1 = eff1;
  c.eff2 = eff2;
  c.kernel = &one_launch_kernel<T, S1, S2, G, true>;
  return c;
}

template <typename T, int G, int BM1, int BN1, int STG1, int BM2, int BN2, int STG2>
OneConfig make_gemm_cfg(int id, const char* name, double eff1, double eff2) {
  using S1 = detail::GemmTile<T, BM1, BN1, 2, 2, STG1>;
  using S2 = detail::GemmTile<T, BM2, BN2, 2, 2, STG2>;
  OneConfig c{};
  c.id = id;
  c.name = name;
  c.blast = false;
  c.groups = G;
  c.bm1 = BM1;
  c.bn1 = BN1;
  c.bm2 = BM2;
  c.bn2 = BN2;
  c.stages1 = STG1;
  c.stages2 = STG2;
  c.bmax = 0;
  c.s2_bytes = S2::kSmem;
  c.smem_fixed = G * std::max(S1::kSmem, S2::kSmem);
  c.eff1 = eff1;
  c.eff2 = eff2;
  c.kernel = &one_launch_kernel<T, S1, S2, G, false>;
  return c;
}

template <typename T>
const std::vector<OneConfig>& one_configs() {
  static const std::vector<OneConfig> cfgs = {
      // BLAST: stage 1 is the 32×32 fused-mix tile with a 16-bit y stash (small shared memory, so stage-2
      // CTAs can sit beside it); 3 groups take the input blocks in parallel (short serial K at b = 9).
      make_blast_cfg<T, 9, 3, 4, 32, 64, 4>(1, "blast 32x32/b<=9/3 groups | 3x 32x64", 0.40, 0.50),
      make_blast_cfg<T, 16, 1, 6, 32, 64, 6>(2, "blast 32x32/b<=16 | 32x64", 0.40, 0.50),
      make_blast_cfg<T, 16, 1, 6, 64, 64, 4>(3, "blast 32x32/b<=16 | 64x64", 0.40, 0.68),
      // Low-rank and Monarch: block-GEMM tiles in both stages.
      make_gemm_cfg<T, 1, 32, 64, 6, 32, 64, 6>(4, "gemm 32x64 | 32x64", 0.50, 0.50),
      make_gemm_cfg<T, 1, 64, 64, 4, 64, 64, 4>(5, "gemm 64x64 | 64x64", 0.68, 0.68),
      make_gemm_cfg<T, 3, 32, 64, 4, 32, 64, 4>(6, "gemm 3x 32x64 | 3x 32x64", 0.50, 0.50),
  };
  return cfgs;
}

struct Stage1Shape {
  long long M = 0, N = 0, K = 0;  // per item: rows, columns (rank slice), K loop (all segments)
  int batch = 1, b = 1;
  long long k_serial = 0;
};

struct Choice {
  bool ok = false;
  OneConfig cfg{};
  int smem = 0;
  OneParams p{};
  int tickets = 0;
};

bool stage_args_ok(const OneLaunchArgs& a) {
  if (a.gemm2.dt != DT::BF16 && a.gemm2.dt != DT::F16) return false;
  if (device_caps().cc < 80 || !a.sync) return false;
  const BlockGemmArgs& g2 = a.gemm2;
  if (!detail::block_gemm_args_sane(g2) || !block_gemm_tc_ok(g2) || g2.M < 1 || g2.N < 1 || g2.batch < 1) return false;
  if (a.blast) {
    const BlastStage1Args& b1 = a.blast1;
    return b1.dt == g2.dt && b1.M == g2.M && b1.r > 0 && detail::blast_stage1_tc_args_ok(b1);
  }
  const BlockGemmArgs& g1 = a.gemm1;
  return g1.dt == g2.dt && g1.M == g2.M && g1.N >= 1 && g1.batch >= 1 && detail::block_gemm_args_sane(g1) &&
         block_gemm_tc_ok(g1);
}

template <typename T>
Choice choose(const OneLaunchArgs& a, const BlrLaunch& l) {
  Choice best;
  if constexpr (std::is_same<T, float>::value) {
    return best;
  } else {
    if (!stage_args_ok(a)) return best;
    const DeviceCaps& caps = device_caps();
    const long long M = a.gemm2.M;
    double best_est = 1e300;
    for (const OneConfig& c : one_configs<T>()) {
      if (c.blast != a.blast || (l.tile != 0 && l.tile != c.id)) continue;
      if (c.blast && a.blast1.b > c.bmax) continue;
      const int b = a.blast ? a.blast1.b : 1;
      const int smem = c.smem(b);
      if (smem > caps.smem_optin) continue;
      const long long m_tiles1 = (M + c.bm1 - 1) / c.bm1;
      if (2 + m_tiles1 > a.sync_ints) continue;
      const launch::KernelInfo info =
          launch::kernel_info(reinterpret_cast<const void*>(c.kernel), c.groups * 128, smem);
      if (info.status != cudaSuccess || info.occupancy <= 0) continue;

      OneParams p{};
      p.sync = a.sync;
      p.bm1 = c.bm1;
      p.m_tiles1 = static_cast<int>(m_tiles1);
      long long n1_items = 0, per_tm1 = 0, n1_tickets = 0;
      double est1 = 0;
      if (a.blast) {
        const long long n_tiles1 = (a.blast1.r + c.bn1 - 1) / c.bn1;
        per_tm1 = n_tiles1;
        n1_items = m_tiles1 * n_tiles1;
        n1_tickets = n1_items;
        p.b1 = detail::make_blast_params(a.blast1, static_cast<int>(n_tiles1), false);
        const double mix = static_cast<double>(b) * b * c.bm1 * c.bn1 / 128.0;
        const long long serial = static_cast<long long>((b + c.groups - 1) / c.groups) * a.blast1.ib;
        est1 = launch::estimate_cycles(n1_items, c.bm1, c.bn1, static_cast<long long>(b) * a.blast1.ib,
                                       info.occupancy, c.eff1, caps.sms, c.stages1, mix, serial);
      } else {
        const BlockGemmArgs& g1 = a.gemm1;
        const long long n_tiles1 = (g1.N + c.bn1 - 1) / c.bn1;
        per_tm1 = n_tiles1 * g1.batch;
        n1_items = m_tiles1 * per_tm1;
        n1_tickets = (n1_items + c.groups - 1) / c.groups;
        p.g1 = detail::make_gemm_params(g1, static_cast<int>(m_tiles1), static_cast<int>(n_tiles1), false);
        est1 = launch::estimate_cycles(n1_items, c.bm1, c.bn1, g1.K, info.occupancy * c.groups, c.eff1, caps.sms,
                                       c.stages1);
      }
      const BlockGemmArgs& g2 = a.gemm2;
      const long long m_tiles2 = (M + c.bm2 - 1) / c.bm2, n_tiles2 = (g2.N + c.bn2 - 1) / c.bn2;
      const long long per_tm2 = n_tiles2 * g2.batch;
      const long long n2_items = m_tiles2 * per_tm2;
      const long long n2_tickets = (n2_items + c.groups - 1) / c.groups;
      if (n1_tickets + n2_tickets > INT32_MAX || n1_items > INT32_MAX || n2_items > INT32_MAX) continue;
      p.g2 = detail::make_gemm_params(g2, static_cast<int>(m_tiles2), static_cast<int>(n_tiles2), false);
      p.n1_tickets = static_cast<int>(n1_tickets);
      p.n1_items = static_cast<int>(n1_items);
      p.n2_items = static_cast<int>(n2_items);
      p.per_tm1 = static_cast<int>(per_tm1);
      p.per_tm2 = static_cast<int>(per_tm2);
      const double est2 = launch::estimate_cycles(n2_items, c.bm2, c.bn2, g2.K, info.occupancy * c.groups, c.eff2,
                                                  caps.sms, c.stages2);
      const double est = est1 + est2;
      if (est < best_est) {
        best_est = est;
        best.ok = true;
        best.cfg = c;
        best.smem = smem;
        best.p = p;
        best.tickets = static_cast<int>(n1_tickets + n2_tickets);
      }
    }
    return best;
  }
}

}  // namespace

int64_t one_launch_sync_ints(int64_t tokens) { return 2 + (std::max<int64_t>(tokens, 0) + 31) / 32; }

bool one_launch_ok(const OneLaunchArgs& a, const BlrLaunch& l) {
  bool ok = false;
  dispatch_dtype(a.gemm2.dt, [&](auto tag) -> cudaError_t {
    using T = decltype(tag);
    ok = choose<T>(a, l).ok;
    return cudaSuccess;
  });
  return ok;
}

cudaError_t one_launch(const OneLaunchArgs& a, const BlrLaunch& l, cudaStream_t stream) {
  return dispatch_dtype(a.gemm2.dt, [&](auto tag) -> cudaError_t {
    using T = decltype(tag);
    const Choice ch = choose<T>(a, l);
    if (!ch.ok) return cudaErrorNotSupported;
    return launch::launch(ch.cfg.kernel, dim3(static_cast<unsigned>(ch.tickets)), dim3(ch.cfg.groups * 128), ch.smem,
                          stream, l.pdl, ch.p);
  });
}

std::string one_launch_plan(const OneLaunchArgs& a, const BlrLaunch& l) {
  std::string out = "one-launch unavailable";
  dispatch_dtype(a.gemm2.dt, [&](auto tag) -> cudaError_t {
    using T = decltype(tag);
    const Choice ch = choose<T>(a, l);
    if (!ch.ok) return cudaSuccess;
    char buf[200];
    std::snprintf(buf, sizeof buf, "one-launch %d:%s smem %dK (%d+%d tiles, %d CTAs)%s", ch.cfg.id, ch.cfg.name,
                  (ch.smem + 1023) / 1024, ch.p.n1_items, ch.p.n2_items, ch.tickets, l.pdl ? " pdl-first" : "");
    out = buf;
    return cudaSuccess;
  });
  return out;
}

int one_launch_tile_count() { return static_cast<int>(one_configs<__nv_bfloat16>().size()); }

std::string one_launch_tile_names() {
  std::string s;
  for (const OneConfig& c : one_configs<__nv_bfloat16>()) s += std::to_string(c.id) + "=" + c.name + "; ";
  if (!s.empty()) s.resize(s.size() - 2);
  return s;
}

cudaError_t launch_probe(int ctas, int threads, bool pdl, cudaStream_t stream) {
  if (ctas < 1 || threads < 1 || threads > 1024) return cudaErrorInvalidValue;
  return launch::launch(&probe_kernel, dim3(static_cast<unsigned>(ctas)), dim3(static_cast<unsigned>(threads)), 0,
                        stream, pdl);
}

}  // namespace blr::kern
