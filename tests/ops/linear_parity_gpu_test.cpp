// GPU parity of the linear family (dense, low-rank, Monarch, BLAST) and batched matmul against the CPU
// reference (engine/backend/cpu): every variant × dtype (f32, f16, bf16) × many shapes (ragged token
// counts, rectangular layers, b = 1, b beyond the tensor-core kernel's limit, widths that are not
// multiples of any tile), every activation with and without bias, strided input/output rows, and each
// implementation path (tensor cores, SIMT, cuBLASLt) forced in turn. Also: a captured CUDA graph gives
// bit-identical results to the eager call, and repeated eager calls are deterministic.
//
// Tolerances (output compared with the CPU result computed from the *same rounded* inputs and weights,
// so only the kernels' own arithmetic is judged; "scale" = max |reference|):
//   f32:  max-abs error <= 1e-4 × scale. Both sides accumulate in fp32 (no TF32 anywhere: cuBLASLt runs
//         with CUBLAS_COMPUTE_32F, the BLR f32 path is SIMT FMA); only the summation order differs.
//   f16:  cosine >= 0.9999 and max-abs <= 5e-3 × scale: the output and the intermediate (t/u/z) are
//         rounded to fp16 (2^-11 relative each), accumulation is fp32.
//   bf16: cosine >= 0.999 and max-abs <= 3e-2 × scale: same with bf16's 2^-9 relative rounding, plus
//         margin for the largest of ~10^5 outputs.
// Out-of-bounds stores are caught by sentinel values around y (padding columns and one extra row);
// out-of-bounds loads by NaN in the padding of x (any NaN read into an output makes it non-finite).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/backend/cuda/cuda_blr.h"
#include "engine/backend/cuda/cuda_ops.h"
#include "engine/core/arena.h"
#include "engine/core/cuda_check.h"
#include "engine/core/error.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

enum class Variant { Dense, LowRank, Monarch, Blast };
const char* variant_name(Variant v) {
  switch (v) {
    case Variant::Dense: return "dense";
    case Variant::LowRank: return "lowrank";
    case Variant::Monarch: return "monarch";
    case Variant::Blast: return "blast";
  }
  return "?";
}

constexpr Act kActs[] = {Act::None, Act::GeluErf, Act::GeluTanh, Act::Silu};
constexpr float kSentinel = 4096.0f;  // exactly representable in f16/bf16; no output gets near it

// All tensors of one layer; host f32 (values pre-rounded to the test dtype) or device (test dtype).
struct Layer {
  Variant v = Variant::Dense;
  int64_t in = 0, out = 0, b = 1, r = 0;
  Tensor w;
  LowRankWeights lr;
  MonarchWeights mo;
  BlastWeights bl;
  Tensor bias;
};

Tensor rounded(const Tensor& t, DType dt) { return dt == DType::F32 ? t : t.to_dtype(dt).to_dtype(DType::F32); }
Tensor rnd(const Shape& s, uint64_t seed, double stddev, DType dt) {
  return rounded(test::random_tensor(s, seed, static_cast<float>(stddev)), dt);
}

// Random factors scaled so that every stage keeps unit-variance activations.
Layer make_layer(Variant v, int64_t in, int64_t out, int64_t b, int64_t r, bool bias, DType dt, uint64_t seed) {
  Layer L;
  L.v = v;
  L.in = in;
  L.out = out;
  L.b = b;
  L.r = r;
  const double rr = static_cast<double>(std::max<int64_t>(r, 1));
  switch (v) {
    case Variant::Dense: L.w = rnd({out, in}, seed, 1.0 / std::sqrt(in), dt); break;
    case Variant::LowRank:
      L.lr.A = rnd({r, in}, seed, 1.0 / std::sqrt(in), dt);
      L.lr.B = rnd({out, r}, seed + 1, 1.0 / std::sqrt(rr), dt);
      break;
    case Variant::Monarch:
      L.mo.blocks = b;
      L.mo.R = rnd({b, r, in / b}, seed, 1.0 / std::sqrt(in / b), dt);
      L.mo.L = rnd({b, out / b, r}, seed + 1, 1.0 / std::sqrt(rr), dt);
      break;
    case Variant::Blast:
      L.bl.blocks = b;
      L.bl.U = rnd({b, out / b, r}, seed, 1.0 / std::sqrt(rr), dt);
      L.bl.S = rnd({b, b, r}, seed + 1, 1.0 / std::sqrt(b), dt);
      L.bl.V = rnd({b, r, in / b}, seed + 2, 1.0 / std::sqrt(in / b), dt);
      break;
  }
  if (bias) L.bias = rnd({out}, seed + 3, 0.5, dt);
  return L;
}

Tensor dev(const Tensor& t, DType dt, Arena& arena) { return t.defined() ? test::upload(t, dt, arena) : Tensor(); }

Layer to_device(const Layer& h, DType dt, Arena& arena) {
  Layer d = h;
  d.w = dev(h.w, dt, arena);
  d.lr = {dev(h.lr.A, dt, arena), dev(h.lr.B, dt, arena)};
  d.mo = {h.mo.blocks, dev(h.mo.R, dt, arena), dev(h.mo.L, dt, arena)};
  d.bl = {h.bl.blocks, dev(h.bl.U, dt, arena), dev(h.bl.S, dt, arena), dev(h.bl.V, dt, arena)};
  d.bias = dev(h.bias, dt, arena);
  return d;
}

void forward(Ops& ops, const Layer& L, const Tensor& x, Act act, Tensor& y) {
  const Tensor* bias = L.bias.defined() ? &L.bias : nullptr;
  switch (L.v) {
    case Variant::Dense: ops.linear(x, L.w, bias, act, y); break;
    case Variant::LowRank: ops.lowrank_linear(x, L.lr, bias, act, y); break;
    case Variant::Monarch: ops.monarch_linear(x, L.mo, bias, act, y); break;
    case Variant::Blast: ops.blast_linear(x, L.bl, bias, act, y); break;
  }
}

struct Case {
  Variant v;
  int64_t in, out, b, r, n;
  Act act = Act::None;
  bool bias = true;
  DType dt = DType::BF16;
  int x_offset = 0;  // x is columns [x_offset, x_offset + in) of a wider buffer (0: contiguous)
  int x_pad = 0;     // extra columns of that buffer beyond x_offset + in
  int y_pad = 0;     // y is columns [0, out) of an [n + 1, out + y_pad] buffer
  std::string describe() const {
    return cat(variant_name(v), " ", dtype_name(dt), " in=", in, " out=", out, " b=", b, " r=", r, " tokens=", n,
               " act=", act_name(act), " bias=", bias ? "on" : "off", x_offset || x_pad ? cat(" x_offset=", x_offset, " x_stride=", in + x_offset + x_pad) : std::string(),
               y_pad ? cat(" y_stride=", out + y_pad) : std::string());
  }
};

struct PathSpec {
  const char* name;
  BlrStagePath s1, s2;
  bool pdl_first = false;
};
constexpr PathSpec kAuto{"auto", BlrStagePath::Auto, BlrStagePath::Auto};
constexpr PathSpec kTensorCore{"tc", BlrStagePath::TensorCore, BlrStagePath::TensorCore};
constexpr PathSpec kSimt{"simt", BlrStagePath::Simt, BlrStagePath::Simt};
constexpr PathSpec kLt{"lt", BlrStagePath::CublasLt, BlrStagePath::CublasLt};
// Two kernels, the first one also under PDL (waits before reading even its weights).
constexpr PathSpec kPdlFirst{"tc pdl-first", BlrStagePath::TensorCore, BlrStagePath::TensorCore, true};

// Whether the tensor-core kernels can take both stages of this case (mirrors the launchers' rules:
// 16-bit storage, K and every row stride / block offset a multiple of 8 elements, 16-byte aligned x).
bool tc_eligible(const Case& c) {
  if (c.dt == DType::F32 || c.v == Variant::Dense) return false;
  const int64_t ldx = c.in + c.x_offset + c.x_pad;
  const bool x_ok = c.x_offset % 8 == 0 && (c.n <= 1 || ldx % 8 == 0);
  const int64_t ib = c.in / c.b;
  switch (c.v) {
    case Variant::LowRank: return x_ok && c.in % 8 == 0 && c.r % 8 == 0;
    case Variant::Monarch: return x_ok && ib % 8 == 0 && c.r % 8 == 0;
    case Variant::Blast: return x_ok && ib % 8 == 0 && c.r % 8 == 0 && c.b <= 16;
    default: return false;
  }
}

class LinearParity {
 public:
  LinearParity() : arena_(Device::CUDA, "linear parity test"), ops_(arena_) {}
  CudaOps& ops() { return ops_; }
  Arena& arena() { return arena_; }

  // Runs `c` once per path and checks each result against one CPU reference.
  void check(const Case& c, const std::vector<PathSpec>& paths, uint64_t seed) {
    SCOPED_TRACE(c.describe());
    const Layer host = make_layer(c.v, c.in, c.out, c.b, c.r, c.bias, c.dt, seed);
    const Layer layer = to_device(host, c.dt, arena_);
    const Tensor x_host = rnd({c.n, c.in}, seed + 10, 1.0, c.dt);

    // Wide x buffer: NaN everywhere outside the view.
    const int64_t xw = c.in + c.x_offset + c.x_pad;
    Tensor x_wide = Tensor::zeros({c.n + 1, xw});
    for (int64_t i = 0; i < x_wide.numel(); ++i) x_wide.data_as<float>()[i] = std::nanf("");
    for (int64_t i = 0; i < c.n; ++i)
      std::memcpy(x_wide.data_as<float>() + i * xw + c.x_offset, x_host.data_as<float>() + i * c.in, c.in * 4);
    const Tensor x_dev_buf = test::upload(x_wide, c.dt, arena_);
    const Tensor x = x_dev_buf.slice(0, 0, c.n).slice(1, c.x_offset, c.x_offset + c.in);

    Tensor ref = Tensor::zeros({c.n, c.out});
    CpuOps cpu;
    forward(cpu, host, x_host, c.act, ref);

    const int64_t yw = c.out + c.y_pad;
    Tensor sentinel = Tensor::zeros({c.n + 1, yw});
    for (int64_t i = 0; i < sentinel.numel(); ++i) sentinel.data_as<float>()[i] = kSentinel;
    const Tensor sentinel_dt = sentinel.to_dtype(c.dt);
    Tensor y_buf = Tensor::empty({c.n + 1, yw}, c.dt, arena_, MemCategory::Other, "test y");
    Tensor y = y_buf.slice(0, 0, c.n).slice(1, 0, c.out);

    for (const PathSpec& p : paths) {
      BlrKernelOptions o = blr_kernel_options();  // keeps tile overrides set by the caller
      o.stage1 = p.s1;
      o.stage2 = p.s2;
      o.pdl_first = p.pdl_first;
      ScopedBlrKernelOptions scoped(o);
      y_buf.copy_from(sentinel_dt);
      forward(ops_, layer, x, c.act, y);
      ops_.synchronize();
      const std::string plan = last_linear_plan();
      SCOPED_TRACE(cat("path=", p.name, " plan: ", plan));
      check_plan(c, p, plan);

      const Tensor got_buf = y_buf.to_host().to_dtype(DType::F32);
      Tensor got = Tensor::zeros({c.n, c.out});
      int64_t clobbered = 0;
      for (int64_t i = 0; i <= c.n; ++i)
        for (int64_t j = 0; j < yw; ++j) {
          const float v = got_buf.data_as<float>()[i * yw + j];
          if (i < c.n && j < c.out) got.data_as<float>()[i * c.out + j] = v;
          else if (v != kSentinel) ++clobbered;
        }
      EXPECT_EQ(clobbered, 0) << "elements outside y (padding columns or the row after the last) were written";
      const test::Closeness cl = test::compare(got, ref);
      EXPECT_EQ(cl.nonfinite, 0) << "non-finite outputs (NaN from x's padding means an out-of-bounds read): " << cl.str();
      const double scale = std::max(cl.max_ref, 1e-6);
      switch (c.dt) {
        case DType::F32: EXPECT_LE(cl.max_abs, 1e-4 * scale) << cl.str(); break;
        case DType::F16:
          EXPECT_GE(cl.cosine, 0.9999) << cl.str();
          EXPECT_LE(cl.max_abs, 5e-3 * scale) << cl.str();
          break;
        default:
          EXPECT_GE(cl.cosine, 0.999) << cl.str();
          EXPECT_LE(cl.max_abs, 3e-2 * scale) << cl.str();
          break;
      }
    }
  }

 private:
  // A forced path must really have run (a silent fallback would make the path untested).
  static void check_plan(const Case& c, const PathSpec& p, const std::string& plan) {
    if (c.v == Variant::Dense || c.n == 0) return;
    const bool first_is_ours = c.v != Variant::LowRank;
    auto expect_in_plan = [&](const char* what) {
      EXPECT_NE(plan.find(what), std::string::npos) << "plan lacks '" << what << "'";
    };
    if (p.s1 == BlrStagePath::Simt) expect_in_plan("s1 simt");
    if (p.s2 == BlrStagePath::Simt) expect_in_plan("s2 simt");
    if (p.s2 == BlrStagePath::CublasLt) expect_in_plan("s2 cublasLt");
    if (p.s1 == BlrStagePath::CublasLt && !first_is_ours) expect_in_plan("s1 cublasLt");
    if (p.s1 == BlrStagePath::TensorCore && tc_eligible(c)) expect_in_plan("s1 tc");
    if (p.s2 == BlrStagePath::TensorCore && tc_eligible(c)) expect_in_plan("s2 tc");
    if (p.pdl_first && tc_eligible(c) && sm90()) expect_in_plan("pdl-first");
    if (c.dt == DType::F32) {
      EXPECT_EQ(plan.find(" tc"), std::string::npos) << "f32 must never use tensor cores";
    }
  }

  static bool sm90() {
    int major = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
    return major >= 9;
  }

  Arena arena_;
  CudaOps ops_;
};

std::vector<PathSpec> paths_for(DType dt, Variant v) {
  if (v == Variant::Dense) return {kAuto};
  if (dt == DType::F32) return {kAuto, kSimt, kLt};
  return {kAuto, kTensorCore, kSimt, kLt, kPdlFirst};
}

struct Shape4 {
  int64_t in, out, b, r;
};

// Small and odd shapes: every token count of interest, activations and bias cycling with the case.
void sweep_small(Variant v, DType dt, const std::vector<Shape4>& shapes) {
  LinearParity t;
  const int64_t tokens[] = {1, 7, 64, 197, 513};
  int i = 0;
  for (const Shape4& s : shapes)
    for (int64_t n : tokens) {
      Case c{v, s.in, s.out, s.b, s.r, n};
      c.act = kActs[i % 4];
      c.bias = i % 3 != 2;
      c.dt = dt;
      t.check(c, paths_for(dt, v), 1000 + 17 * i);
      ++i;
    }
}

// The paper's layer configurations at reduced token counts.
void sweep_paper(Variant v, DType dt, const std::vector<Shape4>& shapes, const std::vector<int64_t>& tokens) {
  LinearParity t;
  int i = 0;
  for (const Shape4& s : shapes)
    for (int64_t n : tokens) {
      Case c{v, s.in, s.out, s.b, s.r, n};
      c.act = kActs[(i + 2) % 4];
      c.bias = true;
      c.dt = dt;
      t.check(c, paths_for(dt, v), 5000 + 31 * i);
      ++i;
    }
}

const std::vector<Shape4> kDenseSmall = {{64, 96, 1, 0}, {100, 36, 1, 0}, {8, 8, 1, 0}};
const std::vector<Shape4> kLowRankSmall = {
    {64, 96, 1, 16}, {100, 36, 1, 12}, {256, 128, 1, 1},
    {200, 136, 1, 72},  // K = 200, 136: 64-wide k-tiles with a ragged last one (8 and 8 of 64 elements)
};
const std::vector<Shape4> kMonarchSmall = {
    {64, 96, 2, 16},   // g = 8: vectorised permuted store
    {96, 64, 4, 32},   // i/b = 24: K smaller than one 64-wide k-tile
    {600, 216, 3, 72}, // i/b = 200, r = 72: ragged last k-tile in both stages, several k-tiles
    {256, 128, 1, 32}, // b = 1: no permutation
    {800, 600, 8, 40}, // i/b = 100, o/b = 75, g = 5: SIMT stage 1, cuBLASLt stage 2
    {48, 48, 3, 24},   // b = 3
    {192, 384, 4, 16}, // g = 4: element-wise permuted store on the tensor-core path
};
const std::vector<Shape4> kBlastSmall = {
    {64, 96, 2, 16},    {96, 64, 4, 32},
    {600, 216, 3, 72},  // i/b = 200: every input block ends in a ragged k-tile (segment boundaries mid-ring)
    {256, 128, 1, 32},  // b = 1
    {800, 600, 8, 40},  // i/b = 100: SIMT stage 1
    {48, 48, 3, 24},    {192, 384, 4, 20},  // r % 8 != 0: stage 2 cannot use tensor cores
    {160, 320, 5, 7},   // odd rank
    {512, 256, 16, 32}, // b = 16: the largest b of the tensor-core mix
    {1088, 544, 17, 32} // b = 17: beyond it, SIMT stage 1
};

const std::vector<Shape4> kDensePaper = {{768, 2304, 1, 0}, {1152, 4608, 1, 0}};
const std::vector<Shape4> kLowRankPaper = {{768, 3072, 1, 128}, {1152, 4608, 1, 256}};
const std::vector<Shape4> kMonarchPaper = {{768, 2304, 4, 128}, {768, 3072, 4, 128}, {3072, 768, 4, 128}};
const std::vector<Shape4> kBlastPaper = {
    {1152, 3456, 9, 384}, {1152, 4608, 9, 256}, {1152, 6912, 9, 256},                // DiT qkv, fc1, adaLN
    {768, 2304, 3, 128},  {768, 3072, 3, 128},  {3072, 768, 3, 128},                 // ViT qkv, fc1, fc2
};

#define BLR_SWEEP_TESTS(VariantName, V, Small, Paper, PaperTokens)                         \
  TEST(LinearParityGpu, VariantName##SmallShapesF32) {                                      \
    BLR_REQUIRE_CUDA();                                                                     \
    sweep_small(V, DType::F32, Small);                                                      \
  }                                                                                         \
  TEST(LinearParityGpu, VariantName##SmallShapesF16) {                                      \
    BLR_REQUIRE_CUDA();                                                                     \
    sweep_small(V, DType::F16, Small);                                                      \
  }                                                                                         \
  TEST(LinearParityGpu, VariantName##SmallShapesBF16) {                                     \
    BLR_REQUIRE_CUDA();                                                                     \
    sweep_small(V, DType::BF16, Small);                                                     \
  }                                                                                         \
  TEST(LinearParityGpu, VariantName##PaperConfigsBF16) {                                    \
    BLR_REQUIRE_CUDA();                                                                     \
    sweep_paper(V, DType::BF16, Paper, PaperTokens);                                        \
  }                                                                                         \
  TEST(LinearParityGpu, VariantName##PaperConfigsF16) {                                     \
    BLR_REQUIRE_CUDA();                                                                     \
    sweep_paper(V, DType::F16, Paper, std::vector<int64_t>{7});                             \
  }                                                                                         \
  TEST(LinearParityGpu, VariantName##PaperConfigsF32) {                                     \
    BLR_REQUIRE_CUDA();                                                                     \
    sweep_paper(V, DType::F32, Paper, std::vector<int64_t>{7});                             \
  }

BLR_SWEEP_TESTS(Dense, Variant::Dense, kDenseSmall, kDensePaper, (std::vector<int64_t>{7, 197}))
BLR_SWEEP_TESTS(LowRank, Variant::LowRank, kLowRankSmall, kLowRankPaper, (std::vector<int64_t>{7, 197}))
BLR_SWEEP_TESTS(Monarch, Variant::Monarch, kMonarchSmall, kMonarchPaper, (std::vector<int64_t>{1, 197, 300}))
BLR_SWEEP_TESTS(Blast, Variant::Blast, kBlastSmall, kBlastPaper, (std::vector<int64_t>{1, 64, 197}))

// Every activation with and without bias, per variant and dtype, on one mid-size shape.
TEST(LinearParityGpu, AllActivationsWithAndWithoutBias) {
  BLR_REQUIRE_CUDA();
  LinearParity t;
  int i = 0;
  for (Variant v : {Variant::Dense, Variant::LowRank, Variant::Monarch, Variant::Blast})
    for (DType dt : {DType::F32, DType::BF16})
      for (Act act : kActs)
        for (bool bias : {false, true}) {
          Case c{v, 192, 320, 4, 32, 77};
          c.act = act;
          c.bias = bias;
          c.dt = dt;
          t.check(c, paths_for(dt, v), 9000 + i++);
        }
}

// Every tensor-core tile configuration, forced in turn (the cost model alone would leave some unused on
// these shapes): BLAST stage-1 tiles on b = 3, 4, 5, 9 and 16 layers, GEMM tiles on both Monarch stages.
// Input blocks of 72 and 136 features: one ragged k-tile, or two whole ones and a ragged third, so every
// segment boundary of the BLAST ring falls in the middle of the ring.
TEST(LinearParityGpu, EveryTileConfiguration) {
  BLR_REQUIRE_CUDA();
  // Dynamic shared memory of a BLAST stage-1 tile (kernels/blr_blast_tile.cuh): G rings of `stages`
  // 64-wide k-tiles of (BM + BN) 128-byte rows, the 16-bit y stash (per feature KJ rows of BM tokens plus
  // 16 bytes of padding) and the S slice (per feature KJ x KJ 16-bit values).
  struct Blast {
    int bm, bn, stages, groups, kj;
    int smem() const { return groups * stages * (bm + bn) * 128 + bn * (kj * bm * 2 + 16) + bn * kj * kj * 2; }
  };
  struct TileCase {
    Variant v;
    int tile;
    const char* name;  // as the plan prints it
    int64_t b;
    Blast blast;  // BLAST only
  };
  const TileCase cases[] = {
      {Variant::Blast, 1, "128x64/b<=8 s3", 3, {128, 64, 3, 1, 8}},
      {Variant::Blast, 1, "128x64/b<=8 s3", 8, {128, 64, 3, 1, 8}},   // every mix row used
      {Variant::Blast, 2, "64x64/b<=16 s4", 9, {64, 64, 4, 1, 16}},
      {Variant::Blast, 2, "64x64/b<=16 s4", 5, {64, 64, 4, 1, 16}},   // no second n8 tile of outputs
      {Variant::Blast, 3, "64x64/b<=8 s8", 5, {64, 64, 8, 1, 8}},
      {Variant::Blast, 3, "64x64/b<=8 s8", 1, {64, 64, 8, 1, 8}},     // one block: the mix is a scaling
      {Variant::Blast, 4, "32x32/b<=16 2 groups s8", 9, {32, 32, 8, 2, 16}},
      {Variant::Blast, 4, "32x32/b<=16 2 groups s8", 3, {32, 32, 8, 2, 16}},  // groups of 2 and 1 blocks
      {Variant::Blast, 5, "32x32/b<=16 2 groups s4", 9, {32, 32, 4, 2, 16}},
      {Variant::Blast, 6, "32x32/b<=16 s4", 16, {32, 32, 4, 1, 16}},
      {Variant::Blast, 6, "32x32/b<=16 s4", 9, {32, 32, 4, 1, 16}},
      {Variant::Blast, 7, "16x32/b<=8 3 groups s5", 3, {16, 32, 5, 3, 8}},
      {Variant::Blast, 7, "16x32/b<=8 3 groups s5", 4, {16, 32, 5, 3, 8}},  // unequal groups
      {Variant::Blast, 8, "32x32/b<=8 3 groups s5", 3, {32, 32, 5, 3, 8}},
      {Variant::Blast, 8, "32x32/b<=8 3 groups s5", 2, {32, 32, 5, 3, 8}},  // a group with nothing
      {Variant::Blast, 9, "32x32/b<=16 3 groups s6", 9, {32, 32, 6, 3, 16}},
      {Variant::Blast, 9, "32x32/b<=16 3 groups s6", 4, {32, 32, 6, 3, 16}},
      {Variant::Blast, 10, "32x64/b<=16 2 groups s4", 9, {32, 64, 4, 2, 16}},
      {Variant::Blast, 10, "32x64/b<=16 2 groups s4", 16, {32, 64, 4, 2, 16}},
      {Variant::Monarch, 1, "128x128", 4, {}},
      {Variant::Monarch, 2, "64x128", 4, {}},
      {Variant::Monarch, 3, "64x64", 4, {}},
      {Variant::Monarch, 4, "32x64", 4, {}},
  };
  int smem_optin = 0;
  BLR_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
  LinearParity t;
  int i = 0;
  for (const TileCase& tc : cases)
    for (int64_t n : {1, 77, 300}) {
      SCOPED_TRACE(cat("tile ", tc.tile, " (", tc.name, ")"));
      BlrKernelOptions o;
      o.stage1 = o.stage2 = BlrStagePath::TensorCore;
      o.tile1 = tc.tile;
      o.tile2 = tc.v == Variant::Monarch ? tc.tile : 0;
      ScopedBlrKernelOptions scoped(o);
      const int64_t ib = i % 2 ? 72 : 136;
      Case c{tc.v, tc.b * ib, tc.b * 48, tc.b, tc.v == Variant::Monarch ? 64 : 96, n};
      c.act = kActs[i % 4];
      c.dt = i % 2 ? DType::F16 : DType::BF16;
      t.check(c, {PathSpec{"forced tile", BlrStagePath::TensorCore, BlrStagePath::TensorCore}}, 15000 + i);
      const int smem = tc.v == Variant::Blast ? tc.blast.smem() : 0;
      if (smem <= smem_optin) {  // otherwise the launcher rightly falls back to a tile that fits
        EXPECT_NE(last_linear_plan().find(cat("s1 tc", tc.v == Variant::Blast ? "-mix " : " ", tc.name, " ")),
                  std::string::npos)
            << "forced tile did not run: " << last_linear_plan();
      }
      if (tc.v == Variant::Monarch) {
        EXPECT_NE(last_linear_plan().find(cat("s2 tc ", tc.name, " ")), std::string::npos) << last_linear_plan();
      }
      ++i;
    }
}

// BLAST stage-1 CTAs loop over tiles when there are more tiles than fit on the GPU at once, filling the
// next tile's ring while they mix the current one: enough tokens (40 per SM) that every tile shape gets
// several tiles per CTA, with ragged last token tiles and rank slices, b = 3 and b = 9.
TEST(LinearParityGpu, BlastStage1CtasLoopOverTiles) {
  BLR_REQUIRE_CUDA();
  int sms = 0;
  BLR_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  struct LoopCase {
    int tile;
    int64_t b, r;
  };
  const LoopCase cases[] = {{1, 3, 320}, {2, 9, 96}, {4, 9, 96}, {7, 3, 96}, {10, 9, 96}};
  LinearParity t;
  int i = 0;
  for (const LoopCase& lc : cases) {
    SCOPED_TRACE(cat("tile ", lc.tile));
    BlrKernelOptions o;
    o.stage1 = o.stage2 = BlrStagePath::TensorCore;
    o.tile1 = lc.tile;
    ScopedBlrKernelOptions scoped(o);
    Case c{Variant::Blast, lc.b * 136, lc.b * 48, lc.b, lc.r, 40LL * sms + 13};
    c.act = kActs[i % 4];
    c.dt = i % 2 ? DType::F16 : DType::BF16;
    t.check(c, {PathSpec{"forced tile", BlrStagePath::TensorCore, BlrStagePath::TensorCore}}, 16000 + i);
    EXPECT_NE(last_linear_plan().find("tiles on"), std::string::npos)
        << "expected fewer CTAs than tiles: " << last_linear_plan();
    ++i;
  }
}

// cuBLASLt stages on entries of its heuristic list other than the first (the sweep times them): each that
// exists must compute the same layer; an index beyond the list must be refused with a clear error.
TEST(LinearParityGpu, CublasLtAlgorithmChoicesAgree) {
  BLR_REQUIRE_CUDA();
  LinearParity t;
  int ran = 0;
  for (int algo = 0; algo < 8; ++algo) {
    SCOPED_TRACE(cat("lt_algo ", algo));
    BlrKernelOptions o;
    o.lt_algo = algo;
    ScopedBlrKernelOptions scoped(o);
    Case c{Variant::Blast, 9 * 64, 9 * 48, 9, 96, 197};
    c.act = Act::GeluTanh;
    try {
      t.check(c, {kLt}, 23000 + algo);
      ++ran;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("offers only"), std::string::npos) << e.what();
      EXPECT_GT(algo, 0) << "cuBLASLt's first choice must always exist";
      break;
    }
  }
  EXPECT_GE(ran, 1);
}

// Rows of x and y that are views into wider buffers: an aligned offset (tensor cores still apply) and a
// misaligned one (the kernels must fall back, not read or write out of place).
TEST(LinearParityGpu, StridedInputAndOutputRows) {
  BLR_REQUIRE_CUDA();
  LinearParity t;
  int i = 0;
  for (Variant v : {Variant::Dense, Variant::LowRank, Variant::Monarch, Variant::Blast})
    for (DType dt : {DType::F32, DType::F16, DType::BF16})
      for (int layout = 0; layout < 3; ++layout) {
        Case c{v, 256, 384, 4, 64, 133};
        c.dt = dt;
        c.act = kActs[i % 4];
        if (layout == 0) {  // aligned: row stride in + 16, offset 8 elements
          c.x_offset = 8;
          c.x_pad = 8;
          c.y_pad = 8;
        } else if (layout == 1) {  // misaligned: offset 3, odd row stride
          c.x_offset = 3;
          c.x_pad = 2;
          c.y_pad = 5;
        } else {  // one token, odd offsets
          c.n = 1;
          c.x_offset = 5;
          c.y_pad = 3;
        }
        t.check(c, paths_for(dt, v), 12000 + i++);
      }
}

// cuBLASLt's GELU epilogue must be the tanh approximation the models ask for: in f32 the GEMM error is
// ~1e-6, while GELU-erf and GELU-tanh differ by up to 4.7e-4 (at |x| ≈ 2.7), so 5e-5 separates them.
TEST(LinearParityGpu, DenseF32GeluTanhMatchesTanhFormula) {
  BLR_REQUIRE_CUDA();
  Arena arena(Device::CUDA, "gelu test");
  CudaOps ops(arena);
  const int64_t n = 256, in = 64, out = 48;
  const Tensor x = test::random_tensor({n, in}, 1, 1.0f);
  const Tensor w = test::random_tensor({out, in}, 2, 2.0f / std::sqrt(static_cast<float>(in)));  // y in ~[-6, 6]
  const Tensor bias = test::random_tensor({out}, 3, 0.5f);
  for (Act act : {Act::GeluTanh, Act::GeluErf, Act::Silu}) {
    Tensor ref = Tensor::zeros({n, out});
    CpuOps().linear(x, w, &bias, act, ref);
    const Tensor xd = test::upload(x, DType::F32, arena), wd = test::upload(w, DType::F32, arena),
                 bd = test::upload(bias, DType::F32, arena);
    Tensor y = Tensor::empty({n, out}, DType::F32, arena, MemCategory::Other, "y");
    ops.linear(xd, wd, &bd, act, y);
    ops.synchronize();
    const test::Closeness cl = test::compare(y, ref);
    EXPECT_LE(cl.max_abs, 5e-5) << act_name(act) << ": " << cl.str();
  }
}

// A captured graph replays to the same bits as the eager call, and eager calls repeat bit for bit.
TEST(LinearParityGpu, GraphReplayIsBitIdenticalAndEagerIsDeterministic) {
  BLR_REQUIRE_CUDA();
  Arena arena(Device::CUDA, "graph test");
  CudaOps ops(arena);
  const DType dt = DType::BF16;
  const int64_t n = 197, in = 768, out = 1536;
  const Tensor x = test::upload(rnd({n, in}, 7, 1.0, dt), dt, arena);
  for (Variant v : {Variant::Dense, Variant::LowRank, Variant::Monarch, Variant::Blast})
    for (bool pdl : {true, false})
      for (const PathSpec& p : {kAuto, kTensorCore, kSimt, kLt, kPdlFirst}) {
        SCOPED_TRACE(cat(variant_name(v), " path=", p.name, " pdl=", pdl));
        BlrKernelOptions o;
        o.stage1 = p.s1;
        o.stage2 = p.s2;
        o.pdl_first = p.pdl_first;
        o.pdl = pdl;
        ScopedBlrKernelOptions scoped(o);
        const Layer layer = to_device(make_layer(v, in, out, 3, 96, true, dt, 99), dt, arena);
        Tensor y = Tensor::empty({n, out}, dt, arena, MemCategory::Other, "y");
        auto download = [&]() {
          std::vector<uint16_t> bits(static_cast<size_t>(n * out));
          BLR_CUDA_CHECK(cudaMemcpy(bits.data(), y.data(), bits.size() * 2, cudaMemcpyDeviceToHost));
          return bits;
        };
        forward(ops, layer, x, Act::GeluTanh, y);
        ops.synchronize();
        const std::vector<uint16_t> eager1 = download();
        const std::string plan = last_linear_plan();

        BLR_CUDA_CHECK(cudaMemsetAsync(y.data(), 0, y.nbytes(), ops.stream()));
        ops.synchronize();
        cudaGraph_t graph = nullptr;
        cudaGraphExec_t exec = nullptr;
        BLR_CUDA_CHECK(cudaStreamBeginCapture(ops.stream(), cudaStreamCaptureModeThreadLocal));
        forward(ops, layer, x, Act::GeluTanh, y);
        BLR_CUDA_CHECK(cudaStreamEndCapture(ops.stream(), &graph));
        BLR_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
        for (int rep = 0; rep < 3; ++rep) BLR_CUDA_CHECK(cudaGraphLaunch(exec, ops.stream()));
        ops.synchronize();
        const std::vector<uint16_t> replayed = download();
        cudaGraphExecDestroy(exec);
        cudaGraphDestroy(graph);

        forward(ops, layer, x, Act::GeluTanh, y);
        ops.synchronize();
        const std::vector<uint16_t> eager2 = download();
        EXPECT_TRUE(replayed == eager1) << "graph replay differs from the eager call; plan: " << plan;
        EXPECT_TRUE(eager2 == eager1) << "second eager call differs from the first; plan: " << plan;
        bool any_nonzero = false;
        for (uint16_t bits : eager1) any_nonzero = any_nonzero || (bits & 0x7fff) != 0;
        EXPECT_TRUE(any_nonzero) << "output is all zeros";
      }
}

// Bad arguments are refused with an error naming the problem, before anything is launched.
TEST(LinearParityGpu, BadArgumentsAreRefused) {
  BLR_REQUIRE_CUDA();
  Arena arena(Device::CUDA, "bad args");
  CudaOps ops(arena);
  const DType dt = DType::BF16;
  auto dev_t = [&](const Shape& s) { return test::upload(Tensor::zeros(s), dt, arena); };
  Tensor x = dev_t({5, 64}), y = dev_t({5, 96});
  auto expect_error = [](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  MonarchWeights mo{2, dev_t({2, 15, 32}), dev_t({2, 48, 15})};  // r = 15 not a multiple of b = 2
  expect_error([&] { ops.monarch_linear(x, mo, nullptr, Act::None, y); }, "multiple of b");
  BlastWeights bl{2, dev_t({2, 48, 16}), dev_t({2, 2, 16}), dev_t({2, 16, 30})};  // i/b = 30, x has 64
  expect_error([&] { ops.blast_linear(x, bl, nullptr, Act::None, y); }, "features");
  Tensor w = dev_t({96, 64});
  Tensor y_f32 = test::upload(Tensor::zeros({5, 96}), DType::F32, arena);
  expect_error([&] { ops.linear(x, w, nullptr, Act::None, y_f32); }, "one storage dtype");
  Tensor bias_bad = dev_t({95});
  expect_error([&] { ops.linear(x, w, &bias_bad, Act::None, y); }, "bias");
  Tensor x_host = Tensor::zeros({5, 64}, DType::BF16);
  expect_error([&] { ops.linear(x_host, w, nullptr, Act::None, y); }, "not on the GPU");
}

// Batched matmul (attention-style products): trans_b on and off, alpha, a strided batch view.
TEST(LinearParityGpu, BatchedMatmul) {
  BLR_REQUIRE_CUDA();
  Arena arena(Device::CUDA, "matmul");
  CudaOps ops(arena);
  CpuOps cpu;
  for (DType dt : {DType::F32, DType::BF16})
    for (bool trans_b : {false, true}) {
      SCOPED_TRACE(cat(dtype_name(dt), " trans_b=", trans_b));
      const int64_t B = 3, M = 37, K = 72, N = 50;
      const Tensor a = rnd({B, M, K}, 1, 1.0, dt);
      const Tensor b = trans_b ? rnd({B, N, K}, 2, 1.0, dt) : rnd({B, K, N}, 2, 1.0, dt);
      Tensor ref = Tensor::zeros({B, M, N});
      cpu.matmul(a, b, ref, trans_b, 0.125f);
      // a as every other batch of a [2B, M, K] buffer: a strided batch view.
      Tensor a2 = Tensor::zeros({2 * B, M, K});
      for (int64_t q = 0; q < B; ++q)
        std::memcpy(a2.data_as<float>() + (2 * q) * M * K, a.data_as<float>() + q * M * K, M * K * 4);
      const Tensor a2d = test::upload(a2, dt, arena);
      const Tensor ad = a2d.reshape({B, 2, M, K}).select(1, 0);
      const Tensor bd = test::upload(b, dt, arena);
      Tensor c = Tensor::empty({B, M, N}, dt, arena, MemCategory::Other, "c");
      ops.matmul(ad, bd, c, trans_b, 0.125f);
      ops.synchronize();
      const test::Closeness cl = test::compare(c, ref);
      if (dt == DType::F32) {
        EXPECT_LE(cl.max_abs, 1e-4 * cl.max_ref) << cl.str();
      } else {
        EXPECT_GE(cl.cosine, 0.999) << cl.str();
        EXPECT_LE(cl.max_abs, 3e-2 * cl.max_ref) << cl.str();
      }
    }
}

}  // namespace
}  // namespace blr
