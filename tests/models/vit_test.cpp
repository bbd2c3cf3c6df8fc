// ViT on the CPU backend: configuration inference, loader errors, the forward pass against an independent
// loop implementation and against timm's golden logits (tools/make_vit_golden.py), BLR layers against
// their assembled dense matrices, activation planning, and the classifier on frames.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <sstream>

#include "engine/backend/cpu/cpu_ops.h"
#include "engine/io/checkpoint.h"
#include "engine/io/safetensors.h"
#include "engine/models/vit/vit_config.h"
#include "engine/models/vit/vit_forward.h"
#include "engine/models/vit/vit_model.h"
#include "engine/models/vit/vit_random.h"
#include "engine/nn/linear.h"
#include "engine/runtime/vit_classifier.h"
#include "tests/common/test_util.h"
#include "tests/common/tiny_vit.h"

namespace blr {
namespace {

LinearSpec spec(LinearKind kind, int64_t b, int64_t r) {
  LinearSpec s;
  s.kind = kind;
  s.blocks = b;
  s.rank = r;
  return s;
}

std::map<std::string, Tensor> tensors_of(const Checkpoint& c) {
  std::map<std::string, Tensor> m;
  for (const auto& n : c.names()) m[n] = c.get(n);
  return m;
}

Checkpoint from_map(std::map<std::string, Tensor> t, std::map<std::string, std::string> meta,
                    const std::string& label = "test.safetensors") {
  return Checkpoint(std::make_shared<TensorMapReader>(label, std::move(t), std::move(meta)));
}

// A reader that knows only names and shapes: enough for config inference on full-size layouts.
class ShapeReader final : public CheckpointReader {
 public:
  ShapeReader(std::map<std::string, Shape> shapes, std::map<std::string, std::string> meta)
      : shapes_(std::move(shapes)), meta_(std::move(meta)) {}
  const std::string& path() const override { return path_; }
  std::vector<std::string> names() const override {
    std::vector<std::string> n;
    for (const auto& kv : shapes_) n.push_back(kv.first);
    return n;
  }
  bool has(const std::string& name) const override { return shapes_.count(name) != 0; }
  TensorInfo info(const std::string& name) const override { return {DType::F32, shapes_.at(name)}; }
  Tensor get(const std::string& name) const override { throw Error("shape-only reader: no data for " + name); }
  const std::map<std::string, std::string>& metadata() const override { return meta_; }
  std::string format() const override { return "shapes"; }

 private:
  std::string path_ = "shapes.safetensors";
  std::map<std::string, Shape> shapes_;
  std::map<std::string, std::string> meta_;
};

// timm's key layout for a ViT of width D, depth L, patch p, image S, MLP H, K classes.
std::map<std::string, Shape> timm_shapes(int64_t D, int64_t L, int64_t p, int64_t S, int64_t H, int64_t K) {
  const int64_t T = (S / p) * (S / p) + 1;
  std::map<std::string, Shape> s = {{"patch_embed.proj.weight", {D, 3, p, p}}, {"patch_embed.proj.bias", {D}},
                                    {"cls_token", {1, 1, D}},                  {"pos_embed", {1, T, D}},
                                    {"norm.weight", {D}},                      {"norm.bias", {D}},
                                    {"head.weight", {K, D}},                   {"head.bias", {K}}};
  for (int64_t i = 0; i < L; ++i) {
    const std::string b = cat("blocks.", i, ".");
    for (const char* n : {"norm1", "norm2"}) {
      s[b + n + ".weight"] = {D};
      s[b + n + ".bias"] = {D};
    }
    s[b + "attn.qkv.weight"] = {3 * D, D};
    s[b + "attn.qkv.bias"] = {3 * D};
    s[b + "attn.proj.weight"] = {D, D};
    s[b + "attn.proj.bias"] = {D};
    s[b + "mlp.fc1.weight"] = {H, D};
    s[b + "mlp.fc1.bias"] = {H};
    s[b + "mlp.fc2.weight"] = {D, H};
    s[b + "mlp.fc2.bias"] = {D};
  }
  return s;
}

Checkpoint shapes_ckpt(std::map<std::string, Shape> s, std::map<std::string, std::string> meta = {}) {
  return Checkpoint(std::make_shared<ShapeReader>(std::move(s), std::move(meta)));
}

// Runs `message_of` and returns the InputError's message ("" if none was thrown).
template <typename F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

VitModel load_cpu(const Checkpoint& ck, std::vector<LayerRule> rules = {}) {
  VitLoadOptions o;
  o.rules = std::move(rules);
  o.use_gpu_compression = false;
  return load_vit(ck, o);
}

// Network logits [B, classes] of the engine on the CPU for NHWC images [B, S, S, 3].
Tensor engine_logits(const VitModel& m, const Tensor& nhwc) {
  CpuOps ops;
  Arena arena(Device::CPU, "vit test");
  ClassifierOptions o;
  o.batch = nhwc.dim(0);
  o.topk = 3;
  VitClassifier clf(m, ops, arena, o);
  clf.input().copy_from(nhwc);
  clf.classify_input();
  return clf.buffers().logits.to_host();
}

// ---- an independent ViT forward: timm's layouts read straight from the checkpoint, plain loops in
// double, no folding, no buffer reuse, the full token set through every block ----
struct Ref {
  const Checkpoint& ck;
  std::vector<double> v(const std::string& name) const {
    const Tensor t = ck.get_as(name, DType::F32);
    return std::vector<double>(t.data_as<const float>(), t.data_as<const float>() + t.numel());
  }
  // y[n, o] = x[n, i]·W[o, i] + b[o]
  std::vector<double> linear(const std::vector<double>& x, int64_t n, const std::string& layer, int64_t in,
                             int64_t out) const {
    const auto w = v(layer + ".weight"), b = v(layer + ".bias");
    std::vector<double> y(static_cast<size_t>(n * out));
    for (int64_t r = 0; r < n; ++r)
      for (int64_t o = 0; o < out; ++o) {
        double s = b[o];
        for (int64_t i = 0; i < in; ++i) s += x[r * in + i] * w[o * in + i];
        y[r * out + o] = s;
      }
    return y;
  }
  std::vector<double> layer_norm(const std::vector<double>& x, int64_t n, int64_t d, const std::string& name,
                                 double eps) const {
    const auto w = v(name + ".weight"), b = v(name + ".bias");
    std::vector<double> y(x.size());
    for (int64_t r = 0; r < n; ++r) {
      double mean = 0, var = 0;
      for (int64_t i = 0; i < d; ++i) mean += x[r * d + i];
      mean /= d;
      for (int64_t i = 0; i < d; ++i) var += (x[r * d + i] - mean) * (x[r * d + i] - mean);
      var /= d;
      for (int64_t i = 0; i < d; ++i) y[r * d + i] = (x[r * d + i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
    }
    return y;
  }
};

Tensor reference_logits(const Checkpoint& ck, const VitConfig& c, const Tensor& nhwc) {
  const Ref ref{ck};
  const int64_t B = nhwc.dim(0), p = c.patch, g = c.grid(), D = c.width, T = c.tokens(),
                H = c.mlp_hidden, K = c.num_classes, heads = c.heads, hd = c.head_dim();
  const auto conv = ref.v("patch_embed.proj.weight"), conv_b = ref.v("patch_embed.proj.bias");
  const auto cls = ref.v("cls_token"), pos = ref.v("pos_embed");
  Tensor out = Tensor::zeros({B, K});
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> x(static_cast<size_t>(T * D));
    for (int64_t d = 0; d < D; ++d) x[d] = cls[d] + pos[d];
    for (int64_t gy = 0; gy < g; ++gy)
      for (int64_t gx = 0; gx < g; ++gx)
        for (int64_t d = 0; d < D; ++d) {
          double s = conv_b[d];
          for (int64_t ch = 0; ch < 3; ++ch)
            for (int64_t i = 0; i < p; ++i)
              for (int64_t j = 0; j < p; ++j)
                s += conv[((d * 3 + ch) * p + i) * p + j] * nhwc.at({b, gy * p + i, gx * p + j, ch});
          const int64_t t = 1 + gy * g + gx;
          x[t * D + d] = s + pos[t * D + d];
        }
    for (int64_t l = 0; l < c.depth; ++l) {
      const std::string pre = cat("blocks.", l, ".");
      auto h = ref.layer_norm(x, T, D, pre + "norm1", c.norm_eps);
      const auto qkv = ref.linear(h, T, pre + "attn.qkv", D, 3 * D);
      std::vector<double> a(static_cast<size_t>(T * D));
      for (int64_t hh = 0; hh < heads; ++hh)
        for (int64_t q = 0; q < T; ++q) {
          std::vector<double> s(static_cast<size_t>(T));
          double mx = -1e300, sum = 0;
          for (int64_t k = 0; k < T; ++k) {
            double dot = 0;
            for (int64_t e = 0; e < hd; ++e) dot += qkv[q * 3 * D + hh * hd + e] * qkv[k * 3 * D + D + hh * hd + e];
            s[k] = dot / std::sqrt(static_cast<double>(hd));
            mx = std::max(mx, s[k]);
          }
          for (auto& e : s) sum += (e = std::exp(e - mx));
          for (int64_t e = 0; e < hd; ++e) {
            double acc = 0;
            for (int64_t k = 0; k < T; ++k) acc += s[k] / sum * qkv[k * 3 * D + 2 * D + hh * hd + e];
            a[q * D + hh * hd + e] = acc;
          }
        }
      const auto pr = ref.linear(a, T, pre + "attn.proj", D, D);
      for (size_t i = 0; i < x.size(); ++i) x[i] += pr[i];
      h = ref.layer_norm(x, T, D, pre + "norm2", c.norm_eps);
      auto m = ref.linear(h, T, pre + "mlp.fc1", D, H);
      for (auto& e : m) e = 0.5 * e * (1.0 + std::erf(e / std::sqrt(2.0)));
      const auto f = ref.linear(m, T, pre + "mlp.fc2", H, D);
      for (size_t i = 0; i < x.size(); ++i) x[i] += f[i];
    }
    const auto xn = ref.layer_norm(x, T, D, "norm", c.norm_eps);
    const auto logits = ref.linear(std::vector<double>(xn.begin(), xn.begin() + D), 1, "head", D, K);
    for (int64_t k = 0; k < K; ++k) out.data_as<float>()[b * K + k] = static_cast<float>(logits[k]);
  }
  return out;
}

// Relative error of logits as the project judges fp32 parity: max |a − b| over max |b|.
double rel_err(const Tensor& got, const Tensor& want) {
  const auto c = test::compare(got, want);
  return c.max_abs / std::max(c.max_ref, 1e-30);
}

// fp32 vs a double-precision reference through a 2-block tiny ViT: sums of ≤256 products per op and
// ~30 ops deep, each adding ~1e-7 relative error; 1e-4 leaves a wide margin and still catches any
// wrong index, layout or missing term (those give errors of order 1).
constexpr double kFp32Tol = 1e-4;

// ---------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------

TEST(VitConfigTest, InfersViTB16FromTimmShapesAlone) {
  const VitConfig c = infer_vit_config(shapes_ckpt(timm_shapes(768, 12, 16, 224, 3072, 1000)));
  EXPECT_EQ(c.image_size, 224);
  EXPECT_EQ(c.patch, 16);
  EXPECT_EQ(c.width, 768);
  EXPECT_EQ(c.depth, 12);
  EXPECT_EQ(c.heads, 12);  // width / 64
  EXPECT_EQ(c.mlp_hidden, 3072);
  EXPECT_EQ(c.num_classes, 1000);
  EXPECT_EQ(c.tokens(), 197);
  EXPECT_EQ(c.resize_short(), 248);  // timm: floor(224 / 0.9)
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_FLOAT_EQ(c.mean[1], 0.5f);
}

TEST(VitConfigTest, InfersOtherSizesLikeViTS32At384) {
  const VitConfig c = infer_vit_config(shapes_ckpt(timm_shapes(384, 4, 32, 384, 1536, 21843)));
  EXPECT_EQ(c.image_size, 384);
  EXPECT_EQ(c.patch, 32);
  EXPECT_EQ(c.heads, 6);
  EXPECT_EQ(c.depth, 4);
  EXPECT_EQ(c.num_classes, 21843);
  EXPECT_EQ(c.resize_short(), 426);
}

TEST(VitConfigTest, HeadsComeFromOverrideThenMetadataThenWidth) {
  auto s = timm_shapes(128, 1, 8, 32, 512, 10);
  EXPECT_EQ(infer_vit_config(shapes_ckpt(s)).heads, 2);
  EXPECT_EQ(infer_vit_config(shapes_ckpt(s, {{"vit.heads", "4"}})).heads, 4);
  VitConfigOverrides ov;
  ov.heads = 8;
  EXPECT_EQ(infer_vit_config(shapes_ckpt(s, {{"vit.heads", "4"}}), ov).heads, 8);
}

TEST(VitConfigTest, MetadataAndOverridesSetPreprocessing) {
  auto s = timm_shapes(64, 1, 8, 32, 256, 10);
  const VitConfig m = infer_vit_config(
      shapes_ckpt(s, {{"vit.heads", "2"}, {"vit.mean", "0.485,0.456,0.406"}, {"vit.crop_pct", "0.875"}}));
  EXPECT_FLOAT_EQ(m.mean[0], 0.485f);
  EXPECT_FLOAT_EQ(m.mean[2], 0.406f);
  EXPECT_EQ(m.resize_short(), 36);  // floor(32 / 0.875) = 36
  const PreprocessParams p = m.preprocess();
  EXPECT_EQ(p.crop, 32);
  EXPECT_EQ(p.resize_short, 36);
  EXPECT_FLOAT_EQ(p.mean[1], 0.456f);
  EXPECT_TRUE(p.bgr_to_rgb);
  VitConfigOverrides ov;
  ov.std = std::array<float, 3>{0.2f, 0.3f, 0.4f};
  ov.crop_pct = 1.0f;
  const VitConfig o = infer_vit_config(shapes_ckpt(s, {{"vit.heads", "2"}}), ov);
  EXPECT_FLOAT_EQ(o.std[2], 0.4f);
  EXPECT_EQ(o.resize_short(), 32);
}

TEST(VitConfigTest, FactoredLayersStillGiveTheShapes) {
  // A compressed file: fc1 of block 0 and the head stored as factors only.
  auto s = timm_shapes(128, 2, 8, 32, 512, 10);
  s.erase("blocks.0.mlp.fc1.weight");
  s["blocks.0.mlp.fc1.monarch_R"] = {4, 64, 32};
  s["blocks.0.mlp.fc1.monarch_L"] = {4, 128, 64};
  s.erase("head.weight");
  s["head.lowrank_A"] = {4, 128};
  s["head.lowrank_B"] = {10, 4};
  const VitConfig c = infer_vit_config(shapes_ckpt(s));
  EXPECT_EQ(c.mlp_hidden, 512);
  EXPECT_EQ(c.num_classes, 10);
}

TEST(VitConfigTest, WidthNotAMultipleOf64NeedsHeads) {
  const std::string msg = input_error([] { infer_vit_config(shapes_ckpt(timm_shapes(96, 1, 8, 32, 384, 10))); });
  EXPECT_TRUE(contains(msg, "width 96")) << msg;
  EXPECT_TRUE(contains(msg, "--heads")) << msg;
}

TEST(VitConfigTest, MetadataContradictingShapesNamesBoth) {
  const std::string msg = input_error(
      [] { infer_vit_config(shapes_ckpt(timm_shapes(64, 2, 8, 32, 256, 10), {{"vit.image_size", "224"}})); });
  EXPECT_TRUE(contains(msg, "vit.image_size = 224")) << msg;
  EXPECT_TRUE(contains(msg, "gives 32")) << msg;
  const std::string bad = input_error(
      [] { infer_vit_config(shapes_ckpt(timm_shapes(64, 2, 8, 32, 256, 10), {{"vit.heads", "two"}})); });
  EXPECT_TRUE(contains(bad, "vit.heads = 'two'")) << bad;
}

TEST(VitConfigTest, RejectsNonSquarePositionsAndUnsupportedVariants) {
  auto s = timm_shapes(64, 1, 8, 32, 256, 10);
  s["pos_embed"] = {1, 20, 64};
  std::string msg = input_error([&] { infer_vit_config(shapes_ckpt(s)); });
  EXPECT_TRUE(contains(msg, "pos_embed")) << msg;
  EXPECT_TRUE(contains(msg, "not a square grid")) << msg;

  s = timm_shapes(64, 1, 8, 32, 256, 10);
  s["fc_norm.weight"] = {64};
  msg = input_error([&] { infer_vit_config(shapes_ckpt(s)); });
  EXPECT_TRUE(contains(msg, "fc_norm")) << msg;

  s = timm_shapes(64, 1, 8, 32, 256, 10);
  s.erase("cls_token");
  msg = input_error([&] { infer_vit_config(shapes_ckpt(s)); });
  EXPECT_TRUE(contains(msg, "cls_token")) << msg;

  s = timm_shapes(64, 1, 8, 32, 256, 10);
  s.erase("patch_embed.proj.weight");
  msg = input_error([&] { infer_vit_config(shapes_ckpt(s)); });
  EXPECT_TRUE(contains(msg, "patch_embed.proj.weight")) << msg;

  s = timm_shapes(64, 1, 8, 32, 256, 10);
  s.erase("head.weight");
  msg = input_error([&] { infer_vit_config(shapes_ckpt(s)); });
  EXPECT_TRUE(contains(msg, "head.weight")) << msg;
}

TEST(VitConfigTest, ParseFloat3) {
  const auto v = parse_float3("1,2.5,-3", "x");
  EXPECT_FLOAT_EQ(v[1], 2.5f);
  EXPECT_TRUE(contains(input_error([] { parse_float3("1,2", "--mean"); }), "--mean")) << "two values";
  EXPECT_FALSE(input_error([] { parse_float3("1,2,3,4", "--mean"); }).empty());
  EXPECT_FALSE(input_error([] { parse_float3("1,x,3", "--mean"); }).empty());
}

TEST(VitConfigTest, ModeRulesAreThePaperConfigs) {
  EXPECT_TRUE(vit_mode_rules("dense").empty());
  const auto monarch = vit_mode_rules("monarch");
  const auto spec_qkv = match_rules(monarch, "blocks.7.attn.qkv");
  ASSERT_TRUE(spec_qkv.has_value());
  EXPECT_EQ(spec_qkv->kind, LinearKind::Monarch);
  EXPECT_EQ(spec_qkv->blocks, 4);
  EXPECT_EQ(spec_qkv->rank, 128);
  EXPECT_FALSE(match_rules(monarch, "blocks.7.attn.proj").has_value());
  EXPECT_FALSE(match_rules(monarch, "head").has_value());
  const auto blast = match_rules(vit_mode_rules("blast"), "blocks.11.mlp.fc2");
  ASSERT_TRUE(blast.has_value());
  EXPECT_EQ(blast->kind, LinearKind::Blast);
  EXPECT_EQ(blast->blocks, 3);
  EXPECT_EQ(blast->rank, 128);
  EXPECT_TRUE(contains(input_error([] { vit_mode_rules("sparse"); }), "sparse"));
}

// ---------------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------------

TEST(VitLoadTest, PatchEmbedIsPermutedToPatchifyOrderAndEmbeddingsAreFolded) {
  const VitConfig c = test::tiny_vit_config();
  const Checkpoint ck = random_vit_checkpoint(c, LinearSpec{}, 7);
  const VitModel m = load_cpu(ck);
  const Tensor conv = ck.get("patch_embed.proj.weight"), bias = ck.get("patch_embed.proj.bias");
  const Tensor cls = ck.get("cls_token"), pos = ck.get("pos_embed");
  ASSERT_EQ(shape_str(m.patch_embed.weight.shape()), "[64,192]");
  EXPECT_FALSE(m.patch_embed.bias.defined());
  for (int64_t d = 0; d < 64; d += 7)
    for (int64_t i = 0; i < 8; ++i)
      for (int64_t j = 0; j < 8; ++j)
        for (int64_t ch = 0; ch < 3; ++ch)
          ASSERT_EQ(m.patch_embed.weight.at({d, (i * 8 + j) * 3 + ch}), conv.at({d, ch, i, j}))
              << "d=" << d << " i=" << i << " j=" << j << " c=" << ch;
  for (int64_t d = 0; d < 64; ++d) {
    EXPECT_FLOAT_EQ(m.cls_pos.at({0, 0, d}), cls.at({0, 0, d}) + pos.at({0, 0, d}));
    EXPECT_FLOAT_EQ(m.patch_pos.at({5, d}), pos.at({0, 6, d}) + bias.at({d}));
  }
  EXPECT_EQ(m.blocks.size(), 2u);
  EXPECT_EQ(m.mode_label(), "dense");
  // Parameters as timm counts them, with the folded tensors standing in for cls/pos/patch bias
  // (the D values of cls and of the patch bias disappear into the fold).
  int64_t timm_params = 0;
  for (const auto& n : ck.names()) timm_params += ck.get(n).numel();
  EXPECT_EQ(m.parameter_count(), timm_params - 2 * 64);
}

TEST(VitLoadTest, MissingTensorIsNamed) {
  auto t = tensors_of(random_vit_checkpoint(test::tiny_vit_config(), LinearSpec{}, 1));
  t.erase("blocks.1.norm2.bias");
  const std::string msg = input_error([&] { load_cpu(from_map(t, test::tiny_vit_config().to_metadata())); });
  EXPECT_TRUE(contains(msg, "blocks.1.norm2.bias")) << msg;
  EXPECT_TRUE(contains(msg, "test.safetensors")) << msg;

  t = tensors_of(random_vit_checkpoint(test::tiny_vit_config(), LinearSpec{}, 1));
  t.erase("blocks.0.attn.proj.weight");
  const std::string lin = input_error([&] { load_cpu(from_map(t, test::tiny_vit_config().to_metadata())); });
  EXPECT_TRUE(contains(lin, "blocks.0.attn.proj.weight")) << lin;
}

TEST(VitLoadTest, WrongShapeNamesTensorAndBothShapes) {
  auto t = tensors_of(random_vit_checkpoint(test::tiny_vit_config(), LinearSpec{}, 1));
  t["blocks.0.attn.proj.weight"] = Tensor::zeros({64, 32});
  std::string msg = input_error([&] { load_cpu(from_map(t, test::tiny_vit_config().to_metadata())); });
  EXPECT_TRUE(contains(msg, "blocks.0.attn.proj.weight")) << msg;
  EXPECT_TRUE(contains(msg, "[64,32]")) << msg;
  EXPECT_TRUE(contains(msg, "[64,64]")) << msg;

  t = tensors_of(random_vit_checkpoint(test::tiny_vit_config(), LinearSpec{}, 1));
  t["blocks.1.norm1.weight"] = Tensor::zeros({65});
  msg = input_error([&] { load_cpu(from_map(t, test::tiny_vit_config().to_metadata())); });
  EXPECT_TRUE(contains(msg, "blocks.1.norm1.weight")) << msg;
  EXPECT_TRUE(contains(msg, "[65]")) << msg;
  EXPECT_TRUE(contains(msg, "[64]")) << msg;

  t = tensors_of(random_vit_checkpoint(test::tiny_vit_config(), LinearSpec{}, 1));
  t["cls_token"] = Tensor::zeros({1, 2, 64});
  msg = input_error([&] { load_cpu(from_map(t, test::tiny_vit_config().to_metadata())); });
  EXPECT_TRUE(contains(msg, "cls_token")) << msg;
  EXPECT_TRUE(contains(msg, "[1,2,64]")) << msg;
  EXPECT_TRUE(contains(msg, "[1,1,64]")) << msg;
}

TEST(VitLoadTest, CorruptAndTruncatedFilesAreInputErrors) {
  const std::string dir = test::temp_dir("vit_load");
  test::write_file(dir + "/garbage.safetensors", "this is not a checkpoint at all");
  std::string msg = input_error([&] { load_cpu(Checkpoint::open(dir + "/garbage.safetensors")); });
  EXPECT_TRUE(contains(msg, "garbage.safetensors")) << msg;

  const Checkpoint ck = random_vit_checkpoint(test::tiny_vit_config(), LinearSpec{}, 1);
  std::vector<std::pair<std::string, Tensor>> list;
  for (const auto& n : ck.names()) list.emplace_back(n, ck.get(n));
  write_safetensors(dir + "/full.safetensors", list, test::tiny_vit_config().to_metadata());
  const std::string bytes = test::read_file(dir + "/full.safetensors");
  test::write_file(dir + "/cut.safetensors", bytes.substr(0, bytes.size() / 2));
  msg = input_error([&] { load_cpu(Checkpoint::open(dir + "/cut.safetensors")); });
  EXPECT_TRUE(contains(msg, "cut.safetensors")) << msg;
  msg = input_error([&] { load_cpu(Checkpoint::open(dir + "/missing.safetensors")); });
  EXPECT_TRUE(contains(msg, "missing.safetensors")) << msg;
  // The intact file loads and keeps its config (heads = 2 from metadata, not 64/64 = 1).
  EXPECT_EQ(load_cpu(Checkpoint::open(dir + "/full.safetensors")).config.heads, 2);
}

// ---------------------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------------------

Tensor random_images(int64_t batch, int64_t size, uint64_t seed) {
  return test::uniform_tensor({batch, size, size, 3}, seed, -1.0f, 1.0f);
}

TEST(VitForwardTest, MatchesAnIndependentLoopImplementation) {
  const VitConfig c = test::tiny_vit_config();
  const Checkpoint ck = random_vit_checkpoint(c, LinearSpec{}, 3);
  const VitModel m = load_cpu(ck);
  const Tensor img = random_images(3, 32, 11);
  const Tensor want = reference_logits(ck, c, img);
  const Tensor got = engine_logits(m, img);  // batch 3: class-token rows gathered
  EXPECT_LE(rel_err(got, want), kFp32Tol) << test::compare(got, want).str();
  const Tensor one = engine_logits(m, img.slice(0, 1, 2).to_host());  // batch 1: class-token rows are views
  EXPECT_LE(rel_err(one, want.slice(0, 1, 2).to_host()), kFp32Tol) << test::compare(one, want.slice(0, 1, 2)).str();
}

TEST(VitForwardTest, BlrLayersMatchTheirAssembledDenseMatrices) {
  const VitConfig c = test::tiny_vit_config();
  for (const LinearSpec& s : {spec(LinearKind::Monarch, 2, 16), spec(LinearKind::Blast, 2, 16), spec(LinearKind::LowRank, 1, 8)}) {
    SCOPED_TRACE(s.describe());
    const Checkpoint ck = random_vit_checkpoint(c, s, 5);
    const VitModel blr = load_cpu(ck);
    EXPECT_TRUE(contains(blr.mode_label(), "(6 of 10 linears)")) << blr.mode_label();
    // The same model with each factored layer replaced by its dense matrix.
    auto t = tensors_of(ck);
    for (const Linear* l : blr.linears()) {
      if (l->kind == LinearKind::Dense) continue;
      for (const char* f : {".lowrank_A", ".lowrank_B", ".monarch_R", ".monarch_L", ".blast_U", ".blast_S", ".blast_V"})
        t.erase(l->name + f);
      t[l->name + ".weight"] = assemble_dense(*l);
    }
    const Checkpoint dense_ck = from_map(t, c.to_metadata());
    const Tensor img = random_images(2, 32, 4);
    const Tensor got = engine_logits(blr, img);
    EXPECT_LE(rel_err(got, engine_logits(load_cpu(dense_ck), img)), kFp32Tol);
    EXPECT_LE(rel_err(got, reference_logits(dense_ck, c, img)), kFp32Tol);
  }
}

TEST(VitForwardTest, CompressAtLoadFollowsTheRules) {
  const VitConfig c = test::tiny_vit_config();
  const Checkpoint ck = random_vit_checkpoint(c, LinearSpec{}, 9);
  const VitModel m = load_cpu(ck, {parse_layer_rule("blocks.*.mlp.fc1=monarch:b=2,r=32"),
                                   parse_layer_rule("blocks.1.attn.qkv=lowrank:r=16")});
  EXPECT_EQ(m.blocks[0].fc1.kind, LinearKind::Monarch);
  EXPECT_EQ(m.blocks[1].fc1.kind, LinearKind::Monarch);
  EXPECT_EQ(m.blocks[1].qkv.kind, LinearKind::LowRank);
  EXPECT_EQ(m.blocks[0].qkv.kind, LinearKind::Dense);
  EXPECT_EQ(m.head.kind, LinearKind::Dense);
  EXPECT_GT(m.blocks[0].fc1.rel_error, 0.0);  // random matrices are not Monarch: the projection loses some
  EXPECT_LT(m.parameter_count(), load_cpu(ck).parameter_count());
  // A rule the layer cannot take is an InputError naming the layer.
  const std::string msg = input_error([&] { load_cpu(ck, {parse_layer_rule("blocks.0.attn.proj=monarch:b=3,r=6")}); });
  EXPECT_TRUE(contains(msg, "blocks.0.attn.proj")) << msg;
}

// ---- golden data from timm (tools/make_vit_golden.py) ----

struct Golden {
  Checkpoint dense, blr, data;
};

std::unique_ptr<Golden> golden() {
  const std::string d = test::data_path("vit_tiny");
  for (const char* f : {"/vit_tiny.safetensors", "/vit_tiny_blr.safetensors", "/golden.safetensors"})
    if (!test::file_exists(d + f)) return nullptr;
  return std::make_unique<Golden>(Golden{Checkpoint::open(d + "/vit_tiny.safetensors"),
                                         Checkpoint::open(d + "/vit_tiny_blr.safetensors"),
                                         Checkpoint::open(d + "/golden.safetensors")});
}
#define REQUIRE_GOLDEN(g)                                                                              \
  const auto g = golden();                                                                             \
  if (!g) GTEST_SKIP() << "golden data missing: run tools/make_vit_golden.py on the GPU machine (writes " \
                          "tests/data/vit_tiny/)"

Tensor golden_input_nhwc(const Checkpoint& data) {
  const Tensor nchw = data.get_as("input", DType::F32);  // [B, 3, S, S]
  return nchw.transpose(1, 2).transpose(2, 3).to_host();  // [B, S, S, 3]
}

TEST(VitGoldenTest, DenseMatchesTimm) {
  REQUIRE_GOLDEN(g);
  const VitModel m = load_cpu(g->dense);
  EXPECT_EQ(m.config.heads, 2);
  const Tensor x = golden_input_nhwc(g->data), want = g->data.get_as("logits", DType::F32);
  const Tensor got = engine_logits(m, x);
  EXPECT_LE(rel_err(got, want), kFp32Tol) << test::compare(got, want).str();
  const Tensor first = engine_logits(m, x.slice(0, 0, 1).to_host());
  EXPECT_LE(rel_err(first, want.slice(0, 0, 1).to_host()), kFp32Tol);
  // The loop reference agrees with timm too (so the reference used elsewhere is itself right).
  EXPECT_LE(rel_err(reference_logits(g->dense, m.config, x), want), kFp32Tol);
}

TEST(VitGoldenTest, BlrFactorsMatchTimmWithAssembledMatrices) {
  REQUIRE_GOLDEN(g);
  const VitModel m = load_cpu(g->blr);
  EXPECT_EQ(m.blocks[0].qkv.kind, LinearKind::Monarch);
  EXPECT_EQ(m.blocks[1].proj.kind, LinearKind::Monarch);
  EXPECT_EQ(m.blocks[1].fc1.kind, LinearKind::Blast);
  EXPECT_EQ(m.blocks[0].fc2.kind, LinearKind::LowRank);
  const Tensor want = g->data.get_as("logits_blr", DType::F32);
  const Tensor got = engine_logits(m, golden_input_nhwc(g->data));
  EXPECT_LE(rel_err(got, want), kFp32Tol) << test::compare(got, want).str();
  // Our assembly of each factored layer equals PyTorch's.
  for (const Linear* l : m.linears()) {
    if (l->kind == LinearKind::Dense) continue;
    const Tensor theirs = g->data.get_as("assembled." + l->name + ".weight", DType::F32);
    EXPECT_LE(rel_err(assemble_dense(*l), theirs), 1e-5) << l->name;  // fp32 sums of ≤16 products
  }
}

TEST(VitGoldenTest, CompressAtLoadReproducesExactlyFactoredLayers) {
  REQUIRE_GOLDEN(g);
  // The dense twin of the BLR model: the plain model with the four layers' assembled matrices.
  auto t = tensors_of(g->dense);
  for (const auto& n : g->data.names())
    if (n.rfind("assembled.", 0) == 0) t[n.substr(10)] = g->data.get_as(n, DType::F32);
  const Checkpoint twin = from_map(t, g->dense.metadata(), "twin");
  std::vector<LayerRule> rules;
  std::stringstream ss(g->data.metadata_or("exact_rules", ""));
  std::string r;
  while (std::getline(ss, r, ';')) rules.push_back(parse_layer_rule(r));
  ASSERT_FALSE(rules.empty());
  const VitModel m = load_cpu(twin, rules);
  int compressed = 0;
  for (const Linear* l : m.linears())
    if (l->kind != LinearKind::Dense) {
      ++compressed;
      EXPECT_LT(l->rel_error, 1e-5) << l->name << ": an exactly-factored matrix must be recovered";
    }
  EXPECT_EQ(compressed, static_cast<int>(rules.size()));
  const Tensor want = g->data.get_as("logits_blr", DType::F32);
  const Tensor got = engine_logits(m, golden_input_nhwc(g->data));
  // Truncated SVD recovers the factors to ~1e-6 relative (fp32 Jacobi), so the same fp32 budget holds.
  EXPECT_LE(rel_err(got, want), kFp32Tol) << test::compare(got, want).str();
}

// ---------------------------------------------------------------------------------------------------
// Planning and the classifier
// ---------------------------------------------------------------------------------------------------

TEST(VitPlanTest, ViTB16Batch1ActivationsStaySmall) {
  Arena arena(Device::CPU, "plan");
  const VitBuffers b = plan_vit_buffers(VitConfig::vit_b16(), DType::BF16, 1, 5, arena);
  // Four [197, ≤3072] regions reused by every block (x, h, delta, qkv/mlp): 3·197·768·2 + 197·3072·2
  // bytes ≈ 2.1 MiB. A plan that kept per-block or per-op buffers would be 10x that.
  EXPECT_LE(b.activation_bytes, size_t{2300} << 10);
  EXPECT_EQ(arena.report().of(MemCategory::Activations), b.activation_bytes);
  EXPECT_FALSE(b.cls_gather);
  EXPECT_TRUE(b.cls_x.is_contiguous());
  const VitBuffers b32 = plan_vit_buffers(VitConfig::vit_b16(), DType::BF16, 32, 5, arena);
  EXPECT_TRUE(b32.cls_gather);
  EXPECT_LE(b32.activation_bytes, 33 * b.activation_bytes);
}

TEST(VitPlanTest, BadBatchOrTopkAreInputErrors) {
  Arena arena(Device::CPU, "plan");
  EXPECT_TRUE(contains(input_error([&] { plan_vit_buffers(test::tiny_vit_config(), DType::F32, 0, 5, arena); }), "batch size 0"));
  EXPECT_TRUE(contains(input_error([&] { plan_vit_buffers(test::tiny_vit_config(), DType::F32, 1, 11, arena); }), "10 classes"));
  EXPECT_TRUE(contains(input_error([&] { plan_vit_buffers(test::tiny_vit_config(), DType::F32, 1, 0, arena); }), "top-k 0"));
}

// A synthetic BGR frame with structure (gradients and a square), so preprocessing has something to do.
Tensor synthetic_frame(int64_t h, int64_t w, int seed) {
  Tensor f = Tensor::zeros({h, w, 3}, DType::U8);
  auto* p = f.data_as<uint8_t>();
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const bool square = y > h / 3 && y < 2 * h / 3 && x > w / 4 && x < w / 2;
      p[(y * w + x) * 3 + 0] = static_cast<uint8_t>((x * 255 / std::max<int64_t>(w - 1, 1) + seed * 40) % 256);
      p[(y * w + x) * 3 + 1] = static_cast<uint8_t>((y * 255 / std::max<int64_t>(h - 1, 1) + seed * 70) % 256);
      p[(y * w + x) * 3 + 2] = square ? 250 : static_cast<uint8_t>((x + y + seed * 13) % 256);
    }
  return f;
}

TEST(VitClassifierTest, ClassifiesFramesOfAnySizeInPartialBatches) {
  const VitConfig c = test::tiny_vit_config();
  const VitModel m = load_cpu(random_vit_checkpoint(c, LinearSpec{}, 21));
  CpuOps ops;
  Arena arena(Device::CPU, "clf");
  ClassifierOptions o;
  o.batch = 4;
  o.topk = 4;
  VitClassifier clf(m, ops, arena, o);
  const std::vector<Tensor> frames = {synthetic_frame(48, 64, 1), synthetic_frame(101, 37, 2), synthetic_frame(32, 32, 3)};
  const ClassifyResult r = clf.classify(frames);
  ASSERT_EQ(r.predictions.size(), 3u);
  EXPECT_FALSE(r.graph);
  EXPECT_GE(r.times.total_ms, r.times.network_ms);
  const Tensor logits = clf.buffers().logits.to_host();
  for (size_t i = 0; i < 3; ++i) {
    const Prediction& p = r.predictions[i];
    ASSERT_EQ(p.classes.size(), 4u);
    // The reported top-k is the top-k of softmax(logits) of that frame's row.
    std::vector<std::pair<float, int>> order;
    double z = 0;
    for (int k = 0; k < 10; ++k) z += std::exp(logits.at({static_cast<int64_t>(i), k}));
    for (int k = 0; k < 10; ++k) order.emplace_back(static_cast<float>(logits.at({static_cast<int64_t>(i), k})), k);
    std::sort(order.begin(), order.end(), [](auto a, auto b) { return a.first > b.first; });
    for (int j = 0; j < 4; ++j) {
      EXPECT_EQ(p.classes[j], order[j].second) << "frame " << i << " rank " << j;
      EXPECT_NEAR(p.probs[j], std::exp(order[j].first) / z, 1e-5) << "frame " << i << " rank " << j;
    }
  }
  // The runner's input for frame 1 is exactly the CPU preprocessing of that frame.
  Tensor want = Tensor::zeros({32, 32, 3});
  ops.preprocess_image(frames[1], c.preprocess(), want);
  clf.prepare_input(frames);
  EXPECT_EQ(test::compare(clf.input().select(0, 1), want).max_abs, 0.0);
  // A frame classified alone gets the same answer as inside the batch.
  ClassifierOptions one;
  one.topk = 4;
  VitClassifier single(m, ops, arena, one);
  const ClassifyResult s = single.classify({frames[2]});
  EXPECT_EQ(s.predictions[0].classes, r.predictions[2].classes);
}

TEST(VitClassifierTest, RejectsBadFrameLists) {
  const VitModel m = load_cpu(random_vit_checkpoint(test::tiny_vit_config(), LinearSpec{}, 2));
  CpuOps ops;
  Arena arena(Device::CPU, "clf");
  ClassifierOptions o;
  o.batch = 2;
  VitClassifier clf(m, ops, arena, o);
  EXPECT_TRUE(contains(input_error([&] { clf.classify({}); }), "0 frames"));
  const Tensor f = synthetic_frame(8, 8, 0);
  EXPECT_TRUE(contains(input_error([&] { clf.classify({f, f, f}); }), "3 frames for a batch of 2"));
  EXPECT_TRUE(contains(input_error([&] { clf.classify({Tensor::zeros({8, 8, 3})}); }), "u8"));
  EXPECT_TRUE(contains(input_error([&] { clf.classify({Tensor::zeros({8, 8, 4}, DType::U8)}); }), "[8,8,4]"));
}

}  // namespace
}  // namespace blr
