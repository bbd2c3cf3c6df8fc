// The studio's main loop: window and GL context, ImGui setup, the per-frame sequence (poll tasks → script
// step → shortcuts → draw → render → screenshot → swap), frame pacing, and orderly shutdown (tasks
// stopped, settings and imgui.ini saved, GL objects released while the context still exists).
#include <GLFW/glfw3.h>
#include <imgui.h>
#include <imgui_impl_glfw.h>
#include <imgui_impl_opengl3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <time.h>

#include "app/studio/script.h"
#include "app/studio/studio.h"
#include "engine/core/error.h"
#include "engine/io/labels.h"

namespace studio {

namespace fs = std::filesystem;

const char* level_name(Message::Level l) {
  switch (l) {
    case Message::Level::Info: return "info";
    case Message::Level::Warning: return "warning";
    case Message::Level::Error: return "error";
  }
  return "?";
}

void message(App& app, Message::Level level, const std::string& text) {
  app.messages.push_back({level, text, app.now});
  if (app.messages.size() > 500) app.messages.erase(app.messages.begin());
  std::fprintf(stderr, "blr-studio: %s: %s\n", level_name(level), text.c_str());
  if (level != Message::Level::Info) app.settings.window.messages = true;
}

void mark_dirty(App& app) { app.settings_dirty = true; }

bool any_busy(const App& app) {
  return app.gen->busy() || app.cls->active() || app.session->busy();
}

std::vector<blr::ModelInfo> models_of(const App& app, blr::ModelKind kind) {
  std::vector<blr::ModelInfo> out;
  for (const auto& m : app.models)
    if (m.kind == kind) out.push_back(m);
  return out;
}

const blr::ModelInfo* find_model(const App& app, int id) {
  for (const auto& m : app.models)
    if (m.id == id) return &m;
  return nullptr;
}

int resolve_model(const App& app, blr::ModelKind kind, const std::string& mode) {
  // The most recently loaded variant with that mode; else the most recent of the kind.
  const auto all = models_of(app, kind);
  for (auto it = all.rbegin(); it != all.rend(); ++it)
    if (it->mode == mode) return it->id;
  return all.empty() ? -1 : all.back().id;
}

const std::vector<std::string>& class_names(const App& app) { return app.names; }

void refresh_models(App& app) {
  app.models = app.session->models();
  const int id = resolve_model(app, blr::ModelKind::Dit, app.settings.gen.mode);
  if (id == app.names_for) return;
  app.names_for = id;
  app.names.clear();
  if (const blr::ModelInfo* info = find_model(app, id)) {
    if (!info->labels.empty()) {
      app.names = info->labels;
    } else {
      for (int64_t i = 0; i < info->num_classes; ++i) app.names.push_back(blr::cat("class ", i));
    }
    return;
  }
  try {
    app.names = blr::imagenet_labels();
  } catch (const std::exception&) {
  }
}

std::string class_label(const std::vector<std::string>& names, int cls) {
  if (cls >= 0 && cls < static_cast<int>(names.size())) return names[static_cast<size_t>(cls)];
  return blr::cat("class ", cls);
}

std::string output_dir(const App& app) {
  if (!app.settings.gen.output_dir.empty()) return app.settings.gen.output_dir;
  if (const char* home = std::getenv("HOME"); home && *home) return (fs::path(home) / "Pictures" / "blr-studio").string();
  return (fs::current_path() / "blr-studio-output").string();
}

blr::Tensor grid_of(const blr::Tensor& rgba) {
  if (!rgba.defined()) return {};
  if (rgba.ndim() == 3) return rgba;
  const int64_t B = rgba.dim(0), H = rgba.dim(1), W = rgba.dim(2);
  if (B == 1) return rgba.select(0, 0);
  const int64_t cols = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(B))));
  const int64_t rows = (B + cols - 1) / cols;
  const int64_t gap = std::max<int64_t>(2, W / 64);
  const int64_t GW = cols * W + (cols - 1) * gap, GH = rows * H + (rows - 1) * gap;
  auto holder = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(GW * GH * 4), 0);
  for (size_t i = 3; i < holder->size(); i += 4) (*holder)[i] = 255;
  const blr::Tensor src = rgba.is_contiguous() ? rgba : rgba.clone();
  const uint8_t* s = src.data_as<const uint8_t>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t ox = (b % cols) * (W + gap), oy = (b / cols) * (H + gap);
    for (int64_t y = 0; y < H; ++y)
      std::copy(s + ((b * H + y) * W) * 4, s + ((b * H + y) * W + W) * 4, holder->data() + ((oy + y) * GW + ox) * 4);
  }
  return blr::Tensor::from_blob(holder->data(), {GH, GW, 4}, blr::DType::U8, blr::Device::CPU, holder);
}

void upload_rgba(App& app, GlTexture& tex, const blr::Tensor& rgba, const blr::Tensor& device_rgba) {
  if (device_rgba.defined() && app.interop.enabled() && app.interop.upload(tex, device_rgba)) return;
  if (!rgba.defined()) return;
  const blr::Tensor img = grid_of(rgba);
  const blr::Tensor c = img.is_contiguous() ? img : img.clone();
  tex.upload(c.data_as<const uint8_t>(), static_cast<int>(c.dim(1)), static_cast<int>(c.dim(0)), 4);
}

namespace {

double seconds_now() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void push_sample(std::deque<float>& d, double ms) {
  d.push_back(static_cast<float>(ms));
  if (d.size() > 300) d.pop_front();
}

void glfw_error(int code, const char* text) { std::fprintf(stderr, "blr-studio: GLFW error %d: %s\n", code, text); }

void release_gl(App& app) {
  app.interop.release();
  app.shaders.release();
  app.gen_texture.release();
  app.preview_texture.release();
  app.frame_texture.release();
  app.cmp_a.release();
  app.cmp_b.release();
  app.gen_target.release();
  app.cls_target.release();
  for (auto& t : app.cmp_targets) t.release();
  for (auto& h : app.history) h.texture.release();
}

void draw_menu(App& app) {
  if (!ImGui::BeginMenuBar()) return;
  if (ImGui::BeginMenu("File")) {
    if (ImGui::MenuItem("Save image", "Ctrl+S")) do_action(app, "generate.save");
    ImGui::Separator();
    if (ImGui::MenuItem("Quit", "Ctrl+Q")) app.quit = true;
    ImGui::EndMenu();
  }
  if (ImGui::BeginMenu("View")) {
    if (ImGui::MenuItem("Overlay", "F1", app.settings.window.overlay)) do_action(app, "view.overlay");
    if (ImGui::MenuItem("Messages", "F3", app.settings.window.messages)) do_action(app, "view.messages");
    if (ImGui::MenuItem("Nearest-pixel filtering", "N", app.settings.window.nearest)) do_action(app, "view.filter");
    if (ImGui::MenuItem("Fit image", "R")) do_action(app, "view.fit");
    ImGui::Separator();
    if (ImGui::MenuItem("Reload shaders")) do_action(app, "shaders.reload");
    ImGui::EndMenu();
  }
  if (ImGui::BeginMenu("Help")) {
    if (ImGui::MenuItem("Keyboard shortcuts", "F2")) app.show_help = true;
    ImGui::EndMenu();
  }
  // Right side: backend badge.
  const blr::BackendInfo& b = app.session->backend();
  const std::string badge = b.gpu ? blr::cat("GPU  ", b.device) : std::string("CPU fallback");
  const float w = ImGui::CalcTextSize(badge.c_str()).x + 24;
  ImGui::SetCursorPosX(ImGui::GetWindowWidth() - w - 8);
  ImGui::PushStyleColor(ImGuiCol_Text, b.gpu ? ImVec4(0.45f, 0.85f, 0.78f, 1) : ImVec4(0.95f, 0.72f, 0.35f, 1));
  ImGui::TextUnformatted(badge.c_str());
  ImGui::PopStyleColor();
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", b.gpu ? "CUDA backend" : b.reason.c_str());
  ImGui::EndMenuBar();
}

void draw_frame(App& app) {
  const ImGuiViewport* vp = ImGui::GetMainViewport();
  ImGui::SetNextWindowPos(vp->WorkPos);
  ImGui::SetNextWindowSize(vp->WorkSize);
  ImGui::PushStyleVar(ImGuiStyleVar_WindowRounding, 0.0f);
  ImGui::PushStyleVar(ImGuiStyleVar_WindowPadding, ImVec2(8, 6));
  const ImGuiWindowFlags flags = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoResize |
                                 ImGuiWindowFlags_NoSavedSettings | ImGuiWindowFlags_MenuBar |
                                 ImGuiWindowFlags_NoBringToFrontOnFocus;
  ImGui::Begin("##root", nullptr, flags);
  ImGui::PopStyleVar(2);
  draw_menu(app);

  const float status_h = ImGui::GetFrameHeight() + 4;
  const float messages_h = app.settings.window.messages ? 118.0f : 0.0f;
  if (ImGui::BeginTabBar("##tabs", ImGuiTabBarFlags_None)) {
    for (int i = 0; i < kTabCount; ++i) {
      const Tab t = static_cast<Tab>(i);
      const ImGuiTabItemFlags tf = (app.switch_tab && app.tab == t) ? ImGuiTabItemFlags_SetSelected : 0;
      const std::string label = blr::cat("  ", tab_name(t), "  ");
      if (ImGui::BeginTabItem(label.c_str(), nullptr, tf)) {
        if (!app.switch_tab && app.tab != t) {
          app.tab = t;
          app.settings.window.tab = t;
          mark_dirty(app);
        }
        ImVec2 avail = ImGui::GetContentRegionAvail();
        avail.y -= status_h + messages_h;
        if (app.tab == t) {
          switch (t) {
            case Tab::Generate: draw_generate(app, avail); break;
            case Tab::Classify: draw_classify(app, avail); break;
            case Tab::Compare: draw_compare(app, avail); break;
            case Tab::Models: draw_models(app, avail); break;
          }
        } else {
          ImGui::Dummy(avail);
        }
        ImGui::EndTabItem();
      }
    }
    ImGui::EndTabBar();
  }
  app.switch_tab = false;
  if (app.settings.window.messages) draw_messages(app);
  draw_status_bar(app);
  ImGui::End();

  if (app.settings.window.overlay) draw_overlay(app);
  draw_help(app);
}

void load_initial_models(App& app) {
  const Options& o = app.opts;
  auto submit = [&](blr::ModelKind kind, const std::string& path, const std::string& mode) {
    blr::LoadRequest r;
    r.kind = kind;
    r.path = path;
    r.mode = mode;
    app.session->submit(r);
  };
  bool any = false;
  if (!o.dit.empty()) {
    submit(blr::ModelKind::Dit, o.dit, "dense");
    if (!o.mode.empty() && o.mode != "dense") submit(blr::ModelKind::Dit, o.dit, o.mode);
    app.settings.models.path[0] = o.dit;
    any = true;
  }
  if (!o.vae.empty()) {
    submit(blr::ModelKind::Vae, o.vae, "dense");
    app.settings.models.path[1] = o.vae;
    any = true;
  }
  if (!o.vit.empty()) {
    submit(blr::ModelKind::Vit, o.vit, "dense");
    if (!o.mode.empty() && o.mode != "dense") submit(blr::ModelKind::Vit, o.vit, o.mode);
    app.settings.models.path[2] = o.vit;
    any = true;
  }
  if (any || o.headless) return;
  // The built-in demo models (assets/models/, docs/MODELS.md): with no model arguments the studio loads
  // whichever are installed — each dense file and its BLR variants, so Compare works at once — and the
  // demo video as the Classify source.
  const fs::path dir = fs::path(blr::assets_dir()) / "models";
  struct Demo {
    blr::ModelKind kind;
    const char* file;
    const char* label;
  };
  const Demo demos[] = {{blr::ModelKind::Dit, "demo_dit.safetensors", "dense"},
                        {blr::ModelKind::Dit, "demo_dit_blast.safetensors", "blast"},
                        {blr::ModelKind::Dit, "demo_dit_monarch.safetensors", "monarch"},
                        {blr::ModelKind::Vit, "demo_vit.safetensors", "dense"},
                        {blr::ModelKind::Vit, "demo_vit_blast.safetensors", "blast"},
                        {blr::ModelKind::Vit, "demo_vit_monarch.safetensors", "monarch"},
                        {blr::ModelKind::Vit, "demo_vit_blast_trained.safetensors", "blast-trained"},
                        {blr::ModelKind::Vae, "demo_vae.safetensors", "dense"}};
  std::string loaded;
  for (const Demo& d : demos) {
    std::error_code ec;
    const fs::path p = dir / d.file;
    if (!fs::exists(p, ec)) continue;
    blr::LoadRequest r;
    r.kind = d.kind;
    r.path = p.string();
    r.label = d.label;
    app.session->submit(r);
    loaded += (loaded.empty() ? "" : ", ") + p.filename().string();
  }
  if (!loaded.empty()) {
    message(app, Message::Level::Info, blr::cat("No models given: loading the demo models (", loaded, ") from ", dir.string()));
    const fs::path video = fs::path(blr::assets_dir()) / "demo_video.avi";
    std::error_code ec;
    if (app.settings.cls.video.empty() && fs::exists(video, ec)) {
      app.settings.cls.video = video.string();
      app.settings.cls.source = 1;
      app.settings.cls.loop = true;
    }
  } else {
    message(app, Message::Level::Info,
            "No models loaded yet: open the Models tab (Ctrl+4) to load a DiT, VAE or ViT checkpoint.");
  }
}

}  // namespace

int run_studio(const Options& opts) {
  App app;
  app.opts = opts;
  app.start_time = seconds_now();
  app.config_dir = opts.config_dir.empty() ? default_config_dir() : opts.config_dir;
  std::error_code ec;
  fs::create_directories(app.config_dir, ec);
  app.settings_path = (fs::path(app.config_dir) / "settings.json").string();
  app.ini_path = (fs::path(app.config_dir) / "imgui.ini").string();
  std::string settings_error;
  app.settings = load_settings(app.settings_path, &settings_error);
  if (!settings_error.empty()) message(app, Message::Level::Warning, settings_error);
  app.tab = app.settings.window.tab;
  app.switch_tab = true;
  if (!opts.budget.empty()) app.settings.models.budget = opts.budget;

  ScriptRunner script;
  if (opts.headless) {
    std::string error;
    if (!script.load(opts.script, opts.screenshot_dir, &error)) {
      std::fprintf(stderr, "blr-studio: %s\n", error.c_str());
      return 2;
    }
  }

  glfwSetErrorCallback(glfw_error);
  if (!glfwInit()) {
    std::fprintf(stderr, "blr-studio: cannot initialise GLFW (no display? run under xvfb-run for headless use)\n");
    return 1;
  }
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
  glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
  glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GLFW_TRUE);
  const int w = opts.width > 0 ? opts.width : app.settings.window.width;
  const int h = opts.height > 0 ? opts.height : app.settings.window.height;
  app.window = glfwCreateWindow(w, h, "BLR Studio", nullptr, nullptr);
  if (!app.window) {
    std::fprintf(stderr, "blr-studio: cannot open an OpenGL 3.3 window\n");
    glfwTerminate();
    return 1;
  }
  if (!opts.headless && app.settings.window.x >= 0 && app.settings.window.y >= 0)
    glfwSetWindowPos(app.window, app.settings.window.x, app.settings.window.y);
  glfwMakeContextCurrent(app.window);
  glfwSwapInterval(1);

  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = app.ini_path.c_str();
  float xscale = 1.0f, yscale = 1.0f;
  glfwGetWindowContentScale(app.window, &xscale, &yscale);
  apply_theme();
  app.fonts = load_fonts(16.0f * std::max(1.0f, xscale), app.opts.builtin_font);
  ImGui_ImplGlfw_InitForOpenGL(app.window, true);
  ImGui_ImplOpenGL3_Init("#version 330 core");
  app.gl_vendor = gl_vendor();
  app.gl_renderer = gl_renderer();
  app.gl_version = gl_version();

  app.shaders.load();
  for (const auto& e : app.shaders.errors) message(app, Message::Level::Error, "shader: " + e);

  int exit_code = 0;
  try {
    blr::SessionOptions so;
    so.force_cpu = opts.cpu;
    if (!app.settings.models.budget.empty()) {
      try {
        so.budget = blr::parse_bytes(app.settings.models.budget);
      } catch (const std::exception& e) {
        message(app, Message::Level::Warning, blr::cat("memory budget '", app.settings.models.budget, "': ", e.what()));
      }
    }
    app.session = std::make_unique<blr::Session>(so);
    app.gen = std::make_unique<blr::GenerationTask>(*app.session);
    app.cls = std::make_unique<blr::ClassifyTask>(*app.session);
    app.interop.init(app.session->backend().gpu, opts.no_interop);
    if (!app.session->backend().gpu)
      message(app, Message::Level::Info, blr::cat("Running on the CPU backend: ", app.session->backend().reason));
    register_actions(app);
    register_fields(app);
    load_initial_models(app);

    double last = seconds_now();
    while (!glfwWindowShouldClose(app.window) && !app.quit) {
      const double frame_start = seconds_now();
      const double cpu_start = thread_cpu_seconds();
      const bool busy = any_busy(app);
      // Idle and interactive: sleep until input (or a slow tick) instead of spinning.
      if (!opts.headless && !busy && ImGui::GetIO().MouseDelta.x == 0 && ImGui::GetIO().MouseDelta.y == 0)
        glfwWaitEventsTimeout(0.1);
      else
        glfwPollEvents();
      app.now = seconds_now() - app.start_time;
      if (opts.headless) script.before_new_frame(app);
      const double build_start = seconds_now();
      ImGui_ImplOpenGL3_NewFrame();
      ImGui_ImplGlfw_NewFrame();
      ImGui::NewFrame();
      sync_tasks(app);
      if (opts.headless) script.before_frame(app);
      handle_shortcuts(app);
      draw_frame(app);
      ImGui::Render();
      const double built = seconds_now();
      push_sample(app.ui.build_ms, (built - build_start) * 1000.0);
      int fw = 0, fh = 0;
      glfwGetFramebufferSize(app.window, &fw, &fh);
      glViewport(0, 0, fw, fh);
      glClearColor(0.09f, 0.1f, 0.12f, 1.0f);
      glClear(GL_COLOR_BUFFER_BIT);
      ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
      if (opts.headless) script.after_render(app, fw, fh);
      glfwSwapBuffers(app.window);
      const double swapped = seconds_now();
      push_sample(app.ui.render_ms, (swapped - built) * 1000.0);
      push_sample(app.ui.cpu_ms, (thread_cpu_seconds() - cpu_start) * 1000.0);

      // Frame pacing: at most ~60 frames/s even where swap does not wait for vsync (Xvfb).
      const double spent = seconds_now() - frame_start;
      if (spent < 1.0 / 60.0) std::this_thread::sleep_for(std::chrono::duration<double>(1.0 / 60.0 - spent));
      const double t = seconds_now();
      const float ms = static_cast<float>((t - last) * 1000.0);
      last = t;
      push_sample(app.ui.frame_ms, ms);
      ++app.ui.frames;
      if (app.gen->busy()) {
        app.ui.busy_time_s += ms / 1000.0;
        ++app.ui.busy_frames;
        app.ui.worst_busy_frame_ms = std::max(app.ui.worst_busy_frame_ms, static_cast<double>(ms));
      }
      if (app.cls->active()) {
        app.ui.classify_time_s += ms / 1000.0;
        ++app.ui.classify_frames;
      }
      if (app.settings_dirty && app.now - app.settings_saved_at > 2.0) {
        std::string err;
        save_settings(app.settings_path, app.settings, &err);
        app.settings_dirty = false;
        app.settings_saved_at = app.now;
      }
      if (opts.headless && script.finished()) break;
    }
    if (opts.headless) exit_code = script.exit_code(app);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "blr-studio: fatal: %s\n", e.what());
    exit_code = 1;
  }

  // Shutdown: stop workers, remember window and settings, release GL objects with the context alive.
  if (app.cls) app.cls->stop();
  if (app.gen) app.gen->cancel();
  if (!opts.width && !opts.height) {
    glfwGetWindowSize(app.window, &app.settings.window.width, &app.settings.window.height);
    if (!opts.headless) glfwGetWindowPos(app.window, &app.settings.window.x, &app.settings.window.y);
  }
  std::string err;
  if (!save_settings(app.settings_path, app.settings, &err)) std::fprintf(stderr, "blr-studio: %s\n", err.c_str());
  ImGui::SaveIniSettingsToDisk(app.ini_path.c_str());
  app.gen.reset();
  app.cls.reset();
  release_gl(app);
  ImGui_ImplOpenGL3_Shutdown();
  ImGui_ImplGlfw_Shutdown();
  ImGui::DestroyContext();
  glfwDestroyWindow(app.window);
  glfwTerminate();
  app.session.reset();
  return exit_code;
}

}  // namespace studio
