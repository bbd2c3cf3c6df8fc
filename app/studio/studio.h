// blr-studio's state and the functions that draw and drive it. Dear ImGui immediate-mode style: the
// state is plain structs; each frame the UI thread polls the engine tasks (snapshots), uploads what is
// new to textures, and draws. The UI thread never runs a model: loading/compression (Session's job
// thread), generation (GenerationTask) and classification (ClassifyTask) all run on their own threads.
//
// Every button and field the user can touch is also reachable by name (actions and fields below), which
// is what keyboard shortcuts and the headless script runner (script.h) use — so tests drive exactly the
// code paths a user does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "app/studio/gl.h"
#include "app/studio/image_view.h"
#include "app/studio/interop.h"
#include "app/studio/settings.h"
#include "engine/runtime/classify_task.h"
#include "engine/runtime/generation_task.h"
#include "engine/runtime/session.h"

struct GLFWwindow;
struct ImFont;

namespace studio {

struct Options {
  bool headless = false;
  std::string script, screenshot_dir;
  std::string config_dir;  // empty: default_config_dir()
  std::string dit, vae, vit;
  std::string mode;        // also load a BLR variant of the given DiT/ViT in this mode
  std::string budget;
  bool cpu = false;
  bool no_interop = false;
  bool builtin_font = false;  // what a machine without TrueType fonts gets (tests the ASCII fallbacks)
  int width = 0, height = 0;  // 0: from settings
};

struct Message {
  enum class Level { Info, Warning, Error } level = Level::Info;
  std::string text;
  double time = 0;  // seconds since start
};
const char* level_name(Message::Level l);

// One finished generation the history strip shows; clicking it restores its parameters.
struct HistoryEntry {
  uint64_t run = 0;
  GenerateSettings params;
  std::string dit_name, variant, decoder;
  blr::Tensor rgba;  // host u8 [B, H, W, 4]
  GlTexture texture; // the grid of its images
  double mean_step_ms = 0, total_ms = 0;
  std::vector<double> step_ms;
  std::string saved_path;
};

struct UiStats {
  std::deque<float> frame_ms;     // recent frames (oldest first), at most 300: wall time frame to frame
  std::deque<float> build_ms;     // ... of which building the UI (polling tasks, ImGui, image views)
  std::deque<float> render_ms;    // ... rendering ImGui's draw data and swapping buffers
  std::deque<float> cpu_ms;       // UI thread CPU time per frame (the thread's own cost, whatever the load)
  int64_t frames = 0;
  double busy_time_s = 0;         // wall time of frames drawn while a generation ran
  int64_t busy_frames = 0;
  double classify_time_s = 0;     // ... while classification ran
  int64_t classify_frames = 0;
  double worst_busy_frame_ms = 0;
};

struct Fonts {
  ImFont* regular = nullptr;
  ImFont* large = nullptr;  // headline numbers
  ImFont* mono = nullptr;
  std::string source;       // which file, or "ImGui default"
};

struct App {
  Options opts;
  GLFWwindow* window = nullptr;
  std::string config_dir, settings_path, ini_path;
  Settings settings;
  bool settings_dirty = false;
  double settings_saved_at = 0;
  Fonts fonts;

  std::unique_ptr<blr::Session> session;
  std::unique_ptr<blr::GenerationTask> gen;
  std::unique_ptr<blr::ClassifyTask> cls;
  Shaders shaders;
  Interop interop;

  // Generate
  GlTexture gen_texture, preview_texture;
  ViewState gen_view;
  RenderTarget gen_target;
  uint64_t seen_gen_run = 0, seen_preview = 0;
  int gen_outputs_seen = 0;
  std::string gen_filter;
  std::vector<int> filtered;  // class picker: indices matching the filter (cached)
  std::string filter_text;
  int filter_names = -3;
  size_t filter_size = 0;
  std::vector<HistoryEntry> history;
  int history_selected = -1;
  bool showing_preview = false;
  bool gen_compare_job = false;     // the running/last job came from the Compare tab
  std::vector<std::string> saved;   // PNGs written this session

  // Classify (the Compare tab's classification uses the same task)
  GlTexture frame_texture;
  ViewState cls_view;
  RenderTarget cls_target;
  uint64_t seen_frame = 0, seen_cls_run = 0;
  blr::ClassifyStatus::State last_cls_state = blr::ClassifyStatus::State::Idle;
  bool cls_compare_job = false;

  // Compare (generation)
  GlTexture cmp_a, cmp_b;
  ViewState cmp_view;
  RenderTarget cmp_targets[3];
  uint64_t seen_cmp_run = 0;
  std::optional<blr::GenerationStatus> cmp_result;

  // Snapshots refreshed once per frame by sync_tasks (the panels read these, not the session).
  std::vector<blr::ModelInfo> models;
  std::vector<std::string> names;  // class names of the DiT in use (else ImageNet)
  int names_for = -2;              // which DiT id `names` belongs to

  // Models
  std::optional<blr::Session::Inspection> inspection;
  std::string inspection_error;
  int selected_model = -1;
  std::map<int, std::string> save_paths;  // "Save compressed" target per model
  uint64_t seen_job = 0;

  // Overlay / chrome
  Tab tab = Tab::Generate;
  bool switch_tab = false;  // select `tab` on the next frame
  bool show_help = false;
  std::vector<Message> messages;
  UiStats ui;
  double start_time = 0;
  double now = 0;
  bool quit = false;
  ImVec2 image_rect_min{0, 0}, image_rect_max{0, 0};  // main image region of the visible tab (screen)
  ImVec2 image_visible_min{0, 0}, image_visible_max{0, 0};  // the part of it showing image pixels
  std::string gl_vendor, gl_renderer, gl_version;

  // Named actions and fields (buttons, shortcuts, scripts).
  std::map<std::string, std::function<void(App&, const std::vector<std::string>&)>> actions;
  struct Field {
    std::function<nlohmann::json(const App&)> get;
    std::function<void(App&, const std::string&)> set;  // throws blr::InputError for a bad value
  };
  std::map<std::string, Field> fields;
};

// app.cpp
int run_studio(const Options& opts);
void message(App& app, Message::Level level, const std::string& text);
void mark_dirty(App& app);
bool any_busy(const App& app);

// actions.cpp: the registry and what the buttons do.
void register_actions(App& app);
void register_fields(App& app);
void do_action(App& app, const std::string& name, const std::vector<std::string>& args = {});
void set_field(App& app, const std::string& name, const std::string& value);

// Helpers shared by the panels.
int resolve_model(const App& app, blr::ModelKind kind, const std::string& mode);  // -1 if none loaded
std::vector<blr::ModelInfo> models_of(const App& app, blr::ModelKind kind);
const blr::ModelInfo* find_model(const App& app, int id);  // null when not loaded
const std::vector<std::string>& class_names(const App& app);  // of the DiT in use, else ImageNet
void refresh_models(App& app);  // re-reads the session's models and the class names
std::string class_label(const std::vector<std::string>& names, int cls);
std::string output_dir(const App& app);
void upload_rgba(App& app, GlTexture& tex, const blr::Tensor& rgba, const blr::Tensor& device_rgba = {});
blr::Tensor grid_of(const blr::Tensor& rgba);  // [B, H, W, 4] -> one image

// Panels (panel_*.cpp) and chrome (chrome.cpp).
void draw_generate(App& app, ImVec2 size);
void draw_classify(App& app, ImVec2 size);
void draw_compare(App& app, ImVec2 size);
void draw_models(App& app, ImVec2 size);
void draw_overlay(App& app);
void draw_help(App& app);
void draw_messages(App& app);
void draw_status_bar(App& app);
void handle_shortcuts(App& app);
void sync_tasks(App& app);  // poll tasks, upload new images, turn events into messages

// Theme and fonts (theme.cpp).
void apply_theme();
Fonts load_fonts(float size, bool builtin_only = false);
ImU32 accent_color(float alpha = 1.0f);
void section_header(const char* text);
void help_marker(const char* text);
bool primary_button(const char* label, ImVec2 size = ImVec2(0, 0));

// State dump (state.cpp): everything a test or a bug report needs.
nlohmann::json state_json(const App& app, bool with_frames);

}  // namespace studio
