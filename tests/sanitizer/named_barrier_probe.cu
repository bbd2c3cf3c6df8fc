// A race-free kernel shaped like the BLAST stage-1 tile loop (kernels/blr_blast_tile.cuh, run_tiles), for
// checking what compute-sanitizer's racecheck makes of it. Two warp groups each run their own loop of
// named-barrier steps (bar.sync 1/2 with 128 threads) -- unequal trip counts when `unequal` is set, as with
// b = 9 input blocks on 2 groups -- then the whole CTA meets at __syncthreads(), reads a shared slice that
// every thread wrote (the mix reading the S slice), meets again, and rewrites the slice for the next tile
// (load_s). Every write and read of `slice` is separated by a CTA-wide barrier, so any hazard racecheck
// reports on `slice` is a false positive of its barrier tracking, not a race.
//   nvcc -arch=sm_90 -lineinfo -o probe tests/sanitizer/named_barrier_probe.cu
//   compute-sanitizer --tool racecheck ./probe 0   (equal trip counts)   ./probe 1   (unequal)
#include <cstdio>
#include <cstdlib>

__device__ __forceinline__ void group_sync(int g) {
  if (g == 0) asm volatile("bar.sync 1, 128;\n" ::: "memory");
  else asm volatile("bar.sync 2, 128;\n" ::: "memory");
}

__global__ void __launch_bounds__(256) probe(int tiles, int unequal, float* out) {
  __shared__ float slice[256];
  __shared__ float ring[2][128];
  const int g = threadIdx.x / 128, tid = threadIdx.x % 128;
  float acc = 0.0f;
  slice[threadIdx.x] = static_cast<float>(threadIdx.x);  // first tile's slice
  for (int t = 0; t < tiles; ++t) {
    const int steps = unequal && g == 1 ? 4 : 5;
    for (int k = 0; k < steps; ++k) {  // the group's own pipeline: write, group barrier, read a neighbour
      ring[g][tid] = static_cast<float>(k + t);
      group_sync(g);
      acc += ring[g][(tid + 1) & 127];
      group_sync(g);
    }
    __syncthreads();                           // every group done; slice visible to all
    acc += slice[(threadIdx.x + 37) & 255];    // the mix reads what other threads wrote
    __syncthreads();                           // the mix is done with the slice
    slice[threadIdx.x] = static_cast<float>(t + threadIdx.x);  // next tile's slice
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

int main(int argc, char** argv) {
  const int unequal = argc > 1 ? std::atoi(argv[1]) : 1;
  float* out = nullptr;
  cudaMalloc(&out, 4 * 256 * sizeof(float));
  probe<<<4, 256>>>(6, unequal, out);
  const cudaError_t e = cudaDeviceSynchronize();
  std::printf("probe unequal=%d: %s\n", unequal, cudaGetErrorString(e));
  cudaFree(out);
  return e == cudaSuccess ? 0 : 1;
}
