#include "engine/models/vae/vae_decoder.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/core/error.h"
#include "engine/io/checkpoint.h"

namespace blr {
namespace vae_detail {

struct Conv {
  Tensor w;  // [Co, k, k, Ci] (KRSC)
  Tensor b;  // [Co]
  int k = 3;
  int pad = 1;
  int64_t ci = 0, co = 0;
};
struct Norm {
  Tensor w, b;  // [C]
};
struct Resnet {
  Norm norm1, norm2;
  Conv conv1, conv2;
  bool has_shortcut = false;
  Conv shortcut;  // 1x1, when the channel count changes
  int64_t cin = 0, cout = 0;
};
struct Attention {
  Norm norm;
  Tensor qkv_w, qkv_b;  // [3C, C], [3C]: rows q, k, v
  Tensor out_w, out_b;  // [C, C], [C]
  int64_t channels = 0;
};
struct UpBlock {
  std::vector<Resnet> resnets;
  bool upsample = false;
  Conv up_conv;
};

// Reads tensors by name, checks their shapes against what the config implies, converts them to the
// model's layout (KRSC convs, packed qkv) and dtype, and places them on the arena's device.
class Loader {
 public:
  Loader(const Checkpoint& ckpt, DType dtype, Arena* arena, std::string prefix)
      : ckpt_(ckpt), dtype_(dtype), arena_(arena), prefix_(std::move(prefix)) {}

  Tensor place(const Tensor& host_f32, const std::string& what) {
    if (!arena_) return host_f32;
    count_ += host_f32.numel();
    const Tensor converted = host_f32.to_dtype(dtype_);
    return converted.to_device(*arena_, MemCategory::Weights, "vae " + what);
  }

  Tensor vector(const std::string& name, int64_t n) {
    return place(ckpt_.get_checked(prefix_ + name, {n}, DType::F32), name);
  }

  // PyTorch [Co, Ci, k, k] -> [Co, k, k, Ci], times `scale`.
  Conv conv(const std::string& name, int64_t co, int64_t ci, int k, float scale = 1.0f) {
    const Tensor src = ckpt_.get_checked(prefix_ + name + ".weight", {co, ci, k, k}, DType::F32);
    Tensor dst = Tensor::zeros({co, k, k, ci}, DType::F32);
    const float* s = src.data_as<const float>();
    float* d = dst.data_as<float>();
    for (int64_t o = 0; o < co; ++o)
      for (int64_t i = 0; i < ci; ++i)
        for (int y = 0; y < k; ++y)
          for (int x = 0; x < k; ++x) d[((o * k + y) * k + x) * ci + i] = s[((o * ci + i) * k + y) * k + x] * scale;
    Conv c;
    c.w = place(dst, name + ".weight");
    c.b = vector(name + ".bias", co);
    c.k = k;
    c.pad = k / 2;
    c.ci = ci;
    c.co = co;
    return c;
  }

  Norm norm(const std::string& name, int64_t c) {
    return Norm{vector(name + ".weight", c), vector(name + ".bias", c)};
  }

  // A linear weight stored as [o, i] or as a 1x1 conv [o, i, 1, 1]; host f32 [o, i].
  Tensor linear_weight(const std::string& name, int64_t o, int64_t i) {
    const std::string full = prefix_ + name;
    if (!ckpt_.has(full)) throw InputError(cat(ckpt_.path(), ": tensor '", full, "' not found"));
    const Shape s = ckpt_.info(full).shape;
    if (s == Shape{o, i}) return ckpt_.get_checked(full, {o, i}, DType::F32);
    if (s == Shape{o, i, 1, 1}) return ckpt_.get_checked(full, {o, i, 1, 1}, DType::F32).reshape({o, i});
    throw InputError(cat(ckpt_.path(), ": tensor '", full, "': shape ", shape_str(s), ", expected ",
                         shape_str({o, i}), " or ", shape_str({o, i, 1, 1})));
  }

  Resnet resnet(const std::string& name, int64_t cin, int64_t cout) {
    Resnet r;
    r.cin = cin;
    r.cout = cout;
    r.norm1 = norm(name + ".norm1", cin);
    r.conv1 = conv(name + ".conv1", cout, cin, 3);
    r.norm2 = norm(name + ".norm2", cout);
    r.conv2 = conv(name + ".conv2", cout, cout, 3);
    r.has_shortcut = ckpt_.has(prefix_ + name + ".conv_shortcut.weight");
    if (r.has_shortcut) {
      r.shortcut = conv(name + ".conv_shortcut", cout, cin, 1);
    } else if (cin != cout) {
      throw InputError(cat(ckpt_.path(), ": tensor '", prefix_, name, ".conv_shortcut.weight' not found (",
                           name, " maps ", cin, " to ", cout, " channels)"));
    }
    return r;
  }

  Attention attention(const std::string& name, int64_t c, bool legacy) {
    const char* q = legacy ? "query" : "to_q";
    const char* k = legacy ? "key" : "to_k";
    const char* v = legacy ? "value" : "to_v";
    const char* o = legacy ? "proj_attn" : "to_out.0";
    Attention a;
    a.channels = c;
    a.norm = norm(name + ".group_norm", c);
    Tensor qkv_w = Tensor::zeros({3 * c, c}, DType::F32);
    Tensor qkv_b = Tensor::zeros({3 * c}, DType::F32);
    const char* parts[3] = {q, k, v};
    for (int i = 0; i < 3; ++i) {
      const Tensor w = linear_weight(cat(name, ".", parts[i], ".weight"), c, c);
      const Tensor b = ckpt_.get_checked(cat(prefix_, name, ".", parts[i], ".bias"), {c}, DType::F32);
      std::copy(w.data_as<const float>(), w.data_as<const float>() + c * c, qkv_w.data_as<float>() + i * c * c);
      std::copy(b.data_as<const float>(), b.data_as<const float>() + c, qkv_b.data_as<float>() + i * c);
    }
    a.qkv_w = place(qkv_w, name + ".qkv.weight");
    a.qkv_b = place(qkv_b, name + ".qkv.bias");
    a.out_w = place(linear_weight(cat(name, ".", o, ".weight"), c, c), cat(name, ".", o, ".weight"));
    a.out_b = vector(cat(name, ".", o, ".bias"), c);
    return a;
  }

 private:
  const Checkpoint& ckpt_;
  DType dtype_;
  Arena* arena_;
  std::string prefix_;
  int64_t count_ = 0;
};

// Buffer roles: the running activation alternates between two mains; temporaries hold norm outputs,
// conv intermediates, the upsampled input, qkv and the attention output; the last two hold a dtype-
// converted latent and the final conv's output when the caller's tensors cannot be used directly.
enum Role : int { kMainA, kMainB, kTmp0, kTmp1, kTmp2, kLatent, kImage, kRoleCount };

// One run of the decoder over shapes. Planning (ops == null) only records the largest size each role
// needs; executing takes views of the planned flat buffers and calls the ops.
class Pass {
 public:
  Pass(Ops* ops, DType dtype, Device device, std::vector<Tensor>* flat)
      : ops_(ops), dtype_(dtype), device_(device), flat_(flat) {}

  bool planning() const { return ops_ == nullptr; }
  const std::array<int64_t, kRoleCount>& needs() const { return need_; }

  Tensor get(int role, const Shape& s) {
    const int64_t n = shape_numel(s);
    if (planning()) {
      if (role == kMainA || role == kMainB) {
        need_[kMainA] = need_[kMainB] = std::max(need_[kMainA], n);
      } else {
        need_[role] = std::max(need_[role], n);
      }
      return Tensor::from_blob(nullptr, s, dtype_, device_);
    }
    return (*flat_)[static_cast<size_t>(role)].slice(0, 0, n).reshape(s);
  }

  void conv(const Conv& c, const Tensor& x, Tensor& y) {
    if (ops_) ops_->conv2d(x, c.w, &c.b, Conv2dParams{1, c.pad}, y);
  }
  void norm(const Norm& n, int groups, float eps, Act act, const Tensor& x, Tensor& y) {
    if (ops_) ops_->group_norm(x, groups, n.w, n.b, eps, act, y);
  }
  void add(const Tensor& a, const Tensor& b, Tensor& y) {
    if (ops_) ops_->add(a, b, y);
  }
  void upsample(const Tensor& x, Tensor& y) {
    if (ops_) ops_->upsample_nearest2x(x, y);
  }
  void linear(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
    if (ops_) ops_->linear(x, w, &b, Act::None, y);
  }
  void attention(const Tensor& qkv, int heads, float scale, Tensor& out) {
    if (ops_) ops_->attention(qkv, heads, scale, out);
  }
  void copy(const Tensor& src, Tensor& dst) {
    if (ops_) ops_->copy(src, dst);
  }

 private:
  Ops* ops_;
  DType dtype_;
  Device device_;
  std::vector<Tensor>* flat_;
  std::array<int64_t, kRoleCount> need_{};
};

}  // namespace vae_detail

using namespace vae_detail;

struct VaeDecoder::Weights {
  bool has_post_quant = false;
  Conv post_quant;
  Conv conv_in;
  Resnet mid0, mid1;
  bool has_attention = false;
  Attention attention;
  std::vector<UpBlock> blocks;
  Norm norm_out;
  Conv conv_out;

  template <typename F>
  void for_each_tensor(F&& f) const {
    auto conv = [&](const Conv& c) { f(c.w), f(c.b); };
    auto norm = [&](const Norm& n) { f(n.w), f(n.b); };
    auto resnet = [&](const Resnet& r) {
      norm(r.norm1), conv(r.conv1), norm(r.norm2), conv(r.conv2);
      if (r.has_shortcut) conv(r.shortcut);
    };
    if (has_post_quant) conv(post_quant);
    conv(conv_in);
    resnet(mid0);
    if (has_attention) {
      norm(attention.norm);
      f(attention.qkv_w), f(attention.qkv_b), f(attention.out_w), f(attention.out_b);
    }
    resnet(mid1);
    for (const UpBlock& b : blocks) {
      for (const Resnet& r : b.resnets) resnet(r);
      if (b.upsample) conv(b.up_conv);
    }
    norm(norm_out);
    conv(conv_out);
  }
};

VaeDecoder::~VaeDecoder() = default;

std::unique_ptr<VaeDecoder> VaeDecoder::load(const Checkpoint& ckpt, DType dtype, Arena* arena) {
  std::unique_ptr<VaeDecoder> m(new VaeDecoder());
  m->config_ = infer_vae_config(ckpt);
  m->dtype_ = arena ? dtype : DType::F32;
  m->arena_ = arena;
  if (arena && dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    throw InputError(cat("VAE decoder: unsupported weight dtype ", dtype_name(dtype), " (f32, f16 or bf16)"));
  const VaeConfig& c = m->config_;
  Loader L(ckpt, m->dtype_, arena, c.key_prefix);
  auto w = std::make_unique<Weights>();
  const float inv_scale = 1.0f / c.scaling_factor;
  const int64_t Cl = c.latent_channels, Cm = c.mid_channels;

  w->has_post_quant = c.post_quant_conv;
  if (w->has_post_quant) w->post_quant = L.conv("post_quant_conv", Cl, Cl, 1, inv_scale);
  w->conv_in = L.conv("decoder.conv_in", Cm, Cl, 3, w->has_post_quant ? 1.0f : inv_scale);
  w->mid0 = L.resnet("decoder.mid_block.resnets.0", Cm, Cm);
  w->has_attention = c.mid_attention;
  if (w->has_attention) w->attention = L.attention("decoder.mid_block.attentions.0", Cm, c.legacy_attention_keys);
  w->mid1 = L.resnet("decoder.mid_block.resnets.1", Cm, Cm);
  int64_t cin = Cm;
  for (size_t b = 0; b < c.block_channels.size(); ++b) {
    const int64_t cout = c.block_channels[b];
    UpBlock blk;
    for (int r = 0; r < c.resnets_per_block; ++r)
      blk.resnets.push_back(L.resnet(cat("decoder.up_blocks.", b, ".resnets.", r), r == 0 ? cin : cout, cout));
    blk.upsample = c.block_upsample[b];
    if (blk.upsample) blk.up_conv = L.conv(cat("decoder.up_blocks.", b, ".upsamplers.0.conv"), cout, cout, 3);
    w->blocks.push_back(std::move(blk));
    cin = cout;
  }
  w->norm_out = L.norm("decoder.conv_norm_out", cin);
  w->conv_out = L.conv("decoder.conv_out", c.out_channels, cin, 3);
  m->w_ = std::move(w);
  return m;
}

int64_t VaeDecoder::parameter_count() const {
  int64_t n = 0;
  w_->for_each_tensor([&](const Tensor& t) { n += t.numel(); });
  return n;
}

size_t VaeDecoder::weight_bytes() const {
  size_t n = 0;
  w_->for_each_tensor([&](const Tensor& t) { n += t.nbytes(); });
  return n;
}

Shape VaeDecoder::image_shape(const Shape& latent_shape) const {
  BLR_CHECK(latent_shape.size() == 4, "VAE decoder: latent must be [B, h, w, C], got ", shape_str(latent_shape));
  const int64_t f = config_.upscale();
  return {latent_shape[0], latent_shape[1] * f, latent_shape[2] * f, config_.out_channels};
}

size_t VaeDecoder::activation_bytes() const {
  size_t n = 0;
  for (const auto& kv : plans_)
    for (const Tensor& t : kv.second.flat) n += t.defined() ? t.nbytes() : 0;
  return n;
}

void VaeDecoder::release_buffers() { plans_.clear(); }

size_t VaeDecoder::planned_activation_bytes(const Shape& latent_shape, DType latent_dtype, DType image_dtype) const {
  const Device device = arena_ ? arena_->device() : Device::CPU;
  const Tensor latent = Tensor::from_blob(nullptr, latent_shape, latent_dtype, device);
  Tensor image = Tensor::from_blob(nullptr, image_shape(latent_shape), image_dtype, device);
  Pass plan(nullptr, dtype_, device, nullptr);
  run(plan, latent, image);
  size_t bytes = 0;
  for (int64_t n : plan.needs()) bytes += static_cast<size_t>(n) * dtype_size(dtype_);
  return bytes;
}

namespace {

void resnet_forward(Pass& P, const Resnet& r, const VaeConfig& c, Tensor& x, int& x_role) {
  const Shape in_shape = x.shape();
  const Shape out_shape{in_shape[0], in_shape[1], in_shape[2], r.cout};
  Tensor t0 = P.get(kTmp0, in_shape);
  P.norm(r.norm1, c.groups, c.eps, Act::Silu, x, t0);
  Tensor t1 = P.get(kTmp1, out_shape);
  P.conv(r.conv1, t0, t1);
  Tensor t0b = P.get(kTmp0, out_shape);
  P.norm(r.norm2, c.groups, c.eps, Act::Silu, t1, t0b);
  Tensor h = P.get(kTmp1, out_shape);  // conv1's output has been consumed by norm2
  P.conv(r.conv2, t0b, h);
  const int out_role = x_role == kMainA ? kMainB : kMainA;
  Tensor out = P.get(out_role, out_shape);
  if (r.has_shortcut) {
    Tensor sc = P.get(kTmp0, out_shape);  // norm2's output has been consumed by conv2
    P.conv(r.shortcut, x, sc);
    P.add(sc, h, out);
  } else {
    P.add(x, h, out);
  }
  x = out;
  x_role = out_role;
}

void attention_forward(Pass& P, const Attention& a, const VaeConfig& c, Tensor& x, int& x_role) {
  const Shape shape = x.shape();
  const int64_t B = shape[0], S = shape[1] * shape[2], C = a.channels;
  Tensor t0 = P.get(kTmp0, shape);
  P.norm(a.norm, c.groups, c.eps, Act::None, x, t0);
  Tensor qkv = P.get(kTmp1, {B, S, 3 * C});
  Tensor qkv_rows = qkv.reshape({B * S, 3 * C});
  P.linear(t0.reshape({B * S, C}), a.qkv_w, a.qkv_b, qkv_rows);
  Tensor att = P.get(kTmp2, {B, S, C});
  const int heads = c.attention_heads;
  P.attention(qkv, heads, 1.0f / std::sqrt(static_cast<float>(C / heads)), att);
  Tensor proj = P.get(kTmp0, {B * S, C});  // the norm output has been consumed by the qkv projection
  P.linear(att.reshape({B * S, C}), a.out_w, a.out_b, proj);
  const int out_role = x_role == kMainA ? kMainB : kMainA;
  Tensor out = P.get(out_role, shape);
  P.add(x, proj.reshape(shape), out);
  x = out;
  x_role = out_role;
}

void upsample_forward(Pass& P, const Conv& conv, Tensor& x, int& x_role) {
  const Shape s = x.shape();
  const Shape up_shape{s[0], s[1] * 2, s[2] * 2, s[3]};
  Tensor up = P.get(kTmp0, up_shape);
  P.upsample(x, up);
  const int out_role = x_role == kMainA ? kMainB : kMainA;
  Tensor out = P.get(out_role, {s[0], s[1] * 2, s[2] * 2, conv.co});
  P.conv(conv, up, out);
  x = out;
  x_role = out_role;
}

}  // namespace

void VaeDecoder::run(Pass& P, const Tensor& latent, Tensor& image) const {
  const VaeConfig& c = config_;
  const Weights& w = *w_;
  const int64_t B = latent.dim(0), h = latent.dim(1), wd = latent.dim(2);
  Tensor z = latent;
  if (latent.dtype() != dtype_ || !latent.is_contiguous()) {
    z = P.get(kLatent, latent.shape());
    P.copy(latent, z);
  }
  Tensor x;
  int role = kMainA;
  if (w.has_post_quant) {
    Tensor q = P.get(kMainA, {B, h, wd, w.post_quant.co});
    P.conv(w.post_quant, z, q);
    x = P.get(kMainB, {B, h, wd, w.conv_in.co});
    P.conv(w.conv_in, q, x);
    role = kMainB;
  } else {
    x = P.get(kMainA, {B, h, wd, w.conv_in.co});
    P.conv(w.conv_in, z, x);
  }
  resnet_forward(P, w.mid0, c, x, role);
  if (w.has_attention) attention_forward(P, w.attention, c, x, role);
  resnet_forward(P, w.mid1, c, x, role);
  for (const UpBlock& blk : w.blocks) {
    for (const Resnet& r : blk.resnets) resnet_forward(P, r, c, x, role);
    if (blk.upsample) upsample_forward(P, blk.up_conv, x, role);
  }
  Tensor t0 = P.get(kTmp0, x.shape());
  P.norm(w.norm_out, c.groups, c.eps, Act::Silu, x, t0);
  if (image.dtype() == dtype_ && image.is_contiguous()) {
    P.conv(w.conv_out, t0, image);
  } else {
    Tensor o = P.get(kImage, image.shape());
    P.conv(w.conv_out, t0, o);
    P.copy(o, image);
  }
}

void VaeDecoder::decode(Ops& ops, const Tensor& latent, Tensor& image) {
  const Device device = arena_ ? arena_->device() : Device::CPU;
  BLR_CHECK(latent.defined() && image.defined(), "VAE decode: undefined latent or image tensor");
  BLR_CHECK(ops.device() == device && latent.device() == device && image.device() == device,
            "VAE decode: weights are on ", device_name(device), " but ops run on ", device_name(ops.device()),
            ", latent ", latent.describe(), ", image ", image.describe());
  if (latent.ndim() != 4 || latent.dim(3) != config_.latent_channels)
    throw InputError(cat("VAE decode: latent ", shape_str(latent.shape()), " is not [B, h, w, ",
                         config_.latent_channels, "]"));
  const Shape want = image_shape(latent.shape());
  if (image.shape() != want)
    throw InputError(cat("VAE decode: image ", shape_str(image.shape()), ", expected ", shape_str(want),
                         " for latent ", shape_str(latent.shape())));
  if (latent.numel() == 0) return;

  const PlanKey key{latent.dim(0), latent.dim(1), latent.dim(2),
                    static_cast<int>(latent.dtype()) * 2 + (latent.is_contiguous() ? 1 : 0),
                    static_cast<int>(image.dtype()) * 2 + (image.is_contiguous() ? 1 : 0)};
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    // Plan: run the schedule over shapes only, then allocate each role's largest need once.
    Pass plan(nullptr, dtype_, device, nullptr);
    run(plan, latent, image);  // planning calls no op, so image is not touched
    Buffers bufs;
    bufs.flat.resize(kRoleCount);
    for (int r = 0; r < kRoleCount; ++r) {
      const int64_t n = plan.needs()[static_cast<size_t>(r)];
      if (n == 0) continue;
      bufs.flat[static_cast<size_t>(r)] =
          arena_ ? Tensor::empty({n}, dtype_, *arena_, MemCategory::Activations, cat("vae decoder activations ", r))
                 : Tensor::zeros({n}, dtype_);
    }
    it = plans_.emplace(key, std::move(bufs)).first;
  }
  Pass pass(&ops, dtype_, device, &it->second.flat);
  run(pass, latent, image);
}

}  // namespace blr
