// Layer rules: "PATTERN=METHOD[:b=B,r=R[,iters=T]]" parsing, glob matching over layer names, and the
// check that a spec can factor a given out×in matrix. Every message names the rule or layer and says
// what is wrong, because these come straight from the command line.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>

#include "engine/core/error.h"
#include "engine/nn/linear.h"

namespace blr {

const char* linear_kind_name(LinearKind k) {
  switch (k) {
    case LinearKind::Dense: return "dense";
    case LinearKind::LowRank: return "lowrank";
    case LinearKind::Monarch: return "monarch";
    case LinearKind::Blast: return "blast";
  }
  return "?";
}

LinearKind parse_linear_kind(const std::string& name) {
  if (name == "dense") return LinearKind::Dense;
  if (name == "lowrank" || name == "low-rank") return LinearKind::LowRank;
  if (name == "monarch") return LinearKind::Monarch;
  if (name == "blast") return LinearKind::Blast;
  throw InputError(cat("unknown layer method '", name, "' (expected dense, lowrank, monarch or blast)"));
}

std::string LinearSpec::describe() const {
  switch (kind) {
    case LinearKind::Dense: return "dense";
    case LinearKind::LowRank: return cat("lowrank:r=", rank);
    case LinearKind::Monarch: return cat("monarch:b=", blocks, ",r=", rank);
    case LinearKind::Blast: return cat("blast:b=", blocks, ",r=", rank);
  }
  return "?";
}

namespace {

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

// A positive decimal integer that fits comfortably in int (ranks, blocks and iteration counts).
int64_t parse_positive(const std::string& rule, const std::string& key, const std::string& value) {
  const std::string v = trim(value);
  bool digits = !v.empty() && v.size() <= 9;
  for (char c : v) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  if (!digits) throw InputError(cat("rule '", rule, "': ", key, "='", value, "' is not a positive integer"));
  const int64_t n = std::strtoll(v.c_str(), nullptr, 10);
  if (n <= 0) throw InputError(cat("rule '", rule, "': ", key, " must be positive, got ", n));
  return n;
}

}  // namespace

LayerRule parse_layer_rule(const std::string& text) {
  LayerRule rule;
  rule.text = text;
  const size_t eq = text.find('=');
  if (eq == std::string::npos)
    throw InputError(cat("rule '", text, "': expected PATTERN=METHOD[:b=B,r=R[,iters=T]], e.g. "
                                         "'blocks.*.attn.qkv=blast:b=9,r=384'"));
  rule.pattern = trim(text.substr(0, eq));
  if (rule.pattern.empty()) throw InputError(cat("rule '", text, "': the layer pattern before '=' is empty"));
  const std::string rest = text.substr(eq + 1);
  const size_t colon = rest.find(':');
  const std::string method = trim(rest.substr(0, colon));
  if (method.empty()) throw InputError(cat("rule '", text, "': no method after '=' (dense, lowrank, monarch, blast)"));
  try {
    rule.spec.kind = parse_linear_kind(method);
  } catch (const InputError& e) {
    throw InputError(cat("rule '", text, "': ", e.what()));
  }

  std::map<std::string, int64_t> params;
  if (colon != std::string::npos) {
    const std::string list = rest.substr(colon + 1);
    if (trim(list).empty()) throw InputError(cat("rule '", text, "': nothing after ':' (expected b=B,r=R)"));
    size_t start = 0;
    while (start <= list.size()) {
      const size_t comma = std::min(list.find(',', start), list.size());
      const std::string item = trim(list.substr(start, comma - start));
      const size_t ieq = item.find('=');
      if (item.empty() || ieq == std::string::npos)
        throw InputError(cat("rule '", text, "': parameter '", item, "' is not KEY=VALUE (keys: b, r, iters)"));
      const std::string key = trim(item.substr(0, ieq));
      if (key != "b" && key != "r" && key != "iters")
        throw InputError(cat("rule '", text, "': unknown parameter '", key, "' (keys: b, r, iters)"));
      if (params.count(key)) throw InputError(cat("rule '", text, "': parameter '", key, "' given twice"));
      params[key] = parse_positive(text, key, item.substr(ieq + 1));
      start = comma + 1;
    }
  }

  const LinearKind kind = rule.spec.kind;
  const bool has_b = params.count("b") != 0, has_r = params.count("r") != 0, has_it = params.count("iters") != 0;
  if (kind == LinearKind::Dense && !params.empty())
    throw InputError(cat("rule '", text, "': dense takes no parameters"));
  if (kind != LinearKind::Dense && !has_r)
    throw InputError(cat("rule '", text, "': ", method, " needs a rank r (e.g. ", method,
                         kind == LinearKind::LowRank ? ":r=64" : ":b=4,r=128", ")"));
  if ((kind == LinearKind::Monarch || kind == LinearKind::Blast) && !has_b)
    throw InputError(cat("rule '", text, "': ", method, " needs a block count b (e.g. ", method, ":b=4,r=128)"));
  if (kind == LinearKind::LowRank && has_b && params["b"] != 1)
    throw InputError(cat("rule '", text, "': lowrank has no blocks (b=", params["b"], "); drop b or use monarch/blast"));
  if (has_it && kind != LinearKind::Blast)
    throw InputError(cat("rule '", text, "': iters applies to blast only (", method, " is computed by an SVD)"));
  if (has_b) rule.spec.blocks = params["b"];
  if (has_r) rule.spec.rank = params["r"];
  if (has_it) {
    rule.spec.iterations = static_cast<int>(params["iters"]);
    rule.iterations_given = true;
  }
  return rule;
}

bool glob_match(const std::string& pattern, const std::string& name) {
  // Iterative wildcard match: on a mismatch, let the most recent '*' swallow one more character.
  size_t p = 0, n = 0, star = std::string::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::optional<LinearSpec> match_rules(const std::vector<LayerRule>& rules, const std::string& layer) {
  for (const auto& r : rules)
    if (glob_match(r.pattern, layer)) return r.spec;
  return std::nullopt;
}

void validate_spec(const LinearSpec& spec, int64_t in, int64_t out, const std::string& layer) {
  const std::string where = cat("layer '", layer, "' (", out, "x", in, ", ", spec.describe(), "): ");
  if (in <= 0 || out <= 0) throw InputError(cat(where, "the weight has an empty side"));
  if (spec.kind == LinearKind::Dense) return;
  const int64_t b = spec.blocks, r = spec.rank;
  if (r <= 0) throw InputError(cat(where, "rank r must be positive"));
  if (b <= 0) throw InputError(cat(where, "block count b must be positive"));
  if (spec.kind == LinearKind::LowRank) {
    if (b != 1) throw InputError(cat(where, "lowrank has no blocks, got b=", b));
    if (r > std::min(in, out))
      throw InputError(cat(where, "r=", r, " exceeds min(in, out)=", std::min(in, out), " (a rank no matrix of this shape has)"));
    return;
  }
  if (in % b != 0 || out % b != 0)
    throw InputError(cat(where, "b=", b, " must divide both in=", in, " and out=", out));
  const int64_t ib = in / b, ob = out / b;
  if (spec.kind == LinearKind::Monarch) {
    if (r % b != 0) throw InputError(cat(where, "r=", r, " must be a multiple of b=", b, " (each block gets r/b)"));
    if (r / b > std::min(ib, ob))
      throw InputError(cat(where, "r/b=", r / b, " exceeds the ", ob, "x", ib, " block's rank limit ", std::min(ib, ob),
                           " (so r <= ", b * std::min(ib, ob), ")"));
    return;
  }
  // BLAST: at r = min(in, out) every matrix is already exactly representable (take V_j = the j-th
  // slice of the identity, s_kj = indicator of group j, U_k = the k-th block row), so a larger rank
  // only adds parameters. Ranks above in/b or out/b are legitimate below that (DiT qkv: r=384 > in/b=128).
  if (r > std::min(in, out))
    throw InputError(cat(where, "r=", r, " exceeds min(in, out)=", std::min(in, out),
                         "; BLAST represents every matrix exactly at that rank already"));
  if (spec.iterations <= 0) throw InputError(cat(where, "iters must be positive"));
}

}  // namespace blr
