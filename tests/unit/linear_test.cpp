// The Linear family on the CPU: each variant's forward equals x·Wᵀ + bias with W assembled from its
// factors (two independent implementations: cpu_blr.cpp stage by stage vs assemble_dense block by block),
// the factor layouts match the documented math element by element, and load_linear reads factors,
// checks their shapes, and compresses dense weights when a rule matches.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/core/error.h"
#include "engine/io/checkpoint.h"
#include "engine/io/safetensors.h"
#include "engine/nn/linear.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

using test::compare;
using test::random_tensor;

Linear random_layer(LinearKind kind, int64_t in, int64_t out, int64_t b, int64_t r, uint64_t seed, bool bias = true) {
  Linear l;
  l.name = "layer";
  l.kind = kind;
  l.in = in;
  l.out = out;
  switch (kind) {
    case LinearKind::Dense: l.weight = random_tensor({out, in}, seed); break;
    case LinearKind::LowRank:
      l.lowrank.A = random_tensor({r, in}, seed);
      l.lowrank.B = random_tensor({out, r}, seed + 1);
      break;
    case LinearKind::Monarch:
      l.monarch.blocks = b;
      l.monarch.R = random_tensor({b, r, in / b}, seed);
      l.monarch.L = random_tensor({b, out / b, r}, seed + 1);
      break;
    case LinearKind::Blast:
      l.blast.blocks = b;
      l.blast.U = random_tensor({b, out / b, r}, seed);
      l.blast.S = random_tensor({b, b, r}, seed + 1);
      l.blast.V = random_tensor({b, r, in / b}, seed + 2);
      break;
  }
  if (bias) l.bias = random_tensor({out}, seed + 3);
  return l;
}

// x·Wᵀ + bias in double, as a host f32 tensor.
Tensor reference_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Act act) {
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  Tensor y = Tensor::zeros({n, out});
  for (int64_t t = 0; t < n; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double acc = bias.defined() ? bias.flat(o) : 0.0;
      for (int64_t i = 0; i < in; ++i) acc += x.flat(t * in + i) * w.flat(o * in + i);
      y.data_as<float>()[t * out + o] = apply_act(act, static_cast<float>(acc));
    }
  return y;
}

struct Shape4 {
  int64_t in, out, b, r;
};

void check_forward(LinearKind kind, const Shape4& s, Act act, uint64_t seed) {
  const Linear l = random_layer(kind, s.in, s.out, s.b, s.r, seed);
  const Tensor w = assemble_dense(l);
  ASSERT_EQ(shape_str(w.shape()), shape_str({s.out, s.in}));
  const Tensor x = random_tensor({7, s.in}, seed + 10);
  Tensor y = Tensor::zeros({7, s.out});
  CpuOps ops;
  l.forward(ops, x, y, act);
  const auto c = compare(y, reference_forward(x, w, l.bias, act));
  // fp32 sums of up to ~100 products of N(0,1) terms in different orders: 1e-5 of the output scale.
  EXPECT_LE(c.max_abs, 1e-5 * std::max(1.0, c.max_ref))
      << linear_kind_name(kind) << " in=" << s.in << " out=" << s.out << " b=" << s.b << " r=" << s.r << ": " << c.str();
}

TEST(Linear, ForwardEqualsAssembledDenseForEveryVariant) {
  const Shape4 shapes[] = {{12, 20, 4, 8}, {36, 24, 3, 6}, {7, 5, 1, 3}, {48, 96, 2, 10}, {30, 45, 15, 15}, {9, 6, 3, 3}};
  uint64_t seed = 1;
  for (const auto& s : shapes) {
    check_forward(LinearKind::Dense, s, Act::None, seed++);
    check_forward(LinearKind::LowRank, s, Act::None, seed++);
    check_forward(LinearKind::Monarch, s, Act::None, seed++);
    check_forward(LinearKind::Blast, s, Act::None, seed++);
  }
  // BLAST ranks above the block sizes (as DiT qkv uses) and b=1 BLAST (= low-rank with a diagonal).
  check_forward(LinearKind::Blast, {12, 8, 4, 9}, Act::None, 100);
  check_forward(LinearKind::Blast, {10, 6, 1, 4}, Act::None, 101);
  // The fused activation is applied after the bias.
  check_forward(LinearKind::Blast, {12, 20, 4, 8}, Act::GeluTanh, 102);
  check_forward(LinearKind::Monarch, {12, 20, 4, 8}, Act::Silu, 103);
}

TEST(Linear, AssembledBlocksFollowTheDocumentedLayout) {
  // Monarch b=2, r=4 (g=2): W_kj = L_k[:, j·g:(j+1)·g] · R_j[k·g:(k+1)·g, :]. Check one element of each
  // block against that formula written out by hand.
  const Linear m = random_layer(LinearKind::Monarch, 6, 8, 2, 4, 7);
  const Tensor wm = assemble_dense(m);
  const int64_t ib = 3, ob = 4, g = 2;
  for (int64_t k = 0; k < 2; ++k)
    for (int64_t j = 0; j < 2; ++j) {
      const int64_t o = 1, i = 2;  // element (1, 2) of block (k, j)
      double v = 0;
      for (int64_t c = 0; c < g; ++c) v += m.monarch.L.at({k, o, j * g + c}) * m.monarch.R.at({j, k * g + c, i});
      EXPECT_NEAR(wm.at({k * ob + o, j * ib + i}), v, 1e-5) << "monarch block " << k << "," << j;
    }
  // BLAST b=2, r=3: W_kj[o][i] = Σ_c U_k[o][c] s_kj[c] V_j[c][i].
  const Linear bl = random_layer(LinearKind::Blast, 6, 8, 2, 3, 8);
  const Tensor wb = assemble_dense(bl);
  for (int64_t k = 0; k < 2; ++k)
    for (int64_t j = 0; j < 2; ++j) {
      double v = 0;
      for (int64_t c = 0; c < 3; ++c) v += bl.blast.U.at({k, 3, c}) * bl.blast.S.at({k, j, c}) * bl.blast.V.at({j, c, 1});
      EXPECT_NEAR(wb.at({k * 4 + 3, j * 3 + 1}), v, 1e-5) << "blast block " << k << "," << j;
    }
}

TEST(Linear, CountsNamesAndMetadata) {
  Linear l = random_layer(LinearKind::Blast, 12, 20, 4, 8, 3);
  l.name = "blocks.0.attn.qkv";
  l.rel_error = 0.25;
  EXPECT_EQ(l.blocks(), 4);
  EXPECT_EQ(l.rank(), 8);
  EXPECT_EQ(l.spec().describe(), "blast:b=4,r=8");
  EXPECT_EQ(l.parameter_count(), 8 * (12 + 20 + 16) + 20);  // r·(i + o + b²) + bias
  EXPECT_EQ(l.parameter_bytes(), static_cast<size_t>(l.parameter_count()) * 4);
  const auto named = l.named_tensors();
  ASSERT_EQ(named.size(), 4u);
  EXPECT_EQ(named[0].first, "blocks.0.attn.qkv.blast_U");
  EXPECT_EQ(named[1].first, "blocks.0.attn.qkv.blast_S");
  EXPECT_EQ(named[2].first, "blocks.0.attn.qkv.blast_V");
  EXPECT_EQ(named[3].first, "blocks.0.attn.qkv.bias");
  const auto meta = l.metadata();
  ASSERT_EQ(meta.size(), 4u);
  EXPECT_EQ(meta[0], std::make_pair(std::string("blr.blocks.0.attn.qkv.method"), std::string("blast")));
  EXPECT_EQ(meta[1].second, "4");
  EXPECT_EQ(meta[2].second, "8");
  EXPECT_EQ(meta[3].first, "blr.blocks.0.attn.qkv.rel_error");
  EXPECT_EQ(meta[3].second, "0.25");

  Linear m = random_layer(LinearKind::Monarch, 12, 20, 4, 8, 3, false);
  EXPECT_EQ(m.parameter_count(), 8 * (12 + 20));
  Linear d = random_layer(LinearKind::Dense, 12, 20, 1, 0, 3);
  EXPECT_TRUE(d.metadata().empty());
  EXPECT_EQ(d.rank(), 0);
  EXPECT_EQ(d.parameter_count(), 12 * 20 + 20);
}

TEST(Linear, ToBackendConvertsEveryTensor) {
  const Linear l = random_layer(LinearKind::Blast, 12, 20, 4, 8, 5);
  const Linear h = to_backend(l, DType::BF16, nullptr);
  for (const auto& [name, t] : h.named_tensors()) EXPECT_EQ(t.dtype(), DType::BF16) << name;
  // bf16 keeps 8 mantissa bits: relative rounding error ≤ 2^-9 per factor, a few of those in a product.
  const auto c = compare(assemble_dense(h), assemble_dense(l));
  EXPECT_LT(c.rel_fro, 1e-2) << c.str();
  EXPECT_GT(c.rel_fro, 0.0) << "bf16 conversion changed nothing: was it done?";
  Arena arena(Device::CPU, "test");
  const Linear a = to_backend(l, DType::F32, &arena);
  EXPECT_EQ(arena.report().of(MemCategory::Weights), l.parameter_bytes());
  EXPECT_EQ(compare(assemble_dense(a), assemble_dense(l)).max_abs, 0.0);
}

// ---- load_linear -----------------------------------------------------------------------------------

class LoadLinear : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::temp_dir("load_linear"); }
  std::string write(const std::vector<std::pair<std::string, Tensor>>& tensors,
                    const std::map<std::string, std::string>& meta = {}) {
    const std::string path = dir_ + "/m" + std::to_string(counter_++) + ".safetensors";
    write_safetensors(path, tensors, meta);
    return path;
  }
  std::string load_error(const std::string& path, int64_t in, int64_t out) {
    try {
      load_linear(Checkpoint::open(path), "fc", in, out, {});
    } catch (const InputError& e) {
      return e.what();
    }
    return "(no error)";
  }
  std::string dir_;
  int counter_ = 0;
};

TEST_F(LoadLinear, ReadsEachKindOfFactors) {
  for (LinearKind kind : {LinearKind::Dense, LinearKind::LowRank, LinearKind::Monarch, LinearKind::Blast}) {
    Linear l = random_layer(kind, 12, 20, 4, 8, 11);
    l.name = "fc";
    l.rel_error = 0.125;
    std::map<std::string, std::string> meta;
    for (const auto& [k, v] : l.metadata()) meta[k] = v;
    const std::string path = write(l.named_tensors(), meta);
    const Linear got = load_linear(Checkpoint::open(path), "fc", 12, 20, {});
    EXPECT_EQ(got.kind, kind);
    EXPECT_EQ(got.blocks(), l.blocks());
    EXPECT_EQ(got.rank(), l.rank());
    EXPECT_EQ(compare(assemble_dense(got), assemble_dense(l)).max_abs, 0.0) << linear_kind_name(kind);
    EXPECT_EQ(compare(got.bias, l.bias).max_abs, 0.0);
    if (kind != LinearKind::Dense) {
      EXPECT_DOUBLE_EQ(got.rel_error, 0.125);
    }
  }
}

TEST_F(LoadLinear, ConvertsDtypeAndAccountsWeights) {
  Linear l = random_layer(LinearKind::Monarch, 12, 20, 4, 8, 12);
  l.name = "fc";
  const std::string path = write(l.named_tensors());
  Arena arena(Device::CPU, "weights");
  LinearLoadOptions opt;
  opt.dtype = DType::BF16;
  opt.arena = &arena;
  const Linear got = load_linear(Checkpoint::open(path), "fc", 12, 20, opt);
  EXPECT_EQ(got.monarch.R.dtype(), DType::BF16);
  EXPECT_EQ(got.bias.dtype(), DType::BF16);
  EXPECT_EQ(arena.report().of(MemCategory::Weights), got.parameter_bytes());
}

TEST_F(LoadLinear, ShapeErrorsNameTheTensorAndBothShapes) {
  Linear l = random_layer(LinearKind::Monarch, 12, 20, 4, 8, 13);
  l.name = "fc";
  auto tensors = l.named_tensors();
  tensors[1].second = random_tensor({4, 5, 8}, 1);  // monarch_L should be [4, 5, 8] for out=20: make it wrong
  tensors[1].second = random_tensor({4, 6, 8}, 1);
  std::string msg = load_error(write(tensors), 12, 20);
  EXPECT_NE(msg.find("'fc.monarch_L'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4,6,8]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected [4,5,8]"), std::string::npos) << msg;

  // The layer's declared shape disagrees with the factors.
  msg = load_error(write(l.named_tensors()), 16, 20);
  EXPECT_NE(msg.find("fc.monarch_R"), std::string::npos) << msg;

  // A factor is missing.
  Linear b = random_layer(LinearKind::Blast, 12, 20, 4, 8, 14);
  b.name = "fc";
  auto bt = b.named_tensors();
  bt.erase(bt.begin() + 1);  // no blast_S
  msg = load_error(write(bt), 12, 20);
  EXPECT_NE(msg.find("'fc.blast_S' is missing"), std::string::npos) << msg;

  // BLAST S of the wrong rank.
  bt = b.named_tensors();
  bt[1].second = random_tensor({4, 4, 7}, 2);
  msg = load_error(write(bt), 12, 20);
  EXPECT_NE(msg.find("'fc.blast_S' has shape [4,4,7], expected [4,4,8]"), std::string::npos) << msg;

  // Dense weight of the wrong shape, and nothing at all.
  msg = load_error(write({{"fc.weight", random_tensor({20, 13}, 3)}}), 12, 20);
  EXPECT_NE(msg.find("'fc.weight' has shape [20,13], expected [20,12]"), std::string::npos) << msg;
  msg = load_error(write({{"other.weight", random_tensor({20, 12}, 3)}}), 12, 20);
  EXPECT_NE(msg.find("neither 'fc.weight' nor factors"), std::string::npos) << msg;

  // Bias of the wrong length.
  msg = load_error(write({{"fc.weight", random_tensor({20, 12}, 3)}, {"fc.bias", random_tensor({19}, 4)}}), 12, 20);
  EXPECT_NE(msg.find("'fc.bias' has shape [19], expected [20]"), std::string::npos) << msg;

  // Factors of two kinds for one layer.
  Linear lr = random_layer(LinearKind::LowRank, 12, 20, 1, 4, 15);
  lr.name = "fc";
  auto mixed = lr.named_tensors();
  mixed.emplace_back("fc.monarch_R", random_tensor({4, 8, 3}, 5));
  msg = load_error(write(mixed), 12, 20);
  EXPECT_NE(msg.find("more than one kind"), std::string::npos) << msg;
}

TEST_F(LoadLinear, CompressesADenseWeightWhenARuleMatches) {
  // An exactly-Monarch weight: compressing it at load must give back the same matrix.
  const Linear truth = random_layer(LinearKind::Monarch, 12, 20, 2, 4, 16);
  const Tensor w = assemble_dense(truth);
  const std::string path = write({{"blocks.0.fc.weight", w}, {"blocks.0.fc.bias", truth.bias}});
  const std::vector<LayerRule> rules = {parse_layer_rule("blocks.*.fc=monarch:b=2,r=4")};
  LinearLoadOptions opt;
  opt.rules = &rules;
  opt.use_gpu_compression = false;
  const Linear got = load_linear(Checkpoint::open(path), "blocks.0.fc", 12, 20, opt);
  EXPECT_EQ(got.kind, LinearKind::Monarch);
  EXPECT_EQ(got.name, "blocks.0.fc");
  EXPECT_LT(got.rel_error, 1e-5);
  EXPECT_LT(compare(assemble_dense(got), w).rel_fro, 1e-5);
  EXPECT_EQ(compare(got.bias, truth.bias).max_abs, 0.0);

  // A rule that cannot factor the layer is refused with the layer named.
  const std::vector<LayerRule> bad = {parse_layer_rule("blocks.*.fc=monarch:b=5,r=5")};
  opt.rules = &bad;
  try {
    load_linear(Checkpoint::open(path), "blocks.0.fc", 12, 20, opt);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("layer 'blocks.0.fc'"), std::string::npos) << e.what();
  }
  // No matching rule: stays dense.
  const std::vector<LayerRule> other = {parse_layer_rule("head=lowrank:r=2")};
  opt.rules = &other;
  EXPECT_EQ(load_linear(Checkpoint::open(path), "blocks.0.fc", 12, 20, opt).kind, LinearKind::Dense);
}

}  // namespace
}  // namespace blr
