// Generate tab: model and class on the left with the sampling settings, Generate/Cancel, progress and
// output; the image (live preview while sampling, then the result) with zoom/pan on the right, and the
// history strip under it.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>

#include "app/studio/widgets.h"

namespace studio {

namespace {

void draw_progress(const blr::GenerationStatus& g) {
  const bool running = g.state == blr::GenerationStatus::State::Running;
  const int runs = std::max<int>(1, static_cast<int>(g.job.dit_ids.size()));
  const float frac = g.steps > 0 ? (static_cast<float>(g.current) + static_cast<float>(g.step) / g.steps) / runs : 0.0f;
  std::string text;
  if (running) {
    text = g.step == 0 ? glyphs("starting…")
                       : blr::cat("step ", g.step, "/", g.steps, runs > 1 ? blr::cat(" (", g.current + 1, "/", runs, ")") : "",
                                  "  ·  ", fmt_ms(g.mean_step_ms), "/step  ·  ETA ", fmt_ms(g.eta_s * 1000.0));
  } else if (g.state == blr::GenerationStatus::State::Idle) {
    text = "ready";
  } else if (g.state == blr::GenerationStatus::State::Finished) {
    text = g.message;  // "finished in N ms"
  } else {
    text = blr::cat(blr::generation_state_name(g.state), g.message.empty() ? "" : ": " + g.message);
  }
  ImGui::PushStyleColor(ImGuiCol_PlotHistogram, accent_color(running ? 0.85f : 0.5f));
  ImGui::ProgressBar(running ? frac : (g.state == blr::GenerationStatus::State::Finished ? 1.0f : frac), ImVec2(-1, 0),
                     text.c_str());
  ImGui::PopStyleColor();
}

void draw_history(App& app, float height) {
  ImGui::PushStyleColor(ImGuiCol_ChildBg, ImGui::GetStyle().Colors[ImGuiCol_ChildBg]);
  ImGui::BeginChild("##history", ImVec2(0, height), false, ImGuiWindowFlags_HorizontalScrollbar);
  ImGui::PopStyleColor();
  if (app.history.empty()) {
    ImGui::SetCursorPos(ImVec2(12, height * 0.5f - ImGui::GetTextLineHeight() * 0.5f));
    ImGui::TextDisabled("History: finished images appear here; click one to restore its parameters.");
  }
  const float thumb = height - 22;
  const auto& names = class_names(app);
  for (int i = static_cast<int>(app.history.size()) - 1; i >= 0; --i) {
    HistoryEntry& h = app.history[static_cast<size_t>(i)];
    ImGui::PushID(i);
    const bool selected = i == app.history_selected;
    ImGui::SetCursorPosY(5);
    const ImVec2 p = ImGui::GetCursorScreenPos();
    if (ImGui::ImageButton(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(h.texture.id)), ImVec2(thumb, thumb),
                           ImVec2(0, 0), ImVec2(1, 1), 2)) {
      do_action(app, "history.restore", {std::to_string(i)});
    }
    if (selected)
      ImGui::GetWindowDrawList()->AddRect(ImVec2(p.x - 1, p.y - 1), ImVec2(p.x + thumb + 5, p.y + thumb + 5),
                                          accent_color(), 4.0f, 0, 2.0f);
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("%s\nseed %llu · %d %s steps · cfg %.1f · %d image%s\n%s [%s]\n%s/step%s%s",
                        class_label(names, h.params.class_id).c_str(), static_cast<unsigned long long>(h.params.seed),
                        h.params.steps, h.params.sampler == 0 ? "DDPM" : "DDIM", h.params.guidance, h.params.images,
                        h.params.images == 1 ? "" : "s", h.dit_name.c_str(), h.params.mode.c_str(),
                        fmt_ms(h.mean_step_ms).c_str(), h.saved_path.empty() ? "" : "\nsaved: ", h.saved_path.c_str());
    ImGui::SameLine();
    ImGui::PopID();
  }
  ImGui::EndChild();
}

}  // namespace

void draw_generate(App& app, ImVec2 size) {
  GenerateSettings& g = app.settings.gen;
  const blr::GenerationStatus st = app.gen->status();
  const bool running = st.state == blr::GenerationStatus::State::Running;
  const bool gpu = app.session->backend().gpu;

  begin_panes(app, "generate", size);
  section_header("MODEL");
  const auto dits = models_of(app, blr::ModelKind::Dit);
  if (dits.empty()) {
    ImGui::TextWrapped("No DiT loaded.");
    if (ImGui::Button("Open the Models tab")) do_action(app, "tab", {"Models"});
  } else {
    ImGui::SetNextItemWidth(-90);
    mode_combo(app, "Layer mode", blr::ModelKind::Dit, &g.mode);
    const int id = resolve_model(app, blr::ModelKind::Dit, g.mode);
    if (const blr::ModelInfo* info = find_model(app, id)) {
      ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyle().Colors[ImGuiCol_TextDisabled]);
      ImGui::TextWrapped("%s · %s params · %s", info->name.c_str(), fmt_count(info->params).c_str(),
                         blr::format_bytes(info->weight_bytes).c_str());
      ImGui::TextWrapped("%s", info->variant.c_str());
      ImGui::PopStyleColor();
    }
    const auto vaes = models_of(app, blr::ModelKind::Vae);
    ImGui::TextDisabled("Decoder:");
    ImGui::SameLine();
    if (!vaes.empty()) ImGui::TextUnformatted(vaes.back().name.c_str());
    else if (const blr::ModelInfo* info = find_model(app, id); info && info->latent_channels == 3) ImGui::TextUnformatted("pixel space");
    else ImGui::TextUnformatted("latent preview map (no VAE)");
  }

  section_header("CLASS");
  const auto& names = class_names(app);
  ImGui::Text("%d", g.class_id);
  ImGui::SameLine();
  ImGui::TextUnformatted(class_label(names, g.class_id).c_str());
  class_picker(app, "classes", &g.class_id, ImGui::GetTextLineHeightWithSpacing() * 6.5f);

  section_header("SAMPLING");
  const float label_w = 90.0f;
  ImGui::SetNextItemWidth(-label_w - 58);
  if (ImGui::InputScalar("##seed", ImGuiDataType_U64, &g.seed)) mark_dirty(app);
  ImGui::SameLine();
  if (ImGui::Button("Dice", ImVec2(50, 0))) do_action(app, "generate.dice");
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("random seed (D)");
  ImGui::SameLine();
  ImGui::TextUnformatted("Seed");
  ImGui::SetNextItemWidth(-label_w);
  if (ImGui::SliderInt("Steps", &g.steps, 1, 1000, "%d", ImGuiSliderFlags_Logarithmic)) mark_dirty(app);
  ImGui::SetNextItemWidth(-label_w);
  const char* samplers[] = {"DDPM (learned variance)", "DDIM (η = 0)"};
  if (ImGui::Combo("Sampler", &g.sampler, samplers, 2)) mark_dirty(app);
  ImGui::SetNextItemWidth(-label_w);
  if (ImGui::SliderFloat("Guidance", &g.guidance, 1.0f, 10.0f, g.guidance <= 1.0f ? "off (1.0)" : "%.1f")) mark_dirty(app);
  ImGui::SetNextItemWidth(-label_w);
  if (ImGui::SliderInt("Images", &g.images, 1, 8)) mark_dirty(app);
  ImGui::SetNextItemWidth(-label_w);
  if (ImGui::SliderInt("Preview", &g.preview_every, 1, 50, "every %d steps")) mark_dirty(app);
  if (!gpu) ImGui::BeginDisabled();
  if (ImGui::Checkbox("CUDA graphs", &g.graphs)) mark_dirty(app);
  if (!gpu) {
    ImGui::EndDisabled();
    ImGui::SameLine();
    ImGui::TextDisabled("(GPU only)");
  }

  ImGui::Spacing();
  if (!running) {
    if (primary_button("Generate    Ctrl+Enter", ImVec2(-1, 34))) do_action(app, "generate");
  } else {
    if (ImGui::Button("Cancel    Esc", ImVec2(-1, 34))) do_action(app, "generate.cancel");
  }
  draw_progress(app.gen_compare_job ? blr::GenerationStatus{} : st);

  section_header("OUTPUT");
  ImGui::SetNextItemWidth(-1);
  const std::string hint = output_dir(app);
  if (ImGui::InputTextWithHint("##outdir", hint.c_str(), &g.output_dir)) mark_dirty(app);
  if (ImGui::Button("Save PNG    Ctrl+S", ImVec2(-1, 0))) do_action(app, "generate.save");
  if (!app.saved.empty()) {
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyle().Colors[ImGuiCol_TextDisabled]);
    ImGui::TextWrapped("last: %s", app.saved.back().c_str());
    ImGui::PopStyleColor();
  }
  if (app.history_selected >= 0 && app.history_selected < static_cast<int>(app.history.size())) {
    const HistoryEntry& h = app.history[static_cast<size_t>(app.history_selected)];
    section_header("LAST RUN");
    key_value("mean step", fmt_ms(h.mean_step_ms), 110);
    key_value("total", fmt_ms(h.total_ms), 110);
    key_value("decoder", h.decoder, 110);
    if (!h.step_ms.empty()) {
      std::vector<float> v(h.step_ms.begin(), h.step_ms.end());
      ImGui::SetNextItemWidth(-FLT_MIN);
      ImGui::PlotLines("##steps", v.data(), static_cast<int>(v.size()), 0, "ms per step", 0.0f, FLT_MAX, ImVec2(0, 48));
    }
  }

  next_pane(app, size);
  // Caption
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float history_h = 92.0f;
  std::string caption;
  if (app.showing_preview && running) {
    caption = blr::cat("Live preview · predicted clean image after step ", st.step, " of ", st.steps,
                       " (cheap latent map, not the VAE)");
  } else if (app.history_selected >= 0 && app.history_selected < static_cast<int>(app.history.size())) {
    const HistoryEntry& h = app.history[static_cast<size_t>(app.history_selected)];
    caption = blr::cat(class_label(names, h.params.class_id), "  ·  seed ", h.params.seed, "  ·  ", h.params.steps, " ",
                       h.params.sampler == 0 ? "DDPM" : "DDIM", " steps  ·  cfg ", static_cast<int>(h.params.guidance * 10) / 10.0,
                       "  ·  ", h.params.mode);
  }
  ImGui::SetCursorPosX(ImGui::GetCursorPosX() + 6);
  if (caption.empty()) ImGui::TextDisabled("Image");
  else ImGui::TextUnformatted(caption.c_str());
  ImGui::SameLine();
  text_right(app.settings.window.nearest ? "nearest  ·  wheel: zoom  ·  drag: pan  ·  double-click: fit"
                                         : "linear  ·  wheel: zoom  ·  drag: pan  ·  double-click: fit");
  const ImVec2 view_size(avail.x, avail.y - history_h - ImGui::GetTextLineHeightWithSpacing() - 10);
  app.gen_view.nearest = app.settings.window.nearest;
  const GlTexture& shown = app.showing_preview && running && app.preview_texture.valid() ? app.preview_texture : app.gen_texture;
  if (shown.valid()) {
    const ViewRect r = image_view("##genview", app.gen_view, shown, view_size, app.gen_target, app.shaders);
    app.image_rect_min = r.min;
    app.image_rect_max = r.max;
    app.image_visible_min = ImVec2(std::max(r.min.x, r.image_min.x), std::max(r.min.y, r.image_min.y));
    app.image_visible_max = ImVec2(std::min(r.max.x, r.image_max.x), std::min(r.max.y, r.image_max.y));
  } else {
    empty_view("##genview", view_size,
               running ? "Sampling… (a preview appears after the first steps)"
                       : "Choose a class, then press Generate (Ctrl+Enter)");
    app.image_rect_min = app.image_visible_min = ImGui::GetItemRectMin();
    app.image_rect_max = app.image_visible_max = ImGui::GetItemRectMax();
  }
  ImGui::Spacing();
  draw_history(app, history_h);
  end_panes();
}

}  // namespace studio
