// Compare tab: the dense model against a BLR variant on the same input.
//   Classification: both ViTs on exactly the same frames — both top-k lists, both latencies, and the
//   running top-1 agreement.
//   Generation: the same seed, class and sampler through both DiTs — the two images side by side, the
//   |A − B| heat map (GLSL, adjustable gain), PSNR, step times and memory of each.
// Everything shown is measured in this session on this machine; the footer says how, so a screenshot
// of this view cannot be mistaken for more than it is.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "app/studio/widgets.h"

namespace studio {

void draw_source_controls(App& app);                                              // panel_classify.cpp
void draw_run_controls(App& app, const blr::ClassifyStatus& s, bool compare);     // panel_classify.cpp
void draw_topk_over(const ViewRect& r, const std::vector<std::string>& labels, const blr::Prediction& p, int k,
                    const char* title);

namespace {

const ImVec4 kColorA(0.55f, 0.75f, 1.0f, 1.0f);   // reference (dense)
const ImVec4 kColorB(0.98f, 0.70f, 0.35f, 1.0f);  // BLR

void model_badge(const char* tag, const ImVec4& color, const blr::ModelInfo* info) {
  ImGui::PushStyleColor(ImGuiCol_Text, color);
  ImGui::TextUnformatted(tag);
  ImGui::PopStyleColor();
  ImGui::SameLine();
  if (!info) {
    ImGui::TextDisabled("not loaded");
    return;
  }
  ImGui::Text("%s [%s]", info->name.c_str(), info->mode.c_str());
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", info->variant.c_str());
}

std::string ratio(double b, double a) {
  if (a <= 0 || b <= 0) return glyphs("–");
  char t[32];
  std::snprintf(t, sizeof(t), "%.2fx", b / a);
  return t;
}

void draw_classify_main(App& app, const blr::ClassifyStatus& s, ImVec2 avail) {
  const bool mine = app.cls_compare_job && s.run != 0;
  const float lower_h = std::min(330.0f, avail.y * 0.45f);
  const ImVec2 view(avail.x, avail.y - lower_h - 8);
  if (mine && app.frame_texture.valid()) {
    app.cls_view.nearest = false;
    const ViewRect r = image_view("##cmpframe", app.cls_view, app.frame_texture, view, app.cls_target, app.shaders);
    app.image_rect_min = r.min;
    app.image_rect_max = r.max;
    app.image_visible_min = ImVec2(std::max(r.min.x, r.image_min.x), std::max(r.min.y, r.image_min.y));
    app.image_visible_max = ImVec2(std::min(r.max.x, r.image_max.x), std::min(r.max.y, r.image_max.y));
    // Agreement, large, over the top-right of the frame.
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const std::string pct = s.compared ? fmt_pct(s.agreement()) : glyphs("–");
    ImGui::PushFont(app.fonts.large);
    const ImVec2 ts = ImGui::CalcTextSize(pct.c_str());
    ImGui::PopFont();
    const ImVec2 box_max(r.max.x - 12, r.min.y + ts.y + 44);
    const ImVec2 box_min(box_max.x - std::max(ts.x, 190.0f) - 24, r.min.y + 12);
    dl->AddRectFilled(box_min, box_max, ImGui::GetColorU32(ImVec4(0.05f, 0.06f, 0.08f, 0.8f)), 6.0f);
    dl->AddText(app.fonts.large, app.fonts.large->FontSize, ImVec2(box_max.x - ts.x - 12, box_min.y + 6),
                accent_color(), pct.c_str());
    const std::string sub = blr::cat("top-1 agreement  (", s.agreed, "/", s.compared, ")");
    const ImVec2 ss = ImGui::CalcTextSize(sub.c_str());
    dl->AddText(ImVec2(box_max.x - ss.x - 12, box_max.y - ss.y - 6), ImGui::GetColorU32(ImGuiCol_TextDisabled), sub.c_str());
  } else {
    empty_view("##cmpframe", view, "Load a ViT twice (dense and a BLR mode), pick a source, press Start both (Space)");
    app.image_rect_min = app.image_visible_min = ImGui::GetItemRectMin();
    app.image_rect_max = app.image_visible_max = ImGui::GetItemRectMax();
  }
  ImGui::Spacing();
  // The two models' results side by side.
  const float col_w = (avail.x - 12) * 0.5f;
  for (int i = 0; i < 2; ++i) {
    if (i) ImGui::SameLine(0, 12);
    ImGui::BeginChild(i == 0 ? "##cmpA" : "##cmpB", ImVec2(col_w, lower_h), false, ImGuiWindowFlags_AlwaysUseWindowPadding);
    const bool have = mine && static_cast<int>(s.models.size()) > i;
    const blr::ModelInfo* info = have ? find_model(app, s.models[static_cast<size_t>(i)].model_id) : nullptr;
    model_badge(i == 0 ? "A" : "B", i == 0 ? kColorA : kColorB, info);
    if (have) {
      const blr::ClassifyModelStats& m = s.models[static_cast<size_t>(i)];
      ImGui::TextDisabled("%s params · %s weights", fmt_count(info ? info->params : 0).c_str(),
                          blr::format_bytes(info ? info->weight_bytes : 0).c_str());
      topk_bars(info ? info->labels : std::vector<std::string>{}, m.last, ImGui::GetContentRegionAvail().x,
                app.settings.cls.topk);
      ImGui::Text("network %s  ·  total %s", fmt_ms(m.mean_network_ms).c_str(), fmt_ms(m.mean_total_ms).c_str());
      ImGui::SameLine();
      ImGui::TextDisabled("(means)");
      if (!m.total_ms_history.empty()) {
        ImGui::SetNextItemWidth(-FLT_MIN);
        ImGui::PlotLines("##h", m.total_ms_history.data(), static_cast<int>(m.total_ms_history.size()), 0, nullptr, 0.0f,
                         FLT_MAX, ImVec2(0, 36));
      }
    } else {
      ImGui::TextDisabled("no results yet");
    }
    ImGui::EndChild();
  }
}

void draw_generate_main(App& app, ImVec2 avail) {
  const auto& res = app.cmp_result;
  const blr::GenerationStatus live = app.gen->status();
  const bool have = res && res->outputs.size() == 2 && app.cmp_a.valid() && app.cmp_b.valid();
  const float footer_h = ImGui::GetTextLineHeightWithSpacing() * 2 + 8;
  const float table_h = 190.0f;
  const float gap = 10.0f;
  const float w = (avail.x - 2 * gap) / 3.0f;
  const float h = std::max(120.0f, std::min(w, avail.y - table_h - footer_h - ImGui::GetTextLineHeightWithSpacing() - 16));
  const char* captions[3] = {"A", "B", "|A − B|"};
  app.cmp_view.nearest = app.settings.window.nearest;
  for (int i = 0; i < 3; ++i) {
    if (i) ImGui::SameLine(0, gap);
    ImGui::BeginGroup();
    ImGui::PushStyleColor(ImGuiCol_Text, i == 0 ? kColorA : i == 1 ? kColorB : ImGui::GetStyle().Colors[ImGuiCol_Text]);
    ImGui::TextUnformatted(glyphs(captions[i]).c_str());
    ImGui::PopStyleColor();
    ImGui::SameLine();
    if (have && i < 2) ImGui::TextDisabled("%s", res->outputs[static_cast<size_t>(i)].mode.c_str());
    else if (i == 2) ImGui::TextDisabled("heat map, gain %.1fx", app.settings.cmp.gain);
    else ImGui::NewLine();
    const std::string id = blr::cat("##cmpview", i);
    if (!have) {
      const bool running = live.state == blr::GenerationStatus::State::Running && app.gen_compare_job;
      empty_view(id.c_str(), ImVec2(w, h),
                 running ? blr::cat("sampling ", live.current == i ? "now" : live.current > i ? "done" : "next", "…").c_str()
                 : i == 2 ? "difference"
                          : "press Generate both (Ctrl+Enter)");
    } else {
      const GlTexture& tex = i == 0 ? app.cmp_a : app.cmp_b;
      const ViewRect r = image_view(id.c_str(), app.cmp_view, i == 2 ? app.cmp_a : tex, ImVec2(w, h), app.cmp_targets[i],
                                    app.shaders, i == 2 ? &app.cmp_b : nullptr, app.settings.cmp.gain);
      if (i == 0) {
        app.image_rect_min = r.min;
        app.image_visible_min = ImVec2(std::max(r.min.x, r.image_min.x), std::max(r.min.y, r.image_min.y));
      }
      app.image_rect_max = r.max;
      app.image_visible_max = ImVec2(std::min(r.max.x, r.image_max.x), std::min(r.max.y, r.image_max.y));
    }
    ImGui::EndGroup();
  }
  ImGui::Spacing();
  if (!have) {
    ImGui::TextDisabled("The same seed, class, sampler and step count run through A and then B.");
    return;
  }
  const blr::GenerationOutput& a = res->outputs[0];
  const blr::GenerationOutput& b = res->outputs[1];
  // Headline: PSNR.
  ImGui::BeginGroup();
  ImGui::PushFont(app.fonts.large);
  if (std::isinf(*res->psnr)) ImGui::TextUnformatted("identical");
  else ImGui::Text("%.2f dB", *res->psnr);
  ImGui::PopFont();
  ImGui::TextDisabled("PSNR of B against A (RGB)");
  ImGui::TextDisabled("largest pixel difference %.0f / 255", res->max_abs_diff);
  ImGui::EndGroup();
  ImGui::SameLine(0, 40);
  if (ImGui::BeginTable("##cmpstats", 4,
                        ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerH | ImGuiTableFlags_SizingStretchProp)) {
    ImGui::TableSetupColumn("");
    ImGui::TableSetupColumn("A");
    ImGui::TableSetupColumn("B");
    ImGui::TableSetupColumn("B / A");
    ImGui::TableHeadersRow();
    auto row = [](const char* name, const std::string& x, const std::string& y, const std::string& r) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::TextDisabled("%s", name);
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(x.c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(y.c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(r.c_str());
    };
    row("step time (median)", fmt_ms(a.median_step_ms), fmt_ms(b.median_step_ms), ratio(b.median_step_ms, a.median_step_ms));
    row("sampling, all steps", fmt_ms(a.sampling_ms), fmt_ms(b.sampling_ms), ratio(b.sampling_ms, a.sampling_ms));
    row("DiT parameters", fmt_count(a.params), fmt_count(b.params),
        ratio(static_cast<double>(b.params), static_cast<double>(a.params)));
    row("DiT weights", blr::format_bytes(a.weight_bytes), blr::format_bytes(b.weight_bytes),
        ratio(static_cast<double>(b.weight_bytes), static_cast<double>(a.weight_bytes)));
    row("DiT arena peak", blr::format_bytes(a.dit_memory.high_water), blr::format_bytes(b.dit_memory.high_water),
        ratio(static_cast<double>(b.dit_memory.high_water), static_cast<double>(a.dit_memory.high_water)));
    row("decoder", a.decoder, b.decoder, "");
    ImGui::EndTable();
  }
  ImGui::Spacing();
  ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyle().Colors[ImGuiCol_TextDisabled]);
  ImGui::TextWrapped(
      "Measured here: %s backend (%s), %d %s steps, %s; step time is the median over all steps (the first ones include "
      "graph capture). B was %s. Memory is the DiT's own arena (weights + activations); the VAE is shared.",
      app.session->backend().gpu ? "CUDA" : "CPU", app.session->backend().device.c_str(), res->job.steps,
      res->job.sampler == blr::SamplerKind::DDPM ? "DDPM" : "DDIM",
      a.graphs ? "CUDA graphs on" : app.session->backend().gpu ? "CUDA graphs off" : "no CUDA graphs on the CPU",
      b.mode == "custom" ? "compressed by custom rules, data-free (no fine-tuning)"
                         : "compressed data-free from the dense weights (no fine-tuning), so differences are "
                           "approximation error");
  ImGui::PopStyleColor();
}

}  // namespace

void draw_compare(App& app, ImVec2 size) {
  CompareSettings& c = app.settings.cmp;
  const blr::ClassifyStatus s = app.cls->status();
  const blr::ModelKind kind = c.section == 0 ? blr::ModelKind::Vit : blr::ModelKind::Dit;

  begin_panes(app, "compare", size);
  section_header("WHAT TO COMPARE");
  if (ImGui::RadioButton("Classification", c.section == 0)) {
    c.section = 0;
    mark_dirty(app);
  }
  ImGui::SameLine(150);
  if (ImGui::RadioButton("Generation", c.section == 1)) {
    c.section = 1;
    mark_dirty(app);
  }
  section_header("MODELS");
  ImGui::SetNextItemWidth(-120);
  mode_combo(app, "A (reference)", kind, &c.mode_a);
  ImGui::SetNextItemWidth(-120);
  mode_combo(app, "B (BLR)", kind, &c.mode_b);
  if (models_of(app, kind).size() < 2) {
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyle().Colors[ImGuiCol_TextDisabled]);
    ImGui::TextWrapped("Load the %s once dense and once with a BLR mode (Models tab) to compare them.",
                       kind == blr::ModelKind::Dit ? "DiT" : "ViT");
    ImGui::PopStyleColor();
  }
  if (c.section == 0) {
    section_header("SOURCE");
    draw_source_controls(app);
    ImGui::Spacing();
    draw_run_controls(app, s, true);
    if (app.cls_compare_job && s.run != 0) {
      ImGui::Spacing();
      key_value("frames/s", blr::cat(static_cast<int>(s.fps * 10) / 10.0), 110);
      key_value("compared", blr::cat(s.compared, " frames"), 110);
      key_value("agreement", s.compared ? fmt_pct(s.agreement()) : glyphs("–"), 110);
    }
  } else {
    GenerateSettings& g = app.settings.gen;
    section_header("REQUEST (shared with Generate)");
    const auto& names = class_names(app);
    ImGui::Text("%d  %s", g.class_id, class_label(names, g.class_id).c_str());
    class_picker(app, "cmpclasses", &g.class_id, ImGui::GetTextLineHeightWithSpacing() * 4.5f);
    ImGui::SetNextItemWidth(-150);
    if (ImGui::InputScalar("##seed", ImGuiDataType_U64, &g.seed)) mark_dirty(app);
    ImGui::SameLine();
    if (ImGui::Button("Dice", ImVec2(50, 0))) do_action(app, "generate.dice");
    ImGui::SameLine();
    ImGui::TextUnformatted("Seed");
    ImGui::SetNextItemWidth(-90);
    if (ImGui::SliderInt("Steps", &g.steps, 1, 1000, "%d", ImGuiSliderFlags_Logarithmic)) mark_dirty(app);
    const char* samplers[] = {"DDPM", "DDIM"};
    ImGui::SetNextItemWidth(-90);
    if (ImGui::Combo("Sampler", &g.sampler, samplers, 2)) mark_dirty(app);
    ImGui::SetNextItemWidth(-90);
    if (ImGui::SliderFloat("Guidance", &g.guidance, 1.0f, 10.0f, "%.1f")) mark_dirty(app);
    ImGui::Spacing();
    const blr::GenerationStatus gs = app.gen->status();
    const bool running = gs.state == blr::GenerationStatus::State::Running;
    if (!running) {
      if (primary_button("Generate both    Ctrl+Enter", ImVec2(-1, 34))) do_action(app, "compare.generate");
    } else if (ImGui::Button("Cancel    Esc", ImVec2(-1, 34))) {
      do_action(app, "generate.cancel");
    }
    if (app.gen_compare_job && gs.run != 0) {
      const float frac = gs.steps > 0 ? (gs.current + static_cast<float>(gs.step) / gs.steps) / 2.0f : 0.0f;
      const std::string text = running ? blr::cat(gs.current == 0 ? "A" : "B", ": step ", gs.step, "/", gs.steps, " · ",
                                                  fmt_ms(gs.mean_step_ms), "/step")
                                       : blr::generation_state_name(gs.state);
      ImGui::ProgressBar(running ? frac : 1.0f, ImVec2(-1, 0), text.c_str());
    }
    section_header("DIFFERENCE VIEW");
    ImGui::SetNextItemWidth(-90);
    if (ImGui::SliderFloat("Gain", &c.gain, 1.0f, 64.0f, "%.1fx", ImGuiSliderFlags_Logarithmic)) mark_dirty(app);
    ImGui::TextDisabled("%s", glyphs("black = equal; yellow = |A − B| ≥ 1/gain").c_str());
  }

  next_pane(app, size);
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  if (c.section == 0) draw_classify_main(app, s, avail);
  else draw_generate_main(app, avail);
  end_panes();
}

}  // namespace studio
