#include "engine/runtime/model_catalog.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "engine/core/error.h"
#include "engine/io/labels.h"
#include "engine/models/dit/dit_model.h"
#include "engine/models/vit/vit_config.h"
#include "engine/models/vit/vit_model.h"

namespace blr {

const char* model_kind_name(ModelKind k) {
  switch (k) {
    case ModelKind::Dit: return "DiT";
    case ModelKind::Vae: return "VAE";
    case ModelKind::Vit: return "ViT";
  }
  return "?";
}

ModelKind parse_model_kind(const std::string& name) {
  std::string n;
  for (char c : name) n.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (n == "dit") return ModelKind::Dit;
  if (n == "vae") return ModelKind::Vae;
  if (n == "vit") return ModelKind::Vit;
  throw InputError(cat("unknown model kind '", name, "' (expected dit, vae or vit)"));
}

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t numel_of(const Checkpoint& ckpt, const std::string& name) {
  return ckpt.has(name) ? shape_numel(ckpt.info(name).shape) : 0;
}

// Largest d <= limit dividing both a and b (1 always does).
int64_t largest_common_divisor_at_most(int64_t a, int64_t b, int64_t limit) {
  const int64_t g = std::gcd(a, b);
  for (int64_t d = std::min(limit, g); d > 1; --d)
    if (g % d == 0) return d;
  return 1;
}

// The paper's spec adapted to one layer of a model `scale` times the reference width.
LinearSpec scaled_spec(const LinearSpec& paper, int64_t in, int64_t out, double scale) {
  LinearSpec s = paper;
  const int64_t lim = std::min(in, out);
  const auto scaled_rank = static_cast<int64_t>(std::llround(static_cast<double>(paper.rank) * scale));
  switch (paper.kind) {
    case LinearKind::Dense: break;
    case LinearKind::LowRank: s.rank = std::clamp<int64_t>(scaled_rank, 1, lim); break;
    case LinearKind::Blast:
      s.blocks = largest_common_divisor_at_most(in, out, paper.blocks);
      s.rank = std::clamp<int64_t>(scaled_rank, 1, lim);
      break;
    case LinearKind::Monarch: {
      s.blocks = largest_common_divisor_at_most(in, out, paper.blocks);
      const int64_t b = s.blocks;
      const int64_t per_block = std::clamp<int64_t>(
          static_cast<int64_t>(std::llround(static_cast<double>(scaled_rank) / static_cast<double>(b))), 1,
          std::min(in / b, out / b));
      s.rank = per_block * b;
      break;
    }
  }
  return s;
}

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

}  // namespace

std::vector<LinearShape> linear_layers(const Checkpoint& ckpt) {
  std::map<std::string, LinearShape> layers;
  for (const std::string& name : ckpt.names()) {
    std::string layer;
    LinearKind kind = LinearKind::Dense;
    if (ends_with(name, ".weight")) {
      if (ckpt.info(name).shape.size() != 2) continue;
      layer = name.substr(0, name.size() - 7);
    } else if (ends_with(name, ".lowrank_A")) {
      layer = name.substr(0, name.size() - 10);
      kind = LinearKind::LowRank;
    } else if (ends_with(name, ".monarch_R")) {
      layer = name.substr(0, name.size() - 10);
      kind = LinearKind::Monarch;
    } else if (ends_with(name, ".blast_U")) {
      layer = name.substr(0, name.size() - 8);
      kind = LinearKind::Blast;
    } else {
      continue;
    }
    const auto shape = stored_linear_shape(ckpt, layer);
    if (!shape) continue;
    LinearShape l;
    l.name = layer;
    l.out = shape->first;
    l.in = shape->second;
    l.kind = kind;
    l.bias = ckpt.has(layer + ".bias");
    l.params = numel_of(ckpt, layer + ".bias");
    switch (kind) {
      case LinearKind::Dense: l.params += numel_of(ckpt, layer + ".weight"); break;
      case LinearKind::LowRank: l.params += numel_of(ckpt, layer + ".lowrank_A") + numel_of(ckpt, layer + ".lowrank_B"); break;
      case LinearKind::Monarch: l.params += numel_of(ckpt, layer + ".monarch_R") + numel_of(ckpt, layer + ".monarch_L"); break;
      case LinearKind::Blast:
        l.params += numel_of(ckpt, layer + ".blast_U") + numel_of(ckpt, layer + ".blast_S") +
                    numel_of(ckpt, layer + ".blast_V");
        break;
    }
    layers[layer] = l;
  }
  std::vector<LinearShape> out;
  for (auto& [name, l] : layers) out.push_back(l);
  return out;
}

int64_t spec_parameters(const LinearSpec& spec, int64_t in, int64_t out) {
  switch (spec.kind) {
    case LinearKind::Dense: return in * out;
    case LinearKind::LowRank:
    case LinearKind::Monarch: return spec.rank * (in + out);
    case LinearKind::Blast: return spec.rank * (in + out + spec.blocks * spec.blocks);
  }
  return in * out;
}

std::vector<std::string> mode_names(ModelKind kind) {
  if (kind == ModelKind::Vae) return {"dense"};
  return {"dense", "blast", "monarch", "lowrank"};
}

ModeRules mode_rules(ModelKind kind, const std::string& mode, const std::vector<LinearShape>& layers, int64_t width) {
  ModeRules m;
  m.mode = mode;
  if (mode == "dense") return m;
  if (kind == ModelKind::Vae) throw InputError("the VAE decoder has no BLR modes (its layers are convolutions)");
  const std::vector<LayerRule> paper = kind == ModelKind::Dit ? dit_mode_rules(mode) : vit_mode_rules(mode);
  const int64_t reference = kind == ModelKind::Dit ? 1152 : 768;
  const double scale = width > 0 ? static_cast<double>(width) / static_cast<double>(reference) : 1.0;
  std::ostringstream note;
  for (const LayerRule& rule : paper) {
    const LinearShape* first = nullptr;
    for (const LinearShape& l : layers)
      if (glob_match(rule.pattern, l.name)) {
        first = &l;
        break;
      }
    LayerRule r = rule;
    if (first) {
      bool valid = true;
      try {
        validate_spec(rule.spec, first->in, first->out, first->name);
      } catch (const InputError&) {
        valid = false;
      }
      if (width != reference || !valid) {
        r.spec = scaled_spec(rule.spec, first->in, first->out, scale);
        r.text = cat(rule.pattern, "=", r.spec.describe());
        if (r.spec.kind == LinearKind::Blast && r.spec.iterations != 300) r.text += cat(",iters=", r.spec.iterations);
        if (r.spec.blocks != rule.spec.blocks || r.spec.rank != rule.spec.rank) m.scaled = true;
      }
    }
    m.rules.push_back(r);
  }
  if (m.scaled) {
    note << "the paper's " << mode << " configuration is for width " << reference << "; scaled to width " << width
         << " (ranks x" << std::fixed;
    note.precision(3);
    note << scale << ", blocks lowered to divide the layer sides)";
    m.note = note.str();
  }
  m.text = rules_to_text(m.rules);
  return m;
}

std::vector<LayerRule> parse_rules_text(const std::string& text) {
  std::vector<LayerRule> rules;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      // ';' also separates rules on one line.
      std::istringstream parts(word);
      std::string part;
      while (std::getline(parts, part, ';')) {
        part = trim(part);
        if (!part.empty()) rules.push_back(parse_layer_rule(part));
      }
    }
  }
  return rules;
}

std::string rules_to_text(const std::vector<LayerRule>& rules) {
  std::string out;
  for (const auto& r : rules) {
    if (!out.empty()) out += "\n";
    out += r.text.empty() ? cat(r.pattern, "=", r.spec.describe()) : r.text;
  }
  return out;
}

ModeCost mode_cost(const std::string& mode, const std::vector<LayerRule>& rules, const std::vector<LinearShape>& layers,
                   int64_t other_params, DType dtype) {
  ModeCost c;
  c.mode = mode;
  int64_t dense_equivalent = other_params, params = other_params;
  for (const LinearShape& l : layers) {
    const int64_t bias = l.bias ? l.out : 0;
    dense_equivalent += l.in * l.out + bias;
    std::optional<LinearSpec> spec;
    if (l.kind == LinearKind::Dense) spec = match_rules(rules, l.name);
    if (spec && spec->kind != LinearKind::Dense) {
      try {
        validate_spec(*spec, l.in, l.out, l.name);
      } catch (const InputError& e) {
        if (c.error.empty()) c.error = e.what();
        params += l.params;
        continue;
      }
      params += spec_parameters(*spec, l.in, l.out) + bias;
      ++c.compressed_layers;
    } else {
      params += l.params;
    }
  }
  c.params = params;
  c.bytes = static_cast<size_t>(params) * dtype_size(dtype);
  c.ratio = params > 0 ? static_cast<double>(dense_equivalent) / static_cast<double>(params) : 1.0;
  return c;
}

std::vector<std::string> metadata_labels(const Checkpoint& ckpt) {
  const auto& meta = ckpt.metadata();
  for (const char* key : {"class_names", "labels", "dit.class_names", "vit.class_names", "dit.labels", "vit.labels"}) {
    auto it = meta.find(key);
    if (it == meta.end() || trim(it->second).empty()) continue;
    const std::string text = trim(it->second);
    std::vector<std::string> names;
    if (text.front() == '[') {
      try {
        for (const auto& v : nlohmann::json::parse(text)) names.push_back(v.get<std::string>());
      } catch (const std::exception& e) {
        throw InputError(cat(ckpt.path(), ": metadata '", key, "' is not a JSON array of strings (", e.what(), ")"));
      }
    } else {
      std::istringstream in(text);
      std::string line;
      while (std::getline(in, line)) names.push_back(trim(line));
    }
    if (!names.empty()) return names;
  }
  return {};
}

std::vector<std::string> class_labels(const Checkpoint& ckpt, int64_t num_classes) {
  std::vector<std::string> names = metadata_labels(ckpt);
  if (!names.empty()) {
    if (static_cast<int64_t>(names.size()) < num_classes)
      throw InputError(cat(ckpt.path(), ": metadata has ", names.size(), " class names for a model with ", num_classes,
                           " classes"));
    names.resize(static_cast<size_t>(num_classes));
    return names;
  }
  if (num_classes == 1000) return imagenet_labels();
  return {};
}

}  // namespace blr
