// Everything around the tabs: the F1 overlay (device, memory per model and category, plots of step,
// frame and UI times, the CUDA-graphs toggle and what it measurably buys), the shortcut help, the
// message log, the status bar, and the keyboard shortcuts themselves.
#include <GLFW/glfw3.h>
#include <imgui.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cstdio>
#include <fstream>

#include "app/studio/widgets.h"
#include "engine/core/device.h"

namespace studio {

namespace {

size_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  size_t pages = 0, resident = 0;
  if (!(in >> pages >> resident)) return 0;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

struct Shortcut {
  const char* keys;
  const char* what;
};
const Shortcut kShortcuts[] = {
    {"Ctrl+Enter", "Generate (Generate tab) / generate both (Compare, generation)"},
    {"Esc", "Cancel the generation; stop classification"},
    {"Ctrl+S", "Save the selected image as PNG (parameters inside)"},
    {"Space", "Start / stop classification (Classify, Compare)"},
    {"Ctrl+1 … Ctrl+4", "Generate, Classify, Compare, Models"},
    {"F1", "Overlay: device, memory, timings"},
    {"F2", "This help"},
    {"F3", "Message log"},
    {"D", "New random seed"},
    {"R", "Fit the image (double-click does the same)"},
    {"N", "Nearest / linear filtering of generated images"},
    {"Mouse wheel, drag", "Zoom around the cursor, pan"},
    {"Ctrl+Q", "Quit"},
};

}  // namespace

void draw_overlay(App& app) {
  const ImGuiViewport* vp = ImGui::GetMainViewport();
  ImGui::SetNextWindowPos(ImVec2(vp->WorkPos.x + vp->WorkSize.x - 18, vp->WorkPos.y + 96), ImGuiCond_Always, ImVec2(1, 0));
  ImGui::SetNextWindowBgAlpha(0.9f);
  // A fixed width (auto-resize windows give "fill the width" items no width to fill).
  constexpr float kWidth = 400.0f, kInner = kWidth - 24.0f;
  ImGui::SetNextWindowSizeConstraints(ImVec2(kWidth, 0), ImVec2(kWidth, FLT_MAX));
  const ImGuiWindowFlags flags = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoFocusOnAppearing |
                                 ImGuiWindowFlags_NoNav | ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoSavedSettings |
                                 ImGuiWindowFlags_AlwaysAutoResize;
  ImGui::PushStyleColor(ImGuiCol_WindowBg, ImVec4(0.07f, 0.08f, 0.1f, 1.0f));
  ImGui::PushStyleVar(ImGuiStyleVar_WindowBorderSize, 1.0f);
  if (!ImGui::Begin("##overlay", nullptr, flags)) {
    ImGui::End();
    ImGui::PopStyleVar();
    ImGui::PopStyleColor();
    return;
  }
  const blr::BackendInfo& b = app.session->backend();
  ImGui::TextColored(b.gpu ? ImVec4(0.45f, 0.85f, 0.78f, 1) : ImVec4(0.95f, 0.72f, 0.35f, 1), "%s",
                     b.gpu ? "GPU" : "CPU fallback");
  ImGui::SameLine();
  ImGui::TextUnformatted(b.gpu ? b.device.c_str() : "reference backend (f32)");
  if (!b.gpu) {
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyle().Colors[ImGuiCol_TextDisabled]);
    ImGui::PushTextWrapPos(ImGui::GetCursorPosX() + kInner);
    ImGui::TextWrapped("%s", b.reason.c_str());
    ImGui::PopTextWrapPos();
    ImGui::PopStyleColor();
  }
  ImGui::PushTextWrapPos(ImGui::GetCursorPosX() + kInner);
  ImGui::TextDisabled("GL %s · images by %s", app.gl_renderer.c_str(), app.interop.reason().c_str());
  ImGui::PopTextWrapPos();

  ImGui::Separator();
  if (b.gpu) {
    const auto [free_b, total_b] = blr::device_memory_info();
    const size_t used = total_b - free_b;
    ImGui::Text("Device memory %s / %s", blr::format_bytes(used).c_str(), blr::format_bytes(total_b).c_str());
    ImGui::ProgressBar(total_b ? static_cast<float>(used) / static_cast<float>(total_b) : 0.0f, ImVec2(kInner, 6), "");
  } else {
    ImGui::Text("Host memory (process) %s", blr::format_bytes(resident_bytes()).c_str());
  }
  const auto budget = app.session->budget();
  ImGui::TextDisabled("Budget per model: %s", budget ? blr::format_bytes(*budget).c_str() : "none");
  const auto& models = app.models;
  if (!models.empty() && ImGui::BeginTable("##arenas", 5, ImGuiTableFlags_RowBg, ImVec2(kInner, 0))) {
    ImGui::TableSetupColumn("arena", ImGuiTableColumnFlags_WidthStretch);
    ImGui::TableSetupColumn("weights", ImGuiTableColumnFlags_WidthFixed, 68);
    ImGui::TableSetupColumn("activ.", ImGuiTableColumnFlags_WidthFixed, 68);
    ImGui::TableSetupColumn("other", ImGuiTableColumnFlags_WidthFixed, 60);
    ImGui::TableSetupColumn("peak", ImGuiTableColumnFlags_WidthFixed, 68);
    ImGui::TableHeadersRow();
    for (const auto& m : models) {
      const blr::MemoryReport& r = m.memory;
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::Text("%s %s", blr::model_kind_name(m.kind), m.mode.c_str());
      if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s\n%s", m.name.c_str(), r.summary().c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(blr::format_bytes(r.of(blr::MemCategory::Weights)).c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(blr::format_bytes(r.of(blr::MemCategory::Activations)).c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(blr::format_bytes(r.of(blr::MemCategory::Workspace) + r.of(blr::MemCategory::Graphs) +
                                               r.of(blr::MemCategory::Other))
                                 .c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(blr::format_bytes(r.high_water).c_str());
    }
    ImGui::EndTable();
  }

  ImGui::Separator();
  const std::vector<float> steps = app.gen->step_history();
  if (!steps.empty()) {
    const std::string label = blr::cat("step ", fmt_ms(steps.back()));
    ImGui::PlotLines("##steps", steps.data(), static_cast<int>(steps.size()), 0, label.c_str(), 0.0f, FLT_MAX, ImVec2(kInner, 40));
  } else {
    ImGui::TextDisabled("step times: no generation yet");
  }
  const blr::ClassifyStatus cs = app.cls->status();
  if (!cs.models.empty() && !cs.models.front().total_ms_history.empty()) {
    const auto& h = cs.models.front().total_ms_history;
    const std::string label = blr::cat("frame ", fmt_ms(h.back()), "  ·  ", static_cast<int>(cs.fps * 10) / 10.0, " fps");
    ImGui::PlotLines("##frames", h.data(), static_cast<int>(h.size()), 0, label.c_str(), 0.0f, FLT_MAX, ImVec2(kInner, 40));
  }
  std::vector<float> ui(app.ui.frame_ms.begin(), app.ui.frame_ms.end());
  if (!ui.empty()) {
    float sum = 0;
    for (float v : ui) sum += v;
    const float mean = sum / static_cast<float>(ui.size());
    float build = 0, render = 0;
    for (float v : app.ui.build_ms) build += v;
    for (float v : app.ui.render_ms) render += v;
    build /= static_cast<float>(std::max<size_t>(1, app.ui.build_ms.size()));
    render /= static_cast<float>(std::max<size_t>(1, app.ui.render_ms.size()));
    const std::string label = blr::cat("UI ", static_cast<int>(1000.0f / std::max(mean, 0.001f)), " fps  ·  build ",
                                       fmt_ms(build), ", draw ", fmt_ms(render));
    ImGui::PlotLines("##ui", ui.data(), static_cast<int>(ui.size()), 0, label.c_str(), 0.0f, 50.0f, ImVec2(kInner, 40));
  }
  if (app.ui.busy_frames > 0)
    ImGui::TextDisabled("UI while generating: %.0f fps (worst frame %s)",
                        static_cast<double>(app.ui.busy_frames) / std::max(app.ui.busy_time_s, 1e-6),
                        fmt_ms(app.ui.worst_busy_frame_ms).c_str());

  ImGui::Separator();
  if (!b.gpu) ImGui::BeginDisabled();
  if (ImGui::Checkbox("CUDA graphs", &app.settings.gen.graphs)) mark_dirty(app);
  if (!b.gpu) ImGui::EndDisabled();
  if (!b.gpu) {
    ImGui::SameLine();
    ImGui::TextDisabled("(GPU only)");
  } else {
    const auto effects = app.gen->graph_effects();
    bool any = false;
    for (const auto& [id, e] : effects) {
      const blr::ModelInfo* info = find_model(app, id);
      if (!info) continue;
      any = true;
      if (e.with_graphs_ms > 0 && e.without_graphs_ms > 0)
        ImGui::Text("%s: %s on, %s off (%.2fx)", info->mode.c_str(), fmt_ms(e.with_graphs_ms).c_str(),
                    fmt_ms(e.without_graphs_ms).c_str(), e.without_graphs_ms / e.with_graphs_ms);
      else
        ImGui::TextDisabled("%s: %s %s; toggle and generate again to compare", info->mode.c_str(),
                            fmt_ms(std::max(e.with_graphs_ms, e.without_graphs_ms)).c_str(),
                            e.with_graphs_ms > 0 ? "with graphs" : "without graphs");
    }
    if (!any) ImGui::TextDisabled("generate to measure");
  }
  ImGui::End();
  ImGui::PopStyleVar();
  ImGui::PopStyleColor();
}

void draw_help(App& app) {
  if (app.show_help && !ImGui::IsPopupOpen("Keyboard shortcuts")) ImGui::OpenPopup("Keyboard shortcuts");
  const ImGuiViewport* vp = ImGui::GetMainViewport();
  ImGui::SetNextWindowPos(ImVec2(vp->WorkPos.x + vp->WorkSize.x * 0.5f, vp->WorkPos.y + vp->WorkSize.y * 0.5f),
                          ImGuiCond_Always, ImVec2(0.5f, 0.5f));
  if (ImGui::BeginPopupModal("Keyboard shortcuts", nullptr, ImGuiWindowFlags_AlwaysAutoResize)) {
    if (ImGui::BeginTable("##keys", 2, ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit)) {
      for (const Shortcut& s : kShortcuts) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::PushFont(app.fonts.mono);
        ImGui::TextColored(ImVec4(0.45f, 0.85f, 0.78f, 1), "%s", glyphs(s.keys).c_str());
        ImGui::PopFont();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(s.what);
      }
      ImGui::EndTable();
    }
    ImGui::Spacing();
    ImGui::TextDisabled("Settings: %s", app.settings_path.c_str());
    if (ImGui::Button("Close", ImVec2(160, 0)) || !app.show_help) {
      app.show_help = false;
      ImGui::CloseCurrentPopup();
    }
    ImGui::EndPopup();
  }
}

void draw_messages(App& app) {
  ImGui::BeginChild("##messages", ImVec2(0, 110), false, ImGuiWindowFlags_AlwaysUseWindowPadding);
  ImGui::TextDisabled("MESSAGES");
  ImGui::SameLine();
  if (ImGui::SmallButton("clear")) app.messages.clear();
  ImGui::SameLine();
  if (ImGui::SmallButton("hide (F3)")) do_action(app, "view.messages");
  ImGui::BeginChild("##log", ImVec2(0, 0), false);
  const size_t first = app.messages.size() > 200 ? app.messages.size() - 200 : 0;
  for (size_t i = first; i < app.messages.size(); ++i) {
    const Message& m = app.messages[i];
    const ImVec4 col = m.level == Message::Level::Error     ? ImVec4(1.0f, 0.48f, 0.42f, 1)
                       : m.level == Message::Level::Warning ? ImVec4(1.0f, 0.78f, 0.4f, 1)
                                                            : ImGui::GetStyle().Colors[ImGuiCol_Text];
    ImGui::TextDisabled("%6.1fs", m.time);
    ImGui::SameLine();
    ImGui::PushStyleColor(ImGuiCol_Text, col);
    ImGui::TextWrapped("%s", m.text.c_str());
    ImGui::PopStyleColor();
  }
  if (ImGui::GetScrollY() >= ImGui::GetScrollMaxY() - 4) ImGui::SetScrollHereY(1.0f);
  ImGui::EndChild();
  ImGui::EndChild();
}

void draw_status_bar(App& app) {
  ImGui::Separator();
  const blr::GenerationStatus g = app.gen->status();
  const blr::ClassifyStatus c = app.cls->status();
  const blr::JobStatus j = app.session->job();
  std::string left;
  if (g.state == blr::GenerationStatus::State::Running)
    left = blr::cat("Generating · step ", g.step, "/", g.steps, " · ", fmt_ms(g.mean_step_ms), "/step");
  else if (c.state == blr::ClassifyStatus::State::Running)
    left = blr::cat("Classifying · ", static_cast<int>(c.fps * 10) / 10.0, " frames/s");
  else if (j.running)
    left = blr::cat(j.title, " · ", static_cast<int>(j.fraction * 100), "%");
  else if (!app.messages.empty())
    left = app.messages.back().text;
  else
    left = "Ready";
  ImGui::TextDisabled("%s", left.c_str());
  float sum = 0;
  for (float v : app.ui.frame_ms) sum += v;
  const float mean = app.ui.frame_ms.empty() ? 0 : sum / static_cast<float>(app.ui.frame_ms.size());
  const size_t n = app.models.size();
  const std::string right = blr::cat(n, n == 1 ? " model" : " models", "  ·  UI ",
                                     mean > 0 ? static_cast<int>(1000.0f / mean) : 0, " fps  ·  ",
                                     app.session->backend().gpu ? app.session->backend().device : std::string("CPU"),
                                     "  ·  F1 overlay  ·  F2 help");
  ImGui::SameLine();
  text_right(right.c_str());
}

void handle_shortcuts(App& app) {
  ImGuiIO& io = ImGui::GetIO();
  auto pressed = [](int key) { return ImGui::IsKeyPressed(key, false); };
  const bool typing = io.WantTextInput;
  try {
    if (pressed(GLFW_KEY_F1)) do_action(app, "view.overlay");
    if (pressed(GLFW_KEY_F2)) app.show_help = !app.show_help;
    if (pressed(GLFW_KEY_F3)) do_action(app, "view.messages");
    if (io.KeyCtrl) {
      for (int i = 0; i < kTabCount; ++i)
        if (pressed(GLFW_KEY_1 + i)) do_action(app, "tab", {tab_name(static_cast<Tab>(i))});
      if (pressed(GLFW_KEY_ENTER) || pressed(GLFW_KEY_KP_ENTER)) {
        if (app.tab == Tab::Compare && app.settings.cmp.section == 1) do_action(app, "compare.generate");
        else if (app.tab == Tab::Generate) do_action(app, "generate");
      }
      if (pressed(GLFW_KEY_S)) do_action(app, "generate.save");
      if (pressed(GLFW_KEY_Q)) app.quit = true;
    }
    if (pressed(GLFW_KEY_ESCAPE) && app.show_help) {
      app.show_help = false;
    } else if (pressed(GLFW_KEY_ESCAPE)) {
      if (app.gen->busy()) do_action(app, "generate.cancel");
      else if (app.cls->active()) do_action(app, "classify.stop");
    }
    if (!typing && !io.KeyCtrl) {
      if (pressed(GLFW_KEY_SPACE) && (app.tab == Tab::Classify || (app.tab == Tab::Compare && app.settings.cmp.section == 0)))
        do_action(app, "classify.toggle");
      if (pressed(GLFW_KEY_D)) do_action(app, "generate.dice");
      if (pressed(GLFW_KEY_R)) do_action(app, "view.fit");
      if (pressed(GLFW_KEY_N)) do_action(app, "view.filter");
    }
  } catch (const std::exception& e) {
    message(app, Message::Level::Warning, e.what());
  }
}

}  // namespace studio
