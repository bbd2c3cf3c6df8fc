#include "engine/demo/demo_models.h"

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/core/error.h"
#include "engine/io/checkpoint.h"
#include "engine/io/labels.h"

namespace blr::demo {

std::string models_dir() { return assets_dir() + "/models"; }
std::vector<std::string> dit_modes() { return {"dense", "monarch", "blast"}; }
std::vector<std::string> vit_modes() { return {"dense", "monarch", "blast", "blast-trained"}; }

static std::string model_path(const std::string& model, const std::string& mode, const std::vector<std::string>& modes) {
  bool known = false;
  std::string list;
  for (const auto& m : modes) {
    known = known || m == mode;
    list += (list.empty() ? "" : ", ") + m;
  }
  if (!known) throw InputError(cat("the demo ", model, " has no mode '", mode, "' (it has ", list, ")"));
  std::string suffix = mode == "dense" ? "" : "_" + mode;
  for (char& c : suffix)
    if (c == '-') c = '_';
  return cat(models_dir(), "/demo_", model, suffix, ".safetensors");
}

std::string dit_path(const std::string& mode) { return model_path("dit", mode, dit_modes()); }
std::string vit_path(const std::string& mode) { return model_path("vit", mode, vit_modes()); }
std::string video_path() { return assets_dir() + "/demo_video.avi"; }

std::string require(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw InputError(cat(what, " not found at ", path, ": the demo models live in assets/models/ of the source "
                         "tree (or $BLR_ASSETS_DIR/models); see docs/MODELS.md"));
  return path;
}

std::vector<std::string> metadata_class_names(const Checkpoint& ckpt) {
  const auto& meta = ckpt.metadata();
  for (const char* key : {"class_names", "labels", "dit.class_names", "vit.class_names"}) {
    auto it = meta.find(key);
    if (it == meta.end() || it->second.empty()) continue;
    std::vector<std::string> names;
    const std::string& text = it->second;
    if (text.front() == '[') {
      nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!j.is_array())
        throw InputError(cat(ckpt.path(), ": metadata ", key, " is not a JSON array of class names"));
      for (const auto& v : j) {
        if (!v.is_string()) throw InputError(cat(ckpt.path(), ": metadata ", key, " holds a non-string entry"));
        names.push_back(v.get<std::string>());
      }
    } else {
      std::istringstream in(text);
      for (std::string line; std::getline(in, line);)
        if (!line.empty()) names.push_back(line);
    }
    return names;
  }
  return {};
}

SamplerDefaults sampler_defaults(const Checkpoint& ckpt) {
  SamplerDefaults d;
  const auto& meta = ckpt.metadata();
  auto get = [&](const char* key) -> const std::string* {
    auto it = meta.find(key);
    return it == meta.end() ? nullptr : &it->second;
  };
  auto bad = [&](const char* key, const std::string& v) {
    return InputError(cat(ckpt.path(), ": metadata ", key, " = '", v, "' is not valid"));
  };
  if (const std::string* v = get("demo.sampler")) d.sampler = *v;
  if (const std::string* v = get("demo.steps")) {
    char* end = nullptr;
    const long n = std::strtol(v->c_str(), &end, 10);
    if (v->empty() || *end || n < 1 || n > 1000) throw bad("demo.steps", *v);
    d.steps = static_cast<int>(n);
  }
  if (const std::string* v = get("demo.cfg")) {
    char* end = nullptr;
    const double x = std::strtod(v->c_str(), &end);
    if (v->empty() || *end || !(x >= 0) || x > 100) throw bad("demo.cfg", *v);
    d.cfg = x;
  }
  return d;
}

}  // namespace blr::demo
