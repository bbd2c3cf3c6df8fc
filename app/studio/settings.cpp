#include "app/studio/settings.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace studio {

namespace fs = std::filesystem;
using nlohmann::json;

const char* tab_name(Tab t) {
  switch (t) {
    case Tab::Generate: return "Generate";
    case Tab::Classify: return "Classify";
    case Tab::Compare: return "Compare";
    case Tab::Models: return "Models";
  }
  return "?";
}

bool parse_tab(const std::string& name, Tab* out) {
  std::string n;
  for (char c : name) n.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (int i = 0; i < kTabCount; ++i) {
    std::string t = tab_name(static_cast<Tab>(i));
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
    if (t == n) {
      *out = static_cast<Tab>(i);
      return true;
    }
  }
  return false;
}

std::string default_config_dir() {
  fs::path dir;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) dir = fs::path(xdg) / "blr-studio";
  else if (const char* home = std::getenv("HOME"); home && *home) dir = fs::path(home) / ".config" / "blr-studio";
  else dir = fs::current_path() / ".blr-studio";
  return dir.string();
}

namespace {

json to_json(const Settings& s) {
  json j;
  j["version"] = 1;
  const WindowSettings& w = s.window;
  j["window"] = {{"width", w.width},       {"height", w.height},   {"x", w.x},
                 {"y", w.y},               {"panel_width", w.panel_width},
                 {"overlay", w.overlay},   {"messages", w.messages}, {"nearest", w.nearest},
                 {"tab", tab_name(w.tab)}};
  const GenerateSettings& g = s.gen;
  j["generate"] = {{"class", g.class_id},   {"seed", g.seed},         {"steps", g.steps},
                   {"sampler", g.sampler == 0 ? "ddpm" : "ddim"},    {"guidance", g.guidance},
                   {"images", g.images},    {"preview_every", g.preview_every},
                   {"mode", g.mode},        {"output_dir", g.output_dir}, {"graphs", g.graphs}};
  const ClassifySettings& c = s.cls;
  static const char* kSources[] = {"camera", "video", "images", "pipeline"};
  j["classify"] = {{"source", kSources[std::clamp(c.source, 0, 3)]},
                   {"camera", c.camera}, {"video", c.video}, {"images", c.images}, {"pipeline", c.pipeline},
                   {"loop", c.loop}, {"topk", c.topk}, {"mode", c.mode}};
  const CompareSettings& p = s.cmp;
  j["compare"] = {{"section", p.section == 0 ? "classify" : "generate"}, {"gain", p.gain},
                  {"mode_a", p.mode_a}, {"mode_b", p.mode_b}};
  const ModelsSettings& m = s.models;
  j["models"] = {{"kind", m.kind},     {"dit", m.path[0]}, {"vae", m.path[1]}, {"vit", m.path[2]},
                 {"mode", m.mode},     {"rules", m.rules}, {"budget", m.budget},
                 {"recent", {{"dit", m.recent[0]}, {"vae", m.recent[1]}, {"vit", m.recent[2]}}}};
  return j;
}

template <typename T>
void get(const json& j, const char* key, T& out) {
  if (!j.is_object()) return;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  try {
    out = it->get<T>();
  } catch (const std::exception&) {
    // A value of the wrong type keeps the default.
  }
}

Settings from_json(const json& j) {
  Settings s;
  if (j.contains("window")) {
    const json& w = j["window"];
    get(w, "width", s.window.width);
    get(w, "height", s.window.height);
    get(w, "x", s.window.x);
    get(w, "y", s.window.y);
    get(w, "panel_width", s.window.panel_width);
    get(w, "overlay", s.window.overlay);
    get(w, "messages", s.window.messages);
    get(w, "nearest", s.window.nearest);
    std::string tab;
    get(w, "tab", tab);
    parse_tab(tab, &s.window.tab);
    s.window.width = std::clamp(s.window.width, 640, 8192);
    s.window.height = std::clamp(s.window.height, 480, 8192);
    s.window.panel_width = std::clamp(s.window.panel_width, 260.0f, 900.0f);
  }
  if (j.contains("generate")) {
    const json& g = j["generate"];
    get(g, "class", s.gen.class_id);
    get(g, "seed", s.gen.seed);
    get(g, "steps", s.gen.steps);
    std::string sampler;
    get(g, "sampler", sampler);
    if (sampler == "ddpm") s.gen.sampler = 0;
    if (sampler == "ddim") s.gen.sampler = 1;
    get(g, "guidance", s.gen.guidance);
    get(g, "images", s.gen.images);
    get(g, "preview_every", s.gen.preview_every);
    get(g, "mode", s.gen.mode);
    get(g, "output_dir", s.gen.output_dir);
    get(g, "graphs", s.gen.graphs);
    s.gen.steps = std::clamp(s.gen.steps, 1, 1000);
    s.gen.images = std::clamp(s.gen.images, 1, 16);
    s.gen.preview_every = std::clamp(s.gen.preview_every, 1, 100);
  }
  if (j.contains("classify")) {
    const json& c = j["classify"];
    std::string source;
    get(c, "source", source);
    static const char* kSources[] = {"camera", "video", "images", "pipeline"};
    for (int i = 0; i < 4; ++i)
      if (source == kSources[i]) s.cls.source = i;
    get(c, "camera", s.cls.camera);
    get(c, "video", s.cls.video);
    get(c, "images", s.cls.images);
    get(c, "pipeline", s.cls.pipeline);
    get(c, "loop", s.cls.loop);
    get(c, "topk", s.cls.topk);
    get(c, "mode", s.cls.mode);
    s.cls.topk = std::clamp(s.cls.topk, 1, 10);
  }
  if (j.contains("compare")) {
    const json& p = j["compare"];
    std::string section;
    get(p, "section", section);
    s.cmp.section = section == "generate" ? 1 : 0;
    get(p, "gain", s.cmp.gain);
    get(p, "mode_a", s.cmp.mode_a);
    get(p, "mode_b", s.cmp.mode_b);
  }
  if (j.contains("models")) {
    const json& m = j["models"];
    get(m, "kind", s.models.kind);
    s.models.kind = std::clamp(s.models.kind, 0, 2);
    get(m, "dit", s.models.path[0]);
    get(m, "vae", s.models.path[1]);
    get(m, "vit", s.models.path[2]);
    get(m, "mode", s.models.mode);
    get(m, "rules", s.models.rules);
    get(m, "budget", s.models.budget);
    if (m.contains("recent")) {
      get(m["recent"], "dit", s.models.recent[0]);
      get(m["recent"], "vae", s.models.recent[1]);
      get(m["recent"], "vit", s.models.recent[2]);
    }
  }
  return s;
}

}  // namespace

Settings load_settings(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (!in) return Settings{};
  try {
    return from_json(json::parse(in));
  } catch (const std::exception& e) {
    if (error) *error = path + ": unreadable settings (" + e.what() + "); using defaults";
    return Settings{};
  }
}

bool save_settings(const std::string& path, const Settings& s, std::string* error) {
  try {
    fs::create_directories(fs::path(path).parent_path());
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp);
      if (!out) throw std::runtime_error("cannot write " + tmp);
      out << to_json(s).dump(2) << "\n";
      if (!out) throw std::runtime_error("write failed: " + tmp);
    }
    fs::rename(tmp, path);
    return true;
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return false;
  }
}

void remember_recent(std::vector<std::string>& list, const std::string& path) {
  if (path.empty()) return;
  list.erase(std::remove(list.begin(), list.end(), path), list.end());
  list.insert(list.begin(), path);
  if (list.size() > 8) list.resize(8);
}

}  // namespace studio
