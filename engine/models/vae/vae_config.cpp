#include "engine/models/vae/vae_config.h"

#include <cstdlib>
#include <sstream>

#include "engine/core/error.h"
#include "engine/io/checkpoint.h"

namespace blr {
namespace {

int metadata_int(const Checkpoint& ckpt, const std::string& key, int fallback) {
  const std::string v = ckpt.metadata_or(key, "");
  if (v.empty()) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  if (end == v.c_str() || *end != '\0' || n <= 0 || n > 1 << 20)
    throw InputError(cat(ckpt.path(), ": metadata '", key, "' = '", v, "' is not a positive integer"));
  return static_cast<int>(n);
}

float metadata_float(const Checkpoint& ckpt, const std::string& key, float fallback) {
  const std::string v = ckpt.metadata_or(key, "");
  if (v.empty()) return fallback;
  char* end = nullptr;
  const float f = std::strtof(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !(f > 0.0f))
    throw InputError(cat(ckpt.path(), ": metadata '", key, "' = '", v, "' is not a positive number"));
  return f;
}

// dim(i) of a 4-D conv weight [Co, Ci, kh, kw], checking rank and kernel size.
Shape conv_shape(const Checkpoint& ckpt, const std::string& name, int k) {
  if (!ckpt.has(name)) throw InputError(cat(ckpt.path(), ": tensor '", name, "' not found"));
  const Shape s = ckpt.info(name).shape;
  if (s.size() != 4 || s[2] != k || s[3] != k)
    throw InputError(cat(ckpt.path(), ": tensor '", name, "': shape ", shape_str(s), ", expected [Co,Ci,", k,
                         ",", k, "]"));
  return s;
}

}  // namespace

int VaeConfig::upscale() const {
  int f = 1;
  for (bool u : block_upsample) f *= u ? 2 : 1;
  return f;
}

double VaeConfig::decode_flops(int64_t batch, int64_t h, int64_t w) const {
  auto conv = [](double pixels, double co, double ci, double k) { return 2.0 * pixels * co * ci * k * k; };
  double f = 0, H = static_cast<double>(h), W = static_cast<double>(w);
  auto resnet = [&](double ci, double co) {
    return conv(H * W, co, ci, 3) + conv(H * W, co, co, 3) + (ci != co ? conv(H * W, co, ci, 1) : 0.0);
  };
  const double mid = mid_channels;
  if (post_quant_conv) f += conv(H * W, latent_channels, latent_channels, 1);
  f += conv(H * W, mid, latent_channels, 3);
  f += 2 * resnet(mid, mid);
  if (mid_attention) {
    const double S = H * W;
    f += 2.0 * S * 4 * mid * mid + 4.0 * S * S * mid;  // q, k, v, out projections; QKᵀ and PV
  }
  double cin = mid;
  for (size_t b = 0; b < block_channels.size(); ++b) {
    const double co = block_channels[b];
    for (int r = 0; r < resnets_per_block; ++r) f += resnet(r == 0 ? cin : co, co);
    if (block_upsample[b]) {
      H *= 2;
      W *= 2;
      f += conv(H * W, co, co, 3);
    }
    cin = co;
  }
  f += conv(H * W, out_channels, cin, 3);
  return f * static_cast<double>(batch);
}

std::string VaeConfig::describe() const {
  std::ostringstream os;
  os << "VAE decoder: latent " << latent_channels << " -> " << out_channels << " channels, mid " << mid_channels
     << ", blocks [";
  for (size_t i = 0; i < block_channels.size(); ++i)
    os << (i ? "," : "") << block_channels[i] << (block_upsample[i] ? "^" : "");
  os << "] x" << resnets_per_block << " resnets, groups " << groups << ", eps " << eps << ", mid attention "
     << (mid_attention ? "yes" : "no") << " (" << attention_heads << " head" << (attention_heads > 1 ? "s" : "")
     << "), upscale " << upscale() << ", scaling " << scaling_factor;
  return os.str();
}

VaeConfig infer_vae_config(const Checkpoint& ckpt) {
  VaeConfig c;
  const std::string anchor = "decoder.conv_in.weight";
  if (!ckpt.has(anchor)) {
    bool found = false;
    for (const std::string& name : ckpt.names())
      if (name.size() > anchor.size() && name.compare(name.size() - anchor.size(), anchor.size(), anchor) == 0) {
        c.key_prefix = name.substr(0, name.size() - anchor.size());
        found = true;
        break;
      }
    if (!found)
      throw InputError(cat(ckpt.path(), ": tensor '", anchor,
                           "' not found (not a diffusers AutoencoderKL / SD VAE checkpoint?)"));
  }
  const std::string& p = c.key_prefix;
  const Shape conv_in = conv_shape(ckpt, p + anchor, 3);
  c.mid_channels = static_cast<int>(conv_in[0]);
  c.latent_channels = static_cast<int>(conv_in[1]);
  c.post_quant_conv = ckpt.has(p + "post_quant_conv.weight");
  const Shape conv_out = conv_shape(ckpt, p + "decoder.conv_out.weight", 3);
  c.out_channels = static_cast<int>(conv_out[0]);

  for (int b = 0; ckpt.has(cat(p, "decoder.up_blocks.", b, ".resnets.0.conv1.weight")); ++b) {
    const Shape s = conv_shape(ckpt, cat(p, "decoder.up_blocks.", b, ".resnets.0.conv1.weight"), 3);
    c.block_channels.push_back(static_cast<int>(s[0]));
    c.block_upsample.push_back(ckpt.has(cat(p, "decoder.up_blocks.", b, ".upsamplers.0.conv.weight")));
    int resnets = 0;
    while (ckpt.has(cat(p, "decoder.up_blocks.", b, ".resnets.", resnets, ".conv1.weight"))) ++resnets;
    if (b == 0) c.resnets_per_block = resnets;
    if (resnets != c.resnets_per_block)
      throw InputError(cat(ckpt.path(), ": up block ", b, " has ", resnets, " resnets but up block 0 has ",
                           c.resnets_per_block));
  }
  if (c.block_channels.empty())
    throw InputError(cat(ckpt.path(), ": tensor '", p, "decoder.up_blocks.0.resnets.0.conv1.weight' not found"));

  c.mid_attention = ckpt.has(p + "decoder.mid_block.attentions.0.group_norm.weight");
  if (c.mid_attention) {
    const std::string a = p + "decoder.mid_block.attentions.0.";
    if (ckpt.has(a + "to_q.weight")) {
      c.legacy_attention_keys = false;
    } else if (ckpt.has(a + "query.weight")) {
      c.legacy_attention_keys = true;
    } else {
      throw InputError(cat(ckpt.path(), ": tensor '", a, "to_q.weight' (or the older '", a,
                           "query.weight') not found"));
    }
  }

  c.groups = metadata_int(ckpt, "vae.groups", 32);
  c.eps = metadata_float(ckpt, "vae.eps", 1e-6f);
  c.scaling_factor = metadata_float(ckpt, "vae.scaling_factor", 0.18215f);
  c.attention_heads = metadata_int(ckpt, "vae.attention_heads", 1);

  auto check_groups = [&](int channels, const std::string& where) {
    if (channels % c.groups != 0)
      throw InputError(cat(ckpt.path(), ": ", where, " has ", channels, " channels, not divisible by ", c.groups,
                           " GroupNorm groups (set metadata 'vae.groups')"));
  };
  check_groups(c.mid_channels, "the mid block");
  for (size_t b = 0; b < c.block_channels.size(); ++b) check_groups(c.block_channels[b], cat("up block ", b));
  if (c.mid_attention && c.mid_channels % c.attention_heads != 0)
    throw InputError(cat(ckpt.path(), ": ", c.attention_heads, " attention heads do not divide ", c.mid_channels,
                         " channels"));
  return c;
}

}  // namespace blr
