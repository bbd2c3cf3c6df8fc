// Knobs and introspection for the CUDA linear family (dense, low-rank, Monarch, BLAST; the ops live in
// cuda_linear.cpp and cuda_blr.cpp). The defaults are what models use; tests force each path in turn to
// check all of them against the CPU reference, and `blr bench-layer` exposes them for experiments.
#pragma once

#include <cstdint>
#include <string>

namespace blr {

// Which implementation runs a stage of a BLR layer.
//   TensorCore: mma.sync kernels (f16/bf16 with 16-byte aligned rows; otherwise falls back to Simt)
//   Simt:       CUDA-core fp32 kernels (any dtype, any alignment; the f32 path)
//   CublasLt:   cuBLASLt batched GEMM with its epilogue (stages that are plain batched GEMMs: both
//               low-rank stages and the second stage of Monarch/BLAST; ignored for the first stage of
//               Monarch/BLAST, which need the permuting store or the fused S mix)
//   Auto:       TensorCore where possible; cuBLASLt for f32, for unaligned GEMM stages, and on sm_90+ for
//               low-rank's first stage (measured 2-3x faster than ours at 512 and 16384 tokens) and for
//               second stages of at least lt_min_macs MACs whose activation cuBLASLt fuses (wgmma wins
//               there); Simt otherwise.
enum class BlrStagePath : uint8_t { Auto, TensorCore, Simt, CublasLt };
const char* blr_stage_path_name(BlrStagePath p);         // "auto", "tc", "simt", "lt"
BlrStagePath parse_blr_stage_path(const std::string& s);  // throws InputError on anything else

struct BlrKernelOptions {
  BlrStagePath stage1 = BlrStagePath::Auto;
  BlrStagePath stage2 = BlrStagePath::Auto;
  bool pdl = true;   // programmatic dependent launch of stage 2 after stage 1 (sm_90+)
  // Launch the layer's FIRST kernel under PDL as well (sm_90+): it then waits for its predecessor before
  // reading anything, weights included, so it is safe after any kernel; what it gains is the launch
  // latency, hidden behind the predecessor's tail. Not for cuBLASLt stages (no PDL there).
  bool pdl_first = false;
  int tile1 = 0;     // stage-1 tile id for experiments, 0 = cost model (kern::*_tile_names())
  int tile2 = 0;     // stage-2 tile id
  // Auto on sm_90: GEMM stages of at least this many MACs go to cuBLASLt when it fuses the activation.
  // From the cost model: at ~3e8 MACs (DiT, 512 tokens) wgmma's ~1.6x throughput over mma.sync outweighs
  // the ~1 µs that programmatic dependent launch saves; ViT at 197 tokens (~8e7) stays on our kernel.
  // A guess until measured: compare `blr bench-layer --stage2 tc` and `--stage2 lt`.
  int64_t lt_min_macs = 300000000LL;
  // Which entry of cuBLASLt's heuristic list its stages use (0 = its first choice). Experiments only: an
  // index beyond the list makes the op throw.
  int lt_algo = 0;
  // Benchmarks only: 1 or 2 enqueues just that stage of a two-kernel layer (the output is then garbage),
  // so `blr bench-layer --breakdown` can time each stage on its own. 0 = both (always, outside benchmarks).
  int only_stage = 0;
};

// Process-wide options, read once from the environment: BLR_STAGE1, BLR_STAGE2 (auto|tc|simt|lt),
// BLR_PDL (0/1), BLR_PDL_FIRST (0/1), BLR_TILE1, BLR_TILE2, BLR_LT_MIN_MACS, BLR_LT_ALGO. Change them only while no other thread runs ops.
BlrKernelOptions& blr_kernel_options();

// Sets the options for a scope and restores the previous ones after (tests, benchmarks).
class ScopedBlrKernelOptions {
 public:
  explicit ScopedBlrKernelOptions(const BlrKernelOptions& o) : saved_(blr_kernel_options()) { blr_kernel_options() = o; }
  ~ScopedBlrKernelOptions() { blr_kernel_options() = saved_; }
  ScopedBlrKernelOptions(const ScopedBlrKernelOptions&) = delete;
  ScopedBlrKernelOptions& operator=(const ScopedBlrKernelOptions&) = delete;

 private:
  BlrKernelOptions saved_;
};

// How many tile configurations each kernel offers (ids 1..count for BlrKernelOptions::tile1/tile2),
// and their names ("1=128x128 2=64x128 ...").
struct BlrTileCatalog {
  int blast_stage1 = 0, gemm = 0;
  std::string blast_stage1_names, gemm_names;
};
BlrTileCatalog blr_tile_catalog();

// Enqueues an empty kernel of `ctas` CTAs (128 threads) on the ops' stream, optionally under PDL: the
// benchmark's measure of what one kernel node costs in a CUDA graph.
class CudaOps;
void blr_launch_probe(CudaOps& ops, int ctas, bool pdl);

// What the most recent linear-family op on this thread launched, e.g.
// "blast: s1 tc-mix 32x32/b<=16 w4 s4 smem 68K (128 CTAs) | s2 tc 64x64 w4 s4 (576 CTAs) pdl".
const std::string& last_linear_plan();

}  // namespace blr
