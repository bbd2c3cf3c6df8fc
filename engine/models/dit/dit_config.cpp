#include "engine/models/dit/dit_config.h"

#include <cmath>
#include <cstdlib>
#include <set>

#include "engine/core/error.h"
#include "engine/io/checkpoint.h"
#include "engine/models/dit/dit_keymap.h"

namespace blr {

std::string DitConfig::describe() const {
  return cat("DiT hidden ", hidden, ", depth ", depth, ", ", heads, " heads, patch ", patch, ", latent ", input_size,
             "x", input_size, "x", in_channels, ", mlp ", mlp_hidden, ", ", num_classes, " classes",
             learn_sigma ? ", learned sigma" : "");
}

std::map<std::string, std::string> DitConfig::to_metadata() const {
  return {{"dit.hidden", std::to_string(hidden)},         {"dit.depth", std::to_string(depth)},
          {"dit.heads", std::to_string(heads)},           {"dit.patch", std::to_string(patch)},
          {"dit.input_size", std::to_string(input_size)}, {"dit.in_channels", std::to_string(in_channels)},
          {"dit.mlp_hidden", std::to_string(mlp_hidden)}, {"dit.num_classes", std::to_string(num_classes)},
          {"dit.learn_sigma", learn_sigma ? "1" : "0"}};
}

void DitConfig::validate(const std::string& where) const {
  auto bad = [&](const std::string& why) { throw InputError(cat(where, ": not a usable DiT: ", why)); };
  if (hidden <= 0 || depth <= 0 || heads <= 0 || patch <= 0 || in_channels <= 0 || mlp_hidden <= 0)
    bad(cat("non-positive size in ", describe()));
  if (hidden % heads != 0) bad(cat(heads, " heads do not divide the width ", hidden));
  if (input_size <= 0 || input_size % patch != 0)
    bad(cat("latent size ", input_size, " is not a positive multiple of the patch ", patch));
  if (num_classes <= 0) bad(cat(num_classes, " classes"));
}

static bool parse_int(const std::string& text, int64_t* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0') return false;
  *out = v;
  return true;
}

static int64_t meta_int(const Checkpoint& ckpt, const std::string& key, int64_t fallback) {
  const auto& m = ckpt.metadata();
  auto it = m.find(key);
  if (it == m.end()) return fallback;
  int64_t v = 0;
  if (!parse_int(it->second, &v))
    throw InputError(cat(ckpt.path(), ": metadata ", key, " = '", it->second, "' is not an integer"));
  return v;
}

// Output rows of layer `name` whether stored dense or as factors (U [b, o/b, r], B [o, r], L [b, o/b, r]).
static int64_t layer_out(const Checkpoint& ckpt, const std::string& name) {
  if (ckpt.has(name + ".weight")) return ckpt.info(name + ".weight").shape.at(0);
  if (ckpt.has(name + ".bias")) return ckpt.info(name + ".bias").shape.at(0);
  for (const char* f : {".blast_U", ".monarch_L"})
    if (ckpt.has(name + f)) {
      const Shape s = ckpt.info(name + f).shape;
      if (s.size() == 3) return s[0] * s[1];
    }
  if (ckpt.has(name + ".lowrank_B")) return ckpt.info(name + ".lowrank_B").shape.at(0);
  return -1;
}

DitConfig infer_dit_config(const Checkpoint& ckpt) {
  DitConfig c;
  const std::string& path = ckpt.path();
  const char* kPatch = "x_embedder.proj.weight";
  if (!ckpt.has(kPatch))
    throw InputError(cat(path, ": not a DiT checkpoint: tensor '", kPatch,
                         "' not found (nor the diffusers 'pos_embed.proj.weight')"));
  const Shape pw = ckpt.info(kPatch).shape;
  if (pw.size() != 4 || pw[2] != pw[3])
    throw InputError(cat(path, ": tensor '", kPatch, "': shape ", shape_str(pw), ", expected [H, C, p, p]"));
  c.hidden = pw[0];
  c.in_channels = pw[1];
  c.patch = pw[2];

  std::set<int64_t> blocks;
  for (const std::string& n : ckpt.names()) {
    if (n.rfind("blocks.", 0) != 0) continue;
    const size_t dot = n.find('.', 7);
    int64_t idx = 0;
    if (dot != std::string::npos && parse_int(n.substr(7, dot - 7), &idx)) blocks.insert(idx);
  }
  c.depth = static_cast<int64_t>(blocks.size());
  if (c.depth == 0) throw InputError(cat(path, ": not a DiT checkpoint: no 'blocks.N.*' tensors"));
  for (int64_t i = 0; i < c.depth; ++i)
    if (!blocks.count(i)) throw InputError(cat(path, ": DiT blocks are not numbered 0..", c.depth - 1, " (block ", i, " missing)"));

  int64_t mlp = layer_out(ckpt, "blocks.0.mlp.fc1");
  if (mlp < 0 && ckpt.has("blocks.0.mlp.fc2.weight")) mlp = ckpt.info("blocks.0.mlp.fc2.weight").shape.at(1);
  c.mlp_hidden = meta_int(ckpt, "dit.mlp_hidden", mlp > 0 ? mlp : 4 * c.hidden);

  const int64_t final_out = layer_out(ckpt, "final_layer.linear");
  if (final_out <= 0) throw InputError(cat(path, ": tensor 'final_layer.linear.weight' not found"));
  if (final_out % (c.patch * c.patch) != 0)
    throw InputError(cat(path, ": final_layer.linear has ", final_out, " outputs, not a multiple of patch² = ",
                         c.patch * c.patch));
  const int64_t out_ch = final_out / (c.patch * c.patch);
  if (out_ch != c.in_channels && out_ch != 2 * c.in_channels)
    throw InputError(cat(path, ": final_layer.linear gives ", out_ch, " channels per pixel, expected ", c.in_channels,
                         " or ", 2 * c.in_channels, " (learned sigma)"));
  c.learn_sigma = out_ch == 2 * c.in_channels;

  const std::string kTable = dit_label_table_name(ckpt);
  if (!ckpt.has(kTable)) throw InputError(cat(path, ": tensor '", kTable, "' not found"));
  const Shape ts = ckpt.info(kTable).shape;
  if (ts.size() != 2 || ts[1] != c.hidden || ts[0] < 2)
    throw InputError(cat(path, ": tensor '", kTable, "': shape ", shape_str(ts), ", expected [classes+1, ", c.hidden, "]"));
  // The table holds one extra row: the null label used for classifier-free guidance.
  c.num_classes = meta_int(ckpt, "dit.num_classes", ts[0] - 1);
  if (c.num_classes + 1 != ts[0])
    throw InputError(cat(path, ": tensor '", kTable, "' has ", ts[0], " rows, expected ", c.num_classes + 1,
                         " (classes + the null label)"));

  int64_t input_size = 32;
  if (ckpt.has("pos_embed")) {
    const Shape ps = ckpt.info("pos_embed").shape;
    const int64_t n = ps.size() == 3 ? ps[1] : (ps.size() == 2 ? ps[0] : -1);
    const int64_t g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(std::max<int64_t>(n, 0)))));
    if (n <= 0 || g * g != n || ps.back() != c.hidden)
      throw InputError(cat(path, ": tensor 'pos_embed': shape ", shape_str(ps), ", expected [1, g·g, ", c.hidden, "]"));
    input_size = g * c.patch;
  }
  c.input_size = meta_int(ckpt, "dit.input_size", input_size);

  int64_t heads = 0;
  switch (c.hidden) {
    case 384: heads = 6; break;
    case 768: heads = 12; break;
    case 1024: heads = 16; break;
    case 1152: heads = 16; break;
    default: heads = c.hidden % 64 == 0 ? c.hidden / 64 : 0;
  }
  c.heads = meta_int(ckpt, "dit.heads", heads);
  if (c.heads <= 0)
    throw InputError(cat(path, ": cannot tell the head count of a DiT of width ", c.hidden,
                         "; add metadata dit.heads"));
  const auto& m = ckpt.metadata();
  if (auto it = m.find("dit.learn_sigma"); it != m.end() && (it->second == "1") != c.learn_sigma)
    throw InputError(cat(path, ": metadata dit.learn_sigma = ", it->second, " contradicts final_layer.linear (",
                         out_ch, " channels)"));
  c.validate(path);
  return c;
}

}  // namespace blr
