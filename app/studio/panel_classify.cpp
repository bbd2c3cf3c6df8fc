// Classify tab: source (camera / video / images / GStreamer pipeline), model, start/stop and live stats on
// the left; the newest frame with its top-k drawn over it on the right.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cfloat>

#include "app/studio/widgets.h"

namespace studio {

// Shared with the Compare tab.
void draw_source_controls(App& app) {
  ClassifySettings& c = app.settings.cls;
  const char* kinds[] = {"Camera", "Video file", "Image files", "GStreamer"};
  for (int i = 0; i < 4; ++i) {
    if (ImGui::RadioButton(kinds[i], c.source == i)) {
      c.source = i;
      mark_dirty(app);
    }
    if (i % 2 == 0) ImGui::SameLine(150);
  }
  ImGui::SetNextItemWidth(-1);
  bool edited = false;
  switch (c.source) {
    case 0:
      edited = ImGui::InputTextWithHint("##camera", "camera index (0, 1, ...)", &c.camera, ImGuiInputTextFlags_CharsDecimal);
      break;
    case 1: edited = ImGui::InputTextWithHint("##video", "video file (.mp4, .avi, ...)", &c.video); break;
    case 2: edited = ImGui::InputTextWithHint("##images", "image files, separated by ';'", &c.images); break;
    default:
      edited = ImGui::InputTextMultiline("##pipeline", &c.pipeline, ImVec2(-1, ImGui::GetTextLineHeight() * 4.5f));
      if (ImGui::SmallButton("Jetson CSI camera")) {
        c.pipeline = ClassifySettings{}.pipeline;
        edited = true;
      }
      ImGui::SameLine();
      if (ImGui::SmallButton("test pattern")) {
        c.pipeline = "videotestsrc pattern=ball ! video/x-raw,width=640,height=480 ! videoconvert ! appsink";
        edited = true;
      }
      break;
  }
  if (c.source == 1 || c.source == 2) edited |= ImGui::Checkbox("Loop", &c.loop);
  if (edited) mark_dirty(app);
}

// Start/stop button and the run's state line (with Retry after a failure or a lost camera).
void draw_run_controls(App& app, const blr::ClassifyStatus& s, bool compare) {
  using S = blr::ClassifyStatus::State;
  const bool active = s.state == S::Opening || s.state == S::Running;
  const bool mine = compare == app.cls_compare_job;
  if (!(active && mine)) {
    if (primary_button(compare ? "Start both    Space" : "Start    Space", ImVec2(-1, 34)))
      do_action(app, compare ? "compare.classify" : "classify.start");
  } else {
    if (ImGui::Button("Stop    Space", ImVec2(-1, 34))) do_action(app, "classify.stop");
  }
  if (s.run == 0 || !mine) return;
  if (s.state == S::Failed || s.state == S::Lost) {
    ImGui::PushStyleColor(ImGuiCol_Text, s.state == S::Failed ? ImVec4(1.0f, 0.45f, 0.4f, 1) : ImVec4(1.0f, 0.75f, 0.35f, 1));
    ImGui::TextWrapped("%s", s.message.c_str());
    ImGui::PopStyleColor();
    if (ImGui::Button("Retry", ImVec2(-1, 0))) do_action(app, "classify.retry");
  } else if (!s.message.empty()) {
    ImGui::TextDisabled("%s", s.message.c_str());
  } else {
    ImGui::TextDisabled("%s · %s", blr::classify_state_name(s.state), s.source.c_str());
  }
}

// Draws the top-k panel over the lower-left corner of the visible image.
void draw_topk_over(const ViewRect& r, const std::vector<std::string>& labels, const blr::Prediction& p, int k,
                    const char* title) {
  if (p.classes.empty()) return;
  const ImVec2 vis_min(std::max(r.min.x, r.image_min.x), std::max(r.min.y, r.image_min.y));
  const ImVec2 vis_max(std::min(r.max.x, r.image_max.x), std::min(r.max.y, r.image_max.y));
  if (vis_max.x - vis_min.x < 120 || vis_max.y - vis_min.y < 80) return;
  const int rows = std::min<int>(k, static_cast<int>(p.classes.size()));
  const float w = std::min(340.0f, vis_max.x - vis_min.x - 24);
  const float h = rows * topk_row_height() + ImGui::GetTextLineHeight() + 20;
  const ImVec2 origin(vis_min.x + 12, vis_max.y - h - 12);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  dl->AddRectFilled(origin, ImVec2(origin.x + w, origin.y + h), ImGui::GetColorU32(ImVec4(0.05f, 0.06f, 0.08f, 0.78f)), 6.0f);
  dl->AddText(ImVec2(origin.x + 10, origin.y + 6), ImGui::GetColorU32(ImGuiCol_TextDisabled), title);
  const ImVec2 keep = ImGui::GetCursorScreenPos();
  ImGui::SetCursorScreenPos(ImVec2(origin.x + 8, origin.y + ImGui::GetTextLineHeight() + 12));
  ImGui::BeginGroup();
  topk_bars(labels, p, w - 16, rows);
  ImGui::EndGroup();
  ImGui::SetCursorScreenPos(keep);
}

void draw_classify(App& app, ImVec2 size) {
  ClassifySettings& c = app.settings.cls;
  const blr::ClassifyStatus s = app.cls->status();
  const bool mine = !app.cls_compare_job;

  begin_panes(app, "classify", size);
  section_header("SOURCE");
  draw_source_controls(app);
  section_header("MODEL");
  const auto vits = models_of(app, blr::ModelKind::Vit);
  if (vits.empty()) {
    ImGui::TextWrapped("No ViT loaded.");
    if (ImGui::Button("Open the Models tab")) do_action(app, "tab", {"Models"});
  } else {
    ImGui::SetNextItemWidth(-90);
    mode_combo(app, "Layer mode", blr::ModelKind::Vit, &c.mode);
    if (const blr::ModelInfo* info = find_model(app, resolve_model(app, blr::ModelKind::Vit, c.mode))) {
      ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyle().Colors[ImGuiCol_TextDisabled]);
      ImGui::TextWrapped("%s · %s params · %s", info->name.c_str(), fmt_count(info->params).c_str(),
                         blr::format_bytes(info->weight_bytes).c_str());
      ImGui::PopStyleColor();
    }
  }
  ImGui::SetNextItemWidth(-90);
  if (ImGui::SliderInt("Top-k", &c.topk, 1, 10)) mark_dirty(app);
  ImGui::Spacing();
  draw_run_controls(app, s, false);

  if (mine && s.run != 0 && !s.models.empty()) {
    section_header("PERFORMANCE");
    ImGui::PushFont(app.fonts.large);
    ImGui::Text("%.1f", s.fps);
    ImGui::PopFont();
    ImGui::SameLine();
    ImGui::SetCursorPosY(ImGui::GetCursorPosY() + 8);
    ImGui::TextDisabled("frames/s  ·  %lld classified%s", static_cast<long long>(s.classified),
                        s.dropped ? blr::cat(", ", s.dropped, " dropped (newest frame wins)").c_str() : "");
    const blr::ClassifyModelStats& m = s.models.front();
    if (ImGui::BeginTable("##lat", 3, ImGuiTableFlags_SizingStretchProp | ImGuiTableFlags_RowBg)) {
      ImGui::TableSetupColumn("stage");
      ImGui::TableSetupColumn("last");
      ImGui::TableSetupColumn("mean");
      ImGui::TableHeadersRow();
      auto row = [](const char* name, double last, double mean) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(name);
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(fmt_ms(last).c_str());
        ImGui::TableNextColumn();
        if (mean > 0) ImGui::TextUnformatted(fmt_ms(mean).c_str());
        else if (mean == 0) ImGui::TextDisabled("%s", glyphs("–").c_str());
      };
      row("capture", s.capture_ms, -1);
      row("preprocess", m.last_times.preprocess_ms + m.last_times.upload_ms, m.mean_preprocess_ms);
      row("network", m.last_times.network_ms, m.mean_network_ms);
      row("total", m.last_times.total_ms, m.mean_total_ms);
      ImGui::EndTable();
    }
    if (!m.total_ms_history.empty()) {
      ImGui::SetNextItemWidth(-FLT_MIN);
      ImGui::PlotLines("##lat_plot", m.total_ms_history.data(), static_cast<int>(m.total_ms_history.size()), 0,
                       "latency per frame (ms)", 0.0f, FLT_MAX, ImVec2(0, 52));
    }
    ImGui::TextDisabled("%s%s", m.graph ? "CUDA graph replay" : app.session->backend().gpu ? "eager" : "CPU backend",
                        s.live ? " · live source" : " · file source (every frame)");
  }

  next_pane(app, size);
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  app.cls_view.nearest = false;  // camera frames are natural images: always bilinear
  if (mine && app.frame_texture.valid() && s.run != 0) {
    ImGui::SetCursorPosX(ImGui::GetCursorPosX() + 6);
    ImGui::Text("%s  ·  frame %lld  ·  %dx%d", s.source.c_str(),
                static_cast<long long>(s.frames.empty() ? s.classified : s.frames.back().index), app.frame_texture.width,
                app.frame_texture.height);
    const ImVec2 view(avail.x, avail.y - ImGui::GetTextLineHeightWithSpacing() - 4);
    const ViewRect r = image_view("##clsview", app.cls_view, app.frame_texture, view, app.cls_target, app.shaders);
    app.image_rect_min = r.min;
    app.image_rect_max = r.max;
    app.image_visible_min = ImVec2(std::max(r.min.x, r.image_min.x), std::max(r.min.y, r.image_min.y));
    app.image_visible_max = ImVec2(std::min(r.max.x, r.image_max.x), std::min(r.max.y, r.image_max.y));
    if (!s.models.empty()) {
      const blr::ModelInfo* info = find_model(app, s.models.front().model_id);
      const std::vector<std::string> labels = info ? info->labels : std::vector<std::string>{};
      draw_topk_over(r, labels, s.models.front().last, c.topk, blr::cat("top-", c.topk, "  ·  ", s.models.front().variant).c_str());
    }
  } else {
    const char* text = s.state == blr::ClassifyStatus::State::Opening && mine ? "Opening the source…"
                       : s.state == blr::ClassifyStatus::State::Failed && mine ? "The source could not be used: see the message on the left"
                                                                              : "Pick a source and press Start (Space)";
    empty_view("##clsview", avail, text);
    app.image_rect_min = app.image_visible_min = ImGui::GetItemRectMin();
    app.image_rect_max = app.image_visible_max = ImGui::GetItemRectMax();
  }
  end_panes();
}

}  // namespace studio
