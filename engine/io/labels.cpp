#include "engine/io/labels.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

#include "engine/core/error.h"

namespace blr {

std::vector<std::string> load_labels(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(cat(path, ": cannot read the label file"));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    out.push_back(line);
  }
  while (!out.empty() && out.back().empty()) out.pop_back();
  if (out.empty()) throw InputError(cat(path, ": the label file is empty"));
  return out;
}

std::string assets_dir() {
  if (const char* env = std::getenv("BLR_ASSETS_DIR")) return env;
  return std::string(BLR_SOURCE_DIR) + "/assets";
}

const std::vector<std::string>& imagenet_labels() {
  static const std::vector<std::string> labels = load_labels(assets_dir() + "/imagenet_classes.txt");
  return labels;
}

static std::string normalise(const std::string& s) {
  std::string out;
  for (char c : s) out.push_back(c == '_' ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

std::optional<int> find_label(const std::vector<std::string>& labels, const std::string& name) {
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
    const long v = std::strtol(name.c_str(), nullptr, 10);
    if (v >= 0 && v < static_cast<long>(labels.size())) return static_cast<int>(v);
    return std::nullopt;
  }
  const std::string key = normalise(name);
  for (size_t i = 0; i < labels.size(); ++i)
    if (normalise(labels[i]) == key) return static_cast<int>(i);
  if (labels.size() == 1000) {  // aliases for ImageNet names people commonly use instead of the list's
    static const std::pair<const char*, int> aliases[] = {
        {"red panda", 387}, {"polar bear", 296}, {"arctic fox", 279}, {"hot air balloon", 417}};
    for (const auto& [alias, idx] : aliases)
      if (key == alias) return idx;
  }
  return std::nullopt;
}

}  // namespace blr
