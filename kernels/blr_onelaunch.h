// A whole block-low-rank layer (both stages) in ONE kernel launch, for few tokens.
//
// Why: at 197–512 tokens each stage runs for only a few microseconds, so the fixed cost of a kernel in a
// CUDA graph (launch, ramp-up, tail, the full-grid dependency between the stages) is a large part of the
// layer's time. Here stage-1 and stage-2 tiles are work items of one grid:
//   - every CTA takes a ticket from an atomic counter; tickets [0, n1) are stage-1 tiles (token-tile major),
//     the rest stage-2 tiles (also token-tile major), so all stage-1 work is handed out before any stage 2;
//   - a finished stage-1 tile bumps the ready counter of its token tile (after a fence); a stage-2 tile
//     first prefetches its weight tiles, then waits until the token tiles its rows span are complete, then
//     reads the intermediate (from L2) — so stage 2 of early token tiles overlaps stage 1 of later ones,
//     and no second launch or whole-grid dependency exists;
//   - deadlock-free for any grid size and residency: a stage-2 CTA waits only for tickets smaller than its
//     own, which were taken by CTAs already running, and stage-1 work never waits;
//   - the last CTA to finish (a done counter) resets all counters to zero, so the next launch (graph replay
//     or the next layer sharing the buffer) starts clean; the kernel's first act is griddepcontrol.wait, so
//     a launch under PDL cannot touch the counters before the previous one has finished.
// Stage 1 is BLAST's fused x·V + S-mix tile (blr_blast_tile.cuh) or a block-GEMM tile (low-rank t = x·Aᵀ,
// Monarch's permuted store); stage 2 is the block-GEMM tile with bias/activation (blr_gemm_tile.cuh).
// Tensor cores only (f16/bf16, 16-byte aligned rows); callers fall back to the two-kernel path otherwise.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "kernels/blr_blast.h"
#include "kernels/blr_gemm.h"

namespace blr::kern {

struct OneLaunchArgs {
  bool blast = false;       // stage 1 is BLAST's fused mix (blast1), otherwise a block GEMM (gemm1)
  BlockGemmArgs gemm1;      // stage 1 when !blast
  BlastStage1Args blast1;   // stage 1 when blast
  BlockGemmArgs gemm2;      // stage 2: reads the intermediate stage 1 writes
  int* sync = nullptr;      // counters, zero before the launch; the kernel leaves them zero
  int64_t sync_ints = 0;    // how many ints `sync` holds
};

// Counters needed for `tokens` rows (any tile configuration).
int64_t one_launch_sync_ints(int64_t tokens);
// Whether the single-launch kernel takes these arguments (dtype, alignment, b, shared memory, counters).
// With launch.tile != 0, whether that configuration does.
bool one_launch_ok(const OneLaunchArgs& a, const BlrLaunch& launch);
// Enqueues the layer. launch.pdl: launched under PDL (the kernel always waits before reading anything).
// cudaErrorNotSupported when !one_launch_ok.
cudaError_t one_launch(const OneLaunchArgs& a, const BlrLaunch& launch, cudaStream_t stream);
std::string one_launch_plan(const OneLaunchArgs& a, const BlrLaunch& launch);
// "1=blast 32x32/3 groups | 3x 32x64 ..." (ids for BlrLaunch::tile).
std::string one_launch_tile_names();
int one_launch_tile_count();  // ids 1..count

// An empty kernel of `ctas` CTAs × `threads` threads (which triggers its dependents and waits for its
// predecessor, as our kernels do): what one kernel node costs in a CUDA graph, for the benchmark's
// calibration line.
cudaError_t launch_probe(int ctas, int threads, bool pdl, cudaStream_t stream);

}  // namespace blr::kern
