// CUDA attention (fused flash kernel and cuBLAS path) against the CPU reference over many shapes and all
// three dtypes; fused vs GEMM on 16384-token sequences; strided views; graph capture; bad arguments.
#include <cmath>
#include <string>
#include <vector>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_attention.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/error.h"
#include "engine/runtime/graph_runner.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

// Random values that bf16, f16 and f32 all store exactly (rounded to bf16; magnitudes below f16's
// smallest normal flushed to 0), so one f32 reference serves every dtype and only the op's own
// arithmetic is measured.
Tensor exact_random(const Shape& shape, uint64_t seed, float stddev) {
  Tensor t = test::random_tensor(shape, seed, stddev).to_dtype(DType::BF16).to_dtype(DType::F32);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (std::fabs(p[i]) < 6.2e-5f) p[i] = 0.0f;
  return t;
}

// float64 attention straight from the definition; only used while CpuOps::attention is not implemented.
Tensor naive_attention(const Tensor& qkv, int heads, float scale) {
  const int64_t B = qkv.dim(0), N = qkv.dim(1), D = qkv.dim(2) / (3 * heads), C = heads * D;
  Tensor out = Tensor::zeros({B, N, C});
  const float* x = qkv.data_as<const float>();
  float* o = out.data_as<float>();
  std::vector<double> s(static_cast<size_t>(N));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < N; ++i) {
        const float* q = x + (b * N + i) * 3 * C + h * D;
        double mx = -1e300;
        for (int64_t j = 0; j < N; ++j) {
          const float* k = x + (b * N + j) * 3 * C + C + h * D;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(q[d]) * k[d];
          s[static_cast<size_t>(j)] = dot * scale;
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        double sum = 0;
        for (int64_t j = 0; j < N; ++j) sum += (s[static_cast<size_t>(j)] = std::exp(s[static_cast<size_t>(j)] - mx));
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < N; ++j) acc += s[static_cast<size_t>(j)] * x[(b * N + j) * 3 * C + 2 * C + h * D + d];
          o[(b * N + i) * C + h * D + d] = static_cast<float>(acc / sum);
        }
      }
  return out;
}

Tensor cpu_attention(const Tensor& qkv, int heads, float scale, std::string* which) {
  const int64_t D = qkv.dim(2) / (3 * heads);
  Tensor out = Tensor::zeros({qkv.dim(0), qkv.dim(1), heads * D});
  try {
    CpuOps cpu;
    cpu.attention(qkv, heads, scale, out);
    *which = "CpuOps";
    return out;
  } catch (const NotImplementedError&) {
    *which = "float64 naive reference (CpuOps::attention not implemented)";
    return naive_attention(qkv, heads, scale);
  }
}

struct Tol {
  double rel_fro;  // ‖gpu − ref‖ / ‖ref‖
  double max_rel;  // max |gpu − ref| / max |ref|
  double cosine;
};
Tol tolerance(DType dt) {
  // f32 runs cuBLAS fp32 GEMMs (no TF32) and an fp32 softmax: only summation order differs (~1e-6).
  if (dt == DType::F32) return {2e-5, 1e-4, 0.99999};
  // f16: P is rounded to f16 (2^-11 relative) before P·V, and the output is stored in f16.
  if (dt == DType::F16) return {3e-3, 1e-2, 0.99999};
  // bf16: the same two roundings with 8 mantissa bits (2^-8 relative each).
  return {1.5e-2, 5e-2, 0.9995};
}

struct Case {
  int64_t B, N;
  int H, D;
  float scale_mult;  // scale = scale_mult / sqrt(D); > 1 makes the softmax peaky
};

std::string case_name(const Case& c, DType dt) {
  return cat("B=", c.B, " N=", c.N, " H=", c.H, " D=", c.D, " scale=", c.scale_mult, "/sqrt(D) ", dtype_name(dt));
}

bool fused_expected(const Case& c, DType dt) { return dt != DType::F32 && c.D % 8 == 0 && c.D <= 128; }

TEST(AttentionParityGpu, MatchesCpuOverShapesAndDtypes) {
  BLR_REQUIRE_CUDA();
  const std::vector<Case> cases = {
      {1, 1, 1, 64, 1.0f},    {2, 7, 3, 64, 1.0f},    {1, 197, 12, 64, 1.0f},  // ViT-B: 197 tokens, 12×64
      {2, 256, 16, 72, 1.0f},                                                   // DiT-XL/2 with guidance
      {1, 257, 4, 72, 3.0f},  {2, 129, 2, 64, 4.0f},  {1, 1024, 2, 80, 1.0f},  {2, 100, 3, 40, 1.0f},
      {1, 65, 2, 24, 1.0f},   {1, 130, 2, 128, 1.0f}, {1, 96, 1, 512, 1.0f},   {1, 1024, 1, 512, 1.0f},  // VAE
      {1, 33, 3, 7, 1.0f},    {1, 4099, 2, 64, 1.0f},                           // odd D; a long one
  };
  Arena arena(Device::CUDA, "attention test");
  CudaOps ops(arena);
  for (const Case& c : cases) {
    const int64_t C = int64_t{c.H} * c.D;
    const float scale = c.scale_mult / std::sqrt(static_cast<float>(c.D));
    const Tensor qkv = exact_random({c.B, c.N, 3 * C}, 1000 + c.N * 7 + c.D, 1.0f);
    std::string which;
    const Tensor ref = cpu_attention(qkv, c.H, scale, &which);
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
      SCOPED_TRACE(case_name(c, dt) + " vs " + which);
      const Tensor dq = test::upload(qkv, dt, arena);
      Tensor out = Tensor::empty({c.B, c.N, C}, dt, arena, MemCategory::Other, "attention out");
      ops.attention(dq, c.H, scale, out);
      ops.synchronize();
      const std::string path = last_attention_path(ops);
      if (fused_expected(c, dt)) {
        // "flash<...>", or "flash-split<...>" where BLR_ATTENTION_SPLIT_KEYS=1 lets Auto pick it.
        EXPECT_EQ(path.rfind("flash", 0), 0u) << "expected the fused kernel, ran " << path;
      } else {
        EXPECT_EQ(path, "gemm");
      }
      const test::Closeness cl = test::compare(out, ref);
      const Tol tol = tolerance(dt);
      EXPECT_EQ(cl.nonfinite, 0) << path << ": " << cl.str();
      EXPECT_LE(cl.rel_fro, tol.rel_fro) << path << ": " << cl.str();
      EXPECT_LE(cl.max_abs, tol.max_rel * cl.max_ref) << path << ": " << cl.str();
      EXPECT_GE(cl.cosine, tol.cosine) << path << ": " << cl.str();
    }
  }
}

// The split-key variant (one CTA per 16 query rows; its four warps take the key tiles round robin and
// merge their partial softmax results) against the CPU over the fused kernel's cases: one key tile (warps
// without keys), ragged tiles, several tiles per warp (N = 1024, 4099: the reload path), every head-dim
// tiling, batches and heads; bit-identical when run twice.
TEST(AttentionParityGpu, SplitKeysVariantMatchesCpu) {
  BLR_REQUIRE_CUDA();
  const std::vector<Case> cases = {
      {1, 1, 1, 64, 1.0f},   {2, 7, 3, 64, 1.0f},   {1, 197, 12, 64, 1.0f},  {2, 197, 12, 64, 1.0f},
      {2, 256, 16, 72, 1.0f}, {1, 257, 4, 72, 3.0f}, {2, 129, 2, 64, 4.0f},  {1, 1024, 2, 80, 1.0f},
      {2, 100, 3, 40, 1.0f}, {1, 65, 2, 24, 1.0f},  {1, 130, 2, 128, 1.0f}, {1, 300, 2, 16, 1.0f},
      {1, 200, 2, 32, 2.0f}, {1, 180, 2, 48, 1.0f}, {1, 170, 2, 96, 1.0f},  {1, 4099, 2, 64, 1.0f},
  };
  Arena arena(Device::CUDA, "attention split test");
  CudaOps ops(arena);
  set_attention_path(ops, AttentionPath::FusedSplitKeys);
  for (const Case& c : cases) {
    const int64_t C = int64_t{c.H} * c.D;
    const float scale = c.scale_mult / std::sqrt(static_cast<float>(c.D));
    const Tensor qkv = exact_random({c.B, c.N, 3 * C}, 2000 + c.N * 7 + c.D, 1.0f);
    std::string which;
    const Tensor ref = cpu_attention(qkv, c.H, scale, &which);
    for (DType dt : {DType::F16, DType::BF16}) {
      SCOPED_TRACE(case_name(c, dt) + " split-key variant vs " + which);
      const Tensor dq = test::upload(qkv, dt, arena);
      Tensor out = Tensor::empty({c.B, c.N, C}, dt, arena, MemCategory::Other, "attention out");
      Tensor again = Tensor::empty({c.B, c.N, C}, dt, arena, MemCategory::Other, "attention out again");
      ops.attention(dq, c.H, scale, out);
      ops.attention(dq, c.H, scale, again);
      ops.synchronize();
      const std::string path = last_attention_path(ops);
      EXPECT_EQ(path.rfind("flash-split<", 0), 0u) << "ran " << path;
      const test::Closeness cl = test::compare(out, ref);
      const Tol tol = tolerance(dt);  // the same roundings as the row-tiled kernel
      EXPECT_EQ(cl.nonfinite, 0) << path << ": " << cl.str();
      EXPECT_LE(cl.rel_fro, tol.rel_fro) << path << ": " << cl.str();
      EXPECT_LE(cl.max_abs, tol.max_rel * cl.max_ref) << path << ": " << cl.str();
      EXPECT_GE(cl.cosine, tol.cosine) << path << ": " << cl.str();
      EXPECT_EQ(test::compare(again, out).max_abs, 0.0) << path << ": two runs differ";
    }
  }
  // Cases the fused kernel does not take are refused on this path, as on Fused.
  const Tensor f32 = test::upload(exact_random({1, 8, 3 * 64}, 5, 1.0f), DType::F32, arena);
  Tensor out = Tensor::empty({1, 8, 64}, DType::F32, arena, MemCategory::Other, "f32 out");
  EXPECT_THROW(ops.attention(f32, 1, 0.125f, out), Error);
}

// The fused kernel and the cuBLAS path are independent implementations: on 16384 tokens (the long
// DiT sequence; far too slow for the CPU reference) the bf16/f16 fused result must match the fp32 GEMM
// result on the same values.
TEST(AttentionParityGpu, FusedMatchesGemmOnLongSequences) {
  BLR_REQUIRE_CUDA();
  Arena arena(Device::CUDA, "attention long test");
  CudaOps ops(arena);
  struct Long {
    int64_t B, N;
    int H, D;
    DType dt;
  };
  for (const Long& c : {Long{1, 16384, 2, 72, DType::BF16}, Long{1, 16384, 1, 64, DType::F16},
                        Long{1, 16383, 1, 72, DType::F16}}) {
    SCOPED_TRACE(cat("B=", c.B, " N=", c.N, " H=", c.H, " D=", c.D, " ", dtype_name(c.dt)));
    const int64_t C = int64_t{c.H} * c.D;
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.D));
    const Tensor qkv = exact_random({c.B, c.N, 3 * C}, 77 + c.D, 1.0f);
    const Tensor q16 = test::upload(qkv, c.dt, arena);
    Tensor fused = Tensor::empty({c.B, c.N, C}, c.dt, arena, MemCategory::Other, "fused out");
    set_attention_path(ops, AttentionPath::Fused);
    ops.attention(q16, c.H, scale, fused);
    const Tensor q32 = test::upload(qkv, DType::F32, arena);
    Tensor gemm = Tensor::empty({c.B, c.N, C}, DType::F32, arena, MemCategory::Other, "gemm out");
    set_attention_path(ops, AttentionPath::Gemm);
    ops.attention(q32, c.H, scale, gemm);
    ops.synchronize();
    const test::Closeness cl = test::compare(fused, gemm);
    const Tol tol = tolerance(c.dt);
    EXPECT_EQ(cl.nonfinite, 0) << cl.str();
    EXPECT_LE(cl.rel_fro, tol.rel_fro) << cl.str();
    EXPECT_GE(cl.cosine, tol.cosine) << cl.str();
  }
}

// The fused kernel reads q/k/v and writes the output through the given token strides.
TEST(AttentionParityGpu, StridedViewsGiveTheSameResult) {
  BLR_REQUIRE_CUDA();
  Arena arena(Device::CUDA, "attention strided test");
  CudaOps ops(arena);
  const int64_t B = 2, N = 77, H = 3, D = 72, C = H * D;
  const float scale = 1.0f / std::sqrt(72.0f);
  for (DType dt : {DType::BF16, DType::F32}) {
    SCOPED_TRACE(dtype_name(dt));
    const Tensor host = exact_random({B, N, 3 * C + 16}, 5, 1.0f);
    const Tensor wide = test::upload(host, dt, arena);
    const Tensor view = wide.slice(2, 0, 3 * C);
    const Tensor dense = test::upload(host.slice(2, 0, 3 * C).to_dtype(DType::F32), dt, arena);
    const float sentinel = 7.0f;
    Tensor out_host = Tensor::zeros({B, N, C + 8});
    for (int64_t i = 0; i < out_host.numel(); ++i) out_host.data_as<float>()[i] = sentinel;
    Tensor out_wide = test::upload(out_host, dt, arena);
    Tensor out_view = out_wide.slice(2, 0, C);
    Tensor out_dense = Tensor::empty({B, N, C}, dt, arena, MemCategory::Other, "dense out");
    ops.attention(view, static_cast<int>(H), scale, out_view);
    ops.attention(dense, static_cast<int>(H), scale, out_dense);
    ops.synchronize();
    const Tensor got = out_wide.to_host().to_dtype(DType::F32);
    const Tensor want = out_dense.to_host().to_dtype(DType::F32);
    int64_t mismatches = 0, clobbered = 0;
    for (int64_t r = 0; r < B * N; ++r) {
      for (int64_t c = 0; c < C; ++c)
        mismatches += got.data_as<float>()[r * (C + 8) + c] != want.data_as<float>()[r * C + c];
      for (int64_t c = C; c < C + 8; ++c) clobbered += got.data_as<float>()[r * (C + 8) + c] != sentinel;
    }
    EXPECT_EQ(mismatches, 0) << "strided and dense inputs disagree";
    EXPECT_EQ(clobbered, 0) << "the output view's padding columns were written";
  }
}

// A captured graph replays the same work: every replay reproduces the eager bytes, and the GEMM path's
// scratch is sized by the eager run so capture allocates nothing.
TEST(AttentionParityGpu, GraphReplayMatchesEager) {
  BLR_REQUIRE_CUDA();
  Arena arena(Device::CUDA, "attention graph test");
  CudaOps ops(arena);
  struct G {
    int64_t B, N;
    int H, D;
    DType dt;
  };
  for (const G& c : {G{2, 256, 16, 72, DType::BF16}, G{1, 300, 2, 40, DType::F32}, G{1, 1024, 1, 512, DType::BF16}}) {
    SCOPED_TRACE(cat("N=", c.N, " D=", c.D, " ", dtype_name(c.dt)));
    const int64_t C = int64_t{c.H} * c.D;
    const Tensor qkv = test::upload(exact_random({c.B, c.N, 3 * C}, 9, 1.0f), c.dt, arena);
    Tensor out = Tensor::empty({c.B, c.N, C}, c.dt, arena, MemCategory::Other, "graph out");
    GraphRunner graphs;
    std::vector<float> first;
    for (int run = 0; run < 4; ++run) {
      graphs.run("attention", ops.stream(), [&] { ops.attention(qkv, c.H, 0.125f, out); });
      ops.synchronize();
      const std::vector<float> now = out.to_vector();
      if (run == 0) {
        first = now;
      } else {
        EXPECT_TRUE(now == first) << "run " << run << " differs from the eager run";
      }
    }
    EXPECT_EQ(graphs.captures(), 1u);
  }
}

TEST(AttentionParityGpu, BadArgumentsAreRejected) {
  BLR_REQUIRE_CUDA();
  Arena arena(Device::CUDA, "attention bad args");
  CudaOps ops(arena);
  const Tensor qkv = Tensor::empty({1, 8, 3 * 2 * 64}, DType::BF16, arena, MemCategory::Other, "qkv");
  Tensor wrong = Tensor::empty({1, 8, 100}, DType::BF16, arena, MemCategory::Other, "out");
  try {
    ops.attention(qkv, 2, 0.125f, wrong);
    ADD_FAILURE() << "wrong output shape accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected [1,8,128]"), std::string::npos) << e.what();
  }
  Tensor out = Tensor::empty({1, 8, 128}, DType::BF16, arena, MemCategory::Other, "out");
  EXPECT_THROW(ops.attention(qkv, 5, 0.125f, out), Error);  // 384 is not 3·5·D
  Tensor out32 = Tensor::empty({1, 8, 128}, DType::F32, arena, MemCategory::Other, "out");
  EXPECT_THROW(ops.attention(qkv, 2, 0.125f, out32), Error);  // mixed dtypes
  const Tensor big = Tensor::empty({1, 8, 3 * 512}, DType::BF16, arena, MemCategory::Other, "qkv 512");
  Tensor big_out = Tensor::empty({1, 8, 512}, DType::BF16, arena, MemCategory::Other, "out 512");
  set_attention_path(ops, AttentionPath::Fused);
  EXPECT_THROW(ops.attention(big, 1, 0.04f, big_out), Error);  // D = 512 has no fused kernel
}

}  // namespace
}  // namespace blr
