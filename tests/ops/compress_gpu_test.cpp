// GPU compression against the CPU path on small matrices (same seed): low-rank and Monarch (both compute
// the optimal truncation) and BLAST (same start, same formulas, so the same factorisation up to fp32
// rounding), plus exactness on exact inputs and a DiT-sized BLAST layer end to end.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/compress/compress.h"
#include "engine/compress/gpu_compress.h"
#include "engine/core/error.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

using test::compare;
using test::random_tensor;

LinearSpec spec(LinearKind k, int64_t b, int64_t r, int iters = 300) {
  LinearSpec s;
  s.kind = k;
  s.blocks = b;
  s.rank = r;
  s.iterations = iters;
  return s;
}

struct Pair {
  CompressResult gpu, cpu;
};

Pair both(const Tensor& w, const LinearSpec& s, uint64_t seed = 0) {
  CompressOptions o;
  o.blast.seed = seed;
  Pair p;
  p.gpu = compress_weight_gpu(w, s, o);
  p.cpu = compress_weight_cpu(w, s, o);
  return p;
}

std::string describe(const Tensor& w, const LinearSpec& s) {
  return cat(s.describe(), " on ", w.dim(0), "x", w.dim(1));
}

TEST(CompressGpu, LowRankAndMonarchMatchTheCpu) {
  BLR_REQUIRE_CUDA();
  struct Case {
    int64_t out, in;
    LinearSpec s;
  } cases[] = {{40, 28, spec(LinearKind::LowRank, 1, 6)},  {24, 50, spec(LinearKind::LowRank, 1, 10)},
               {48, 36, spec(LinearKind::Monarch, 3, 6)},  {32, 64, spec(LinearKind::Monarch, 4, 8)},
               {30, 30, spec(LinearKind::Monarch, 1, 7)},  {96, 48, spec(LinearKind::Monarch, 2, 16)}};
  uint64_t seed = 1;
  for (const auto& c : cases) {
    const Tensor w = random_tensor({c.out, c.in}, seed++);
    const Pair p = both(w, c.s);
    EXPECT_TRUE(p.gpu.on_gpu);
    // Both are the optimal truncation; a Gaussian matrix's singular gaps are far above fp32 noise, so the
    // kept subspaces agree to ~1e-5 and so do the reconstructions.
    const auto d = compare(assemble_dense(p.gpu.layer), assemble_dense(p.cpu.layer));
    EXPECT_LT(d.rel_fro, 1e-4) << describe(w, c.s) << ": " << d.str();
    EXPECT_NEAR(p.gpu.rel_error, p.cpu.rel_error, 1e-5) << describe(w, c.s);
    EXPECT_NEAR(p.gpu.rel_error, relative_error(w, p.gpu.layer), 1e-5) << describe(w, c.s) << ": reported error";
  }
}

TEST(CompressGpu, MonarchOfAMonarchMatrixIsExact) {
  BLR_REQUIRE_CUDA();
  Linear m;
  m.kind = LinearKind::Monarch;
  m.in = 48;
  m.out = 64;
  m.monarch.blocks = 4;
  m.monarch.R = random_tensor({4, 8, 12}, 11);
  m.monarch.L = random_tensor({4, 16, 8}, 12);
  const Tensor w = assemble_dense(m);
  const CompressResult g = compress_weight_gpu(w, spec(LinearKind::Monarch, 4, 8));
  // fp32 Jacobi SVD of O(1)-conditioned blocks: ~1e-6 relative.
  EXPECT_LT(relative_error(w, g.layer), 1e-5);
  EXPECT_LT(g.rel_error, 1e-5);
}

TEST(CompressGpu, BlastMatchesTheCpu) {
  BLR_REQUIRE_CUDA();
  struct Case {
    int64_t out, in, b, r;
    int iters;
  } cases[] = {{36, 48, 3, 6, 30}, {48, 48, 4, 8, 30}, {432, 144, 9, 48, 20} /* r > in/b, p != q, like DiT qkv */};
  uint64_t seed = 20;
  for (const auto& c : cases) {
    const Tensor w = random_tensor({c.out, c.in}, seed, 0.02f);
    const LinearSpec s = spec(LinearKind::Blast, c.b, c.r, c.iters);
    const Pair p = both(w, s, seed++);
    EXPECT_TRUE(p.gpu.on_gpu);
    // Same start and formulas; cuBLAS and Eigen round differently, and a few dozen damped steps keep those
    // ~1e-6 differences well below 1e-3 of the result.
    const auto d = compare(assemble_dense(p.gpu.layer), assemble_dense(p.cpu.layer));
    EXPECT_LT(d.rel_fro, 1e-3) << describe(w, s) << ": " << d.str();
    EXPECT_NEAR(p.gpu.rel_error, p.cpu.rel_error, 1e-4) << describe(w, s);
    // The GPU's own error measurement agrees with the host's on its factors.
    EXPECT_NEAR(p.gpu.rel_error, relative_error(w, p.gpu.layer), 1e-5) << describe(w, s);
    EXPECT_EQ(compare(p.gpu.layer.blast.S, p.cpu.layer.blast.S).nonfinite, 0);
  }
}

TEST(CompressGpu, BlastRecoversAnExactBlastMatrixAndIsDeterministic) {
  BLR_REQUIRE_CUDA();
  Linear t;
  t.kind = LinearKind::Blast;
  t.in = 48;
  t.out = 64;
  t.blast.blocks = 4;
  t.blast.U = random_tensor({4, 16, 3}, 100);
  t.blast.S = random_tensor({4, 4, 3}, 101);
  t.blast.V = random_tensor({4, 3, 12}, 102);
  const Tensor w = assemble_dense(t);
  CompressOptions o;
  const CompressResult a = compress_weight_gpu(w, spec(LinearKind::Blast, 4, 3, 150), o);
  // The CPU test's configuration (reaches < 1e-5 there); 1e-2 is the bar.
  EXPECT_LT(a.rel_error, 1e-2);
  const CompressResult b = compress_weight_gpu(w, spec(LinearKind::Blast, 4, 3, 150), o);
  EXPECT_EQ(compare(a.layer.blast.U, b.layer.blast.U).max_abs, 0.0) << "same seed, same device: same bits";
  EXPECT_EQ(compare(a.layer.blast.S, b.layer.blast.S).max_abs, 0.0);
}

TEST(CompressGpu, DitSizedBlastLayerRuns) {
  BLR_REQUIRE_CUDA();
  // DiT-XL/2 attn.qkv: 3456x1152, b=9, r=384 (blocks 384x128), a few iterations: everything finite and
  // the error below the trivial 1 and falling with iterations.
  const Tensor w = random_tensor({3456, 1152}, 7, 0.02f);
  const CompressResult few = compress_weight_gpu(w, spec(LinearKind::Blast, 9, 384, 2));
  const CompressResult more = compress_weight_gpu(w, spec(LinearKind::Blast, 9, 384, 8));
  EXPECT_TRUE(std::isfinite(few.rel_error) && std::isfinite(more.rel_error));
  EXPECT_LT(more.rel_error, few.rel_error);
  EXPECT_LT(more.rel_error, 1.0);
  EXPECT_EQ(compare(more.layer.blast.U, more.layer.blast.U).nonfinite, 0);
  EXPECT_NEAR(more.rel_error, relative_error(w, more.layer), 1e-4);
}

TEST(CompressGpu, DispatchUsesTheGpuAndFallsBackToCpuWhenAsked) {
  BLR_REQUIRE_CUDA();
  const Tensor w = random_tensor({24, 24}, 9);
  CompressOptions o;
  EXPECT_TRUE(compress_weight(w, spec(LinearKind::Monarch, 2, 4), o).on_gpu);
  o.use_gpu = false;
  EXPECT_FALSE(compress_weight(w, spec(LinearKind::Monarch, 2, 4), o).on_gpu);
}

}  // namespace
}  // namespace blr
