// What the studio needs to know about a model file besides the model itself: which of its layers are
// linears (and their shapes), the layer rules of each named mode (the papers' configurations, scaled to
// the model when it is not the size they were written for), what each mode would cost in parameters and
// bytes, and the class names the file carries. Pure functions over a Checkpoint: nothing here loads
// weights or touches a device.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/dtype.h"
#include "engine/io/checkpoint.h"
#include "engine/nn/linear.h"

namespace blr {

enum class ModelKind : uint8_t { Dit, Vae, Vit };
const char* model_kind_name(ModelKind k);  // "DiT", "VAE", "ViT"
ModelKind parse_model_kind(const std::string& name);  // "dit", "vae", "vit" (any case); InputError otherwise

// One linear layer as stored: dense (N.weight [out, in]) or factored (N.lowrank_A, N.monarch_R, ...).
struct LinearShape {
  std::string name;
  int64_t in = 0, out = 0;
  bool bias = false;
  LinearKind kind = LinearKind::Dense;
  int64_t params = 0;  // stored parameters, bias included
};

// Every linear layer of `ckpt` in name order. DiT files must be given in original names
// (dit_original_view). 2-D ".weight" tensors count as dense linears; factor tensors as BLR layers.
std::vector<LinearShape> linear_layers(const Checkpoint& ckpt);

// Parameters of an out×in linear stored as `spec` (bias not included).
int64_t spec_parameters(const LinearSpec& spec, int64_t in, int64_t out);

// The named modes every model kind offers ("dense", "blast", "monarch", "lowrank"; VAE: "dense" only).
std::vector<std::string> mode_names(ModelKind kind);

// Rules of a named mode for a model. The papers' configurations are written for DiT-XL/2 (width 1152)
// and ViT-B/16 (width 768); for another width the ranks are scaled by width / reference width and the
// block count lowered to the largest divisor of both layer sides not above the paper's, so the preset
// stays valid and keeps roughly the same compression ratio. `note` says what was scaled.
struct ModeRules {
  std::string mode;
  std::vector<LayerRule> rules;  // empty for dense
  std::string text;              // the rules, one per line (what the Models panel shows and lets users edit)
  bool scaled = false;
  std::string note;
};
ModeRules mode_rules(ModelKind kind, const std::string& mode, const std::vector<LinearShape>& layers, int64_t width);

// Parses rules typed by a user: one PATTERN=METHOD[:b=B,r=R] per line or separated by ';' / ','-free
// whitespace; '#' starts a comment. Throws InputError naming the bad rule.
std::vector<LayerRule> parse_rules_text(const std::string& text);
std::string rules_to_text(const std::vector<LayerRule>& rules);

// Parameters and bytes a model would have under `rules`, from its stored layers: parameters outside the
// linears (`other_params`) stay as they are; each dense linear a rule matches is replaced by its factors.
struct ModeCost {
  std::string mode;
  int64_t params = 0;
  size_t bytes = 0;
  double ratio = 1.0;  // dense-equivalent parameters / these parameters
  int compressed_layers = 0;
  std::string error;   // the rule that cannot apply, when one cannot
};
ModeCost mode_cost(const std::string& mode, const std::vector<LayerRule>& rules, const std::vector<LinearShape>& layers,
                   int64_t other_params, DType dtype);

// Class names stored in a model file's metadata: keys "class_names", "labels", "<prefix>.class_names" or
// "<prefix>.labels" (prefix dit / vit), as a JSON array of strings or one name per line. Empty if none.
std::vector<std::string> metadata_labels(const Checkpoint& ckpt);

// The model's own names, else the ImageNet names for a 1000-class model, else empty.
std::vector<std::string> class_labels(const Checkpoint& ckpt, int64_t num_classes);

}  // namespace blr
