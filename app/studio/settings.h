// What the studio remembers between runs: window, panel and view state plus the last-used settings of
// every tab, as a small JSON file in the user's config folder ($XDG_CONFIG_HOME/blr-studio, else
// ~/.config/blr-studio; --config-dir overrides). ImGui's own imgui.ini (window/table layout) lives next
// to it. Unknown or missing keys fall back to defaults, so old files keep working.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace studio {

enum class Tab { Generate = 0, Classify, Compare, Models };
constexpr int kTabCount = 4;
const char* tab_name(Tab t);               // "Generate", ...
bool parse_tab(const std::string& name, Tab* out);  // any case

struct GenerateSettings {
  int class_id = 207;
  uint64_t seed = 0;
  int steps = 50;
  int sampler = 1;  // 0 DDPM, 1 DDIM
  float guidance = 4.0f;
  int images = 1;
  int preview_every = 5;
  std::string mode = "dense";  // which loaded DiT variant (its mode)
  std::string output_dir;      // empty: ~/Pictures/blr-studio (or ./blr-studio-output)
  bool graphs = true;
};

struct ClassifySettings {
  int source = 0;  // 0 camera, 1 video, 2 images, 3 pipeline
  std::string camera = "0";
  std::string video;
  std::string images;
  std::string pipeline =
      "nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! nvvidconv ! "
      "video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1 max-buffers=1";
  bool loop = false;
  int topk = 5;
  std::string mode = "dense";
};

struct CompareSettings {
  int section = 0;  // 0 classify, 1 generate
  float gain = 4.0f;
  std::string mode_a = "dense";
  std::string mode_b = "blast";
};

struct ModelsSettings {
  int kind = 0;  // 0 DiT, 1 VAE, 2 ViT
  std::string path[3];
  std::string mode = "dense";
  std::string rules;
  std::string budget;  // "" = none, e.g. "7.5GiB"
  std::vector<std::string> recent[3];
};

struct WindowSettings {
  int width = 1480, height = 920;
  int x = -1, y = -1;
  float panel_width = 370.0f;
  bool overlay = false;
  bool messages = true;
  bool nearest = true;
  Tab tab = Tab::Generate;
};

struct Settings {
  WindowSettings window;
  GenerateSettings gen;
  ClassifySettings cls;
  CompareSettings cmp;
  ModelsSettings models;
};

// $XDG_CONFIG_HOME/blr-studio or ~/.config/blr-studio (created when missing).
std::string default_config_dir();
// Reads `path`; missing file -> defaults. A malformed file -> defaults and `*error` set.
Settings load_settings(const std::string& path, std::string* error);
// Writes atomically (temporary file + rename). Returns false and sets *error on failure.
bool save_settings(const std::string& path, const Settings& s, std::string* error);
// Adds `path` to the front of a recent list (deduplicated, at most 8).
void remember_recent(std::vector<std::string>& list, const std::string& path);

}  // namespace studio
