#include "app/studio/widgets.h"

#include <imgui_stdlib.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <set>

namespace studio {

void begin_panes(App& app, const char* id, ImVec2 size) {
  ImGui::PushID(id);
  ImGui::PushStyleVar(ImGuiStyleVar_WindowPadding, ImVec2(14, 12));
  const float w = std::min(app.settings.window.panel_width, std::max(260.0f, size.x - 320.0f));
  ImGui::BeginChild("##panel", ImVec2(w, size.y), false, ImGuiWindowFlags_AlwaysUseWindowPadding);
  ImGui::PopStyleVar();
}

void next_pane(App& app, ImVec2 size) {
  ImGui::EndChild();
  ImGui::SameLine(0, 0);
  // Splitter: drag to resize the panel.
  const ImVec2 p = ImGui::GetCursorScreenPos();
  ImGui::InvisibleButton("##splitter", ImVec2(8, size.y));
  if (ImGui::IsItemHovered() || ImGui::IsItemActive()) ImGui::SetMouseCursor(ImGuiMouseCursor_ResizeEW);
  if (ImGui::IsItemActive() && ImGui::GetIO().MouseDelta.x != 0) {
    app.settings.window.panel_width = std::clamp(app.settings.window.panel_width + ImGui::GetIO().MouseDelta.x, 260.0f, 900.0f);
    mark_dirty(app);
  }
  const ImU32 col = ImGui::GetColorU32(ImGui::IsItemActive() || ImGui::IsItemHovered() ? ImGuiCol_SliderGrab : ImGuiCol_Separator);
  ImGui::GetWindowDrawList()->AddLine(ImVec2(p.x + 4, p.y + 8), ImVec2(p.x + 4, p.y + size.y - 8), col, 2.0f);
  ImGui::SameLine(0, 0);
  ImGui::PushStyleColor(ImGuiCol_ChildBg, ImVec4(0, 0, 0, 0));
  ImGui::BeginChild("##main", ImVec2(0, size.y), false, ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
  ImGui::PopStyleColor();
}

void end_panes() {
  ImGui::EndChild();
  ImGui::PopID();
}

bool class_picker(App& app, const char* id, int* class_id, float list_height) {
  const std::vector<std::string>& names = class_names(app);
  bool changed = false;
  ImGui::PushID(id);
  ImGui::SetNextItemWidth(-1);
  ImGui::InputTextWithHint("##filter", "type to filter classes (name or number)", &app.gen_filter);
  // The matching indices, recomputed only when the filter or the names change (1000 names per frame
  // would otherwise cost the UI thread real time).
  if (app.filter_text != app.gen_filter || app.filter_names != app.names_for || app.filter_size != names.size()) {
    app.filter_text = app.gen_filter;
    app.filter_names = app.names_for;
    app.filter_size = names.size();
    app.filtered.clear();
    std::string needle;
    for (char c : app.gen_filter) needle.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    for (size_t i = 0; i < names.size(); ++i) {
      if (!needle.empty()) {
        std::string low = std::to_string(i) + " " + names[i];
        for (char& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (low.find(needle) == std::string::npos) continue;
      }
      app.filtered.push_back(static_cast<int>(i));
    }
  }
  if (ImGui::BeginListBox("##classes", ImVec2(-1, list_height))) {
    if (app.filtered.empty()) ImGui::TextDisabled("no class matches '%s'", app.gen_filter.c_str());
    // Keep the selected class in view when the list first appears.
    if (ImGui::IsWindowAppearing()) {
      const auto it = std::find(app.filtered.begin(), app.filtered.end(), *class_id);
      if (it != app.filtered.end())
        ImGui::SetScrollY(static_cast<float>(it - app.filtered.begin()) * ImGui::GetTextLineHeightWithSpacing() -
                          list_height * 0.4f);
    }
    ImGuiListClipper clipper;
    clipper.Begin(static_cast<int>(app.filtered.size()));
    while (clipper.Step()) {
      for (int row = clipper.DisplayStart; row < clipper.DisplayEnd; ++row) {
        const int i = app.filtered[static_cast<size_t>(row)];
        char label[256];
        std::snprintf(label, sizeof(label), "%d  %s", i, names[static_cast<size_t>(i)].c_str());
        if (ImGui::Selectable(label, i == *class_id)) {
          *class_id = i;
          changed = true;
        }
      }
    }
    ImGui::EndListBox();
  }
  ImGui::PopID();
  if (changed) mark_dirty(app);
  return changed;
}

bool mode_combo(App& app, const char* label, blr::ModelKind kind, std::string* mode) {
  const auto models = models_of(app, kind);
  std::vector<std::string> modes;
  std::set<std::string> seen;
  for (const auto& m : models)
    if (seen.insert(m.mode).second) modes.push_back(m.mode);
  bool changed = false;
  const bool have = seen.count(*mode) != 0;
  const std::string preview = modes.empty() ? std::string("(none loaded)") : have ? *mode : *mode + " (not loaded)";
  if (ImGui::BeginCombo(label, preview.c_str())) {
    for (const auto& m : modes) {
      if (ImGui::Selectable(m.c_str(), m == *mode)) {
        *mode = m;
        changed = true;
      }
      for (const auto& info : models)
        if (info.mode == m && ImGui::IsItemHovered())
          ImGui::SetTooltip("%s\n%s\n%s params, %s", info.name.c_str(), info.variant.c_str(), fmt_count(info.params).c_str(),
                            blr::format_bytes(info.weight_bytes).c_str());
    }
    ImGui::EndCombo();
  }
  if (changed) mark_dirty(app);
  return changed;
}

float topk_row_height() { return ImGui::GetTextLineHeight() + 8; }

void topk_bars(const std::vector<std::string>& labels, const blr::Prediction& p, float width, int max_rows) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const float row_h = topk_row_height();
  ImGui::PushStyleVar(ImGuiStyleVar_ItemSpacing, ImVec2(ImGui::GetStyle().ItemSpacing.x, 0.0f));
  const int rows = std::min<int>(max_rows, static_cast<int>(p.classes.size()));
  for (int i = 0; i < rows; ++i) {
    const int cls = p.classes[static_cast<size_t>(i)];
    const float prob = p.probs[static_cast<size_t>(i)];
    const ImVec2 pos = ImGui::GetCursorScreenPos();
    const ImVec2 end(pos.x + width, pos.y + row_h - 3);
    dl->AddRectFilled(pos, end, ImGui::GetColorU32(ImVec4(1, 1, 1, 0.05f)), 3.0f);
    dl->AddRectFilled(pos, ImVec2(pos.x + width * std::clamp(prob, 0.0f, 1.0f), end.y),
                      i == 0 ? accent_color(0.75f) : accent_color(0.35f), 3.0f);
    const std::string text = class_label(labels, cls);
    char pct[16];
    std::snprintf(pct, sizeof(pct), "%.1f%%", prob * 100.0f);
    const float pw = ImGui::CalcTextSize(pct).x;
    dl->PushClipRect(pos, ImVec2(end.x - pw - 10, end.y), true);
    dl->AddText(ImVec2(pos.x + 6, pos.y + 2), ImGui::GetColorU32(ImGuiCol_Text), text.c_str());
    dl->PopClipRect();
    dl->AddText(ImVec2(end.x - pw - 5, pos.y + 2), ImGui::GetColorU32(ImGuiCol_Text), pct);
    ImGui::Dummy(ImVec2(width, row_h));
  }
  ImGui::PopStyleVar();
}

namespace {
bool g_typographic = true;  // UI thread only
}  // namespace

void set_typographic_glyphs(bool available) { g_typographic = available; }
bool typographic_glyphs() { return g_typographic; }

std::string glyphs(std::string text) {
  if (g_typographic) return text;
  static const std::pair<const char*, const char*> kAscii[] = {
      {"\u2013", "-"}, {"\u2212", "-"}, {"\u2026", "..."}, {"\u2265", ">="}, {"\u2264", "<="}};
  for (const auto& [from, to] : kAscii) {
    const std::string f(from);
    for (size_t at = text.find(f); at != std::string::npos; at = text.find(f, at + std::strlen(to)))
      text.replace(at, f.size(), to);
  }
  return text;
}

std::string fmt_ms(double ms) {
  char b[32];
  if (ms < 10) std::snprintf(b, sizeof(b), "%.2f ms", ms);
  else if (ms < 1000) std::snprintf(b, sizeof(b), "%.1f ms", ms);
  else std::snprintf(b, sizeof(b), "%.2f s", ms / 1000.0);
  return b;
}

std::string fmt_count(int64_t n) {
  char b[32];
  const double v = static_cast<double>(n);
  if (n >= 1000000000) std::snprintf(b, sizeof(b), "%.2f G", v / 1e9);
  else if (n >= 1000000) std::snprintf(b, sizeof(b), "%.2f M", v / 1e6);
  else if (n >= 1000) std::snprintf(b, sizeof(b), "%.1f k", v / 1e3);
  else std::snprintf(b, sizeof(b), "%lld", static_cast<long long>(n));
  return b;
}

std::string fmt_pct(double f) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.1f%%", f * 100.0);
  return b;
}

void text_right(const char* text) {
  const float w = ImGui::CalcTextSize(text).x;
  const float avail = ImGui::GetContentRegionAvail().x;
  if (avail > w) ImGui::SetCursorPosX(ImGui::GetCursorPosX() + avail - w);
  ImGui::TextUnformatted(text);
}

void key_value(const char* key, const std::string& value, float key_width) {
  ImGui::TextDisabled("%s", key);
  ImGui::SameLine(key_width);
  ImGui::PushTextWrapPos(0.0f);
  ImGui::TextUnformatted(value.c_str());
  ImGui::PopTextWrapPos();
}

}  // namespace studio
