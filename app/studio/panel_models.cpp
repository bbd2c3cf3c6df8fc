// Models tab: load DiT / VAE / ViT files (typed or recent), dense or compressed by a mode's rules (the
// papers' configurations as presets, or custom rules), with progress and per-layer error while
// compressing; the loaded models with their memory; and what each mode would cost for the selected file.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>

#include "app/studio/widgets.h"

namespace studio {

namespace {

const char* kKinds[] = {"DiT", "VAE", "ViT"};
const char* kModes[] = {"dense", "blast", "monarch", "lowrank", "custom"};
const char* kModeHelp[] = {
    "every linear layer as stored",
    "BLAST, the paper's configuration (DiT: b=9; qkv r=384, fc1 r=256, adaLN r=256. ViT: b=3, r=128 on qkv/fc1/fc2), "
    "scaled to the model's width",
    "Monarch with matching parameter counts (DiT: b=4; ViT: b=4, r=128), scaled to the model's width",
    "plain low rank with the same ranks",
    "your own rules: PATTERN=METHOD[:b=B,r=R[,iters=T]], one per line"};

void cost_table(const std::vector<blr::ModeCost>& costs, const char* id) {
  if (costs.empty()) return;
  if (!ImGui::BeginTable(id, 5, ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingStretchProp | ImGuiTableFlags_BordersInnerH))
    return;
  ImGui::TableSetupColumn("mode");
  ImGui::TableSetupColumn("parameters");
  ImGui::TableSetupColumn("bytes");
  ImGui::TableSetupColumn("vs dense");
  ImGui::TableSetupColumn("layers");
  ImGui::TableHeadersRow();
  for (const auto& c : costs) {
    ImGui::TableNextRow();
    ImGui::TableNextColumn();
    ImGui::TextUnformatted(c.mode.c_str());
    ImGui::TableNextColumn();
    ImGui::TextUnformatted(fmt_count(c.params).c_str());
    ImGui::TableNextColumn();
    ImGui::TextUnformatted(blr::format_bytes(c.bytes).c_str());
    ImGui::TableNextColumn();
    if (c.mode == "dense") ImGui::TextDisabled("reference");
    else ImGui::Text("%.2fx smaller", c.ratio);
    ImGui::TableNextColumn();
    if (!c.error.empty()) {
      ImGui::TextColored(ImVec4(1, 0.5f, 0.4f, 1), "invalid");
      if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", c.error.c_str());
    } else {
      ImGui::Text("%d compressed", c.compressed_layers);
    }
  }
  ImGui::EndTable();
}

void layer_table(const std::vector<blr::CompressedLayer>& layers, const char* id, float height) {
  if (layers.empty()) return;
  double worst = 0;
  for (const auto& l : layers) worst = std::max(worst, l.rel_error);
  if (!ImGui::BeginTable(id, 4, ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY | ImGuiTableFlags_SizingStretchProp,
                         ImVec2(0, height)))
    return;
  ImGui::TableSetupScrollFreeze(0, 1);
  ImGui::TableSetupColumn("layer", ImGuiTableColumnFlags_WidthStretch, 3.0f);
  ImGui::TableSetupColumn("spec", ImGuiTableColumnFlags_WidthStretch, 2.0f);
  ImGui::TableSetupColumn("rel. error", ImGuiTableColumnFlags_WidthStretch, 2.0f);
  ImGui::TableSetupColumn("time", ImGuiTableColumnFlags_WidthStretch, 1.0f);
  ImGui::TableHeadersRow();
  for (const auto& l : layers) {
    ImGui::TableNextRow();
    ImGui::TableNextColumn();
    ImGui::TextUnformatted(l.name.c_str());
    ImGui::TableNextColumn();
    ImGui::TextDisabled("%s", l.spec.c_str());
    ImGui::TableNextColumn();
    const ImVec2 p = ImGui::GetCursorScreenPos();
    const float w = ImGui::GetContentRegionAvail().x;
    const float frac = worst > 0 ? static_cast<float>(l.rel_error / worst) : 0.0f;
    ImGui::GetWindowDrawList()->AddRectFilled(p, ImVec2(p.x + w * frac, p.y + ImGui::GetTextLineHeight()),
                                              accent_color(0.3f), 2.0f);
    ImGui::Text("%.4f", l.rel_error);
    ImGui::TableNextColumn();
    ImGui::TextDisabled("%s%s", fmt_ms(l.seconds * 1000.0).c_str(), l.on_gpu ? " gpu" : "");
  }
  ImGui::EndTable();
}

}  // namespace

void draw_models(App& app, ImVec2 size) {
  ModelsSettings& m = app.settings.models;
  const blr::JobStatus job = app.session->job();

  begin_panes(app, "models", size);
  section_header("LOAD A MODEL");
  for (int i = 0; i < 3; ++i) {
    if (i) ImGui::SameLine();
    if (ImGui::RadioButton(kKinds[i], m.kind == i)) {
      m.kind = i;
      app.inspection.reset();
      mark_dirty(app);
    }
  }
  ImGui::SetNextItemWidth(-1);
  const char* hints[] = {"DiT checkpoint (.safetensors / .pt)", "SD-VAE (.safetensors)", "timm ViT (.safetensors)"};
  if (ImGui::InputTextWithHint("##path", hints[m.kind], &m.path[m.kind])) {
    app.inspection.reset();
    mark_dirty(app);
  }
  if (!m.recent[m.kind].empty()) {
    ImGui::SetNextItemWidth(-1);
    if (ImGui::BeginCombo("##recent", glyphs("recent files…").c_str())) {
      for (const auto& r : m.recent[m.kind])
        if (ImGui::Selectable(r.c_str())) {
          m.path[m.kind] = r;
          app.inspection.reset();
          mark_dirty(app);
        }
      ImGui::EndCombo();
    }
  }
  if (m.kind != 1) {
    int mode = 0;
    for (int i = 0; i < 5; ++i)
      if (m.mode == kModes[i]) mode = i;
    ImGui::SetNextItemWidth(-90);
    if (ImGui::Combo("Layers", &mode, kModes, 5)) {
      m.mode = kModes[mode];
      if (app.inspection && m.mode != "custom")
        for (const auto& mr : app.inspection->modes)
          if (mr.mode == m.mode) m.rules = mr.text;
      mark_dirty(app);
    }
    help_marker(kModeHelp[mode]);
    if (m.mode != "dense") {
      const bool custom = m.mode == "custom";
      if (!custom) ImGui::BeginDisabled();
      if (ImGui::InputTextMultiline("##rules", &m.rules, ImVec2(-1, ImGui::GetTextLineHeight() * 4.5f))) mark_dirty(app);
      if (!custom) {
        ImGui::EndDisabled();
        ImGui::TextDisabled(app.inspection ? "rules of this mode for this file" : "Inspect shows this mode's rules");
      }
    }
  }
  const float half = (ImGui::GetContentRegionAvail().x - ImGui::GetStyle().ItemSpacing.x) * 0.5f;
  if (ImGui::Button("Inspect", ImVec2(half, 32))) do_action(app, "models.inspect");
  ImGui::SameLine();
  if (primary_button(m.kind == 1 || m.mode == "dense" ? "Load" : "Compress + load", ImVec2(half, 32)))
    do_action(app, "models.load");

  if (job.running || (job.id != 0 && job.stage == "failed")) {
    section_header(job.running ? "WORKING" : "LAST JOB");
    ImGui::TextWrapped("%s", job.title.c_str());
    if (job.running) {
      const std::string text = job.layers > 0 ? blr::cat(job.stage, " ", job.layer + 1, "/", job.layers) : job.stage;
      ImGui::ProgressBar(static_cast<float>(job.fraction), ImVec2(-1, 0), text.c_str());
      if (!job.layer_name.empty()) ImGui::TextDisabled("%s", job.layer_name.c_str());
      if (ImGui::Button("Cancel", ImVec2(-1, 0))) do_action(app, "models.cancel");
      if (job.queued) ImGui::TextDisabled("%zu more queued", job.queued);
    } else {
      ImGui::PushStyleColor(ImGuiCol_Text, ImVec4(1.0f, 0.45f, 0.4f, 1));
      ImGui::TextWrapped("%s", job.error.c_str());
      ImGui::PopStyleColor();
    }
    layer_table(job.done, "##joblayers", 160);
  }

  section_header("MEMORY BUDGET");
  ImGui::SetNextItemWidth(-80);
  if (ImGui::InputTextWithHint("##budget", "none (e.g. 7.5GiB for an Orin Nano)", &m.budget)) mark_dirty(app);
  ImGui::SameLine();
  if (ImGui::Button("Apply", ImVec2(-1, 0))) do_action(app, "models.budget");
  ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyle().Colors[ImGuiCol_TextDisabled]);
  ImGui::TextWrapped("Per model arena. Loads and runs past it fail with a message instead of running out of memory.");
  ImGui::PopStyleColor();

  next_pane(app, size);
  ImGui::BeginChild("##models_main", ImVec2(0, 0), false, ImGuiWindowFlags_AlwaysUseWindowPadding);
  const auto& models = app.models;
  ImGui::PushFont(app.fonts.large);
  ImGui::TextUnformatted("Loaded models");
  ImGui::PopFont();
  if (models.empty()) {
    ImGui::TextDisabled("None yet. Load a DiT (+ VAE) to generate, a ViT to classify; load a file again with a BLR mode "
                        "to compare it with the dense one.");
  } else if (ImGui::BeginTable("##models", 8,
                               ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerH | ImGuiTableFlags_SizingStretchProp)) {
    ImGui::TableSetupColumn("kind", ImGuiTableColumnFlags_WidthStretch, 0.6f);
    ImGui::TableSetupColumn("file", ImGuiTableColumnFlags_WidthStretch, 2.0f);
    ImGui::TableSetupColumn("mode", ImGuiTableColumnFlags_WidthStretch, 0.9f);
    ImGui::TableSetupColumn("parameters", ImGuiTableColumnFlags_WidthStretch, 1.0f);
    ImGui::TableSetupColumn("weights", ImGuiTableColumnFlags_WidthStretch, 1.0f);
    ImGui::TableSetupColumn("arena now / peak", ImGuiTableColumnFlags_WidthStretch, 1.6f);
    ImGui::TableSetupColumn("load", ImGuiTableColumnFlags_WidthStretch, 0.8f);
    ImGui::TableSetupColumn("", ImGuiTableColumnFlags_WidthStretch, 0.9f);
    ImGui::TableHeadersRow();
    for (const auto& info : models) {
      ImGui::PushID(info.id);
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      const bool selected = info.id == app.selected_model;
      if (ImGui::Selectable(blr::model_kind_name(info.kind), selected, ImGuiSelectableFlags_SpanAllColumns))
        app.selected_model = info.id;
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(info.name.c_str());
      if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s\n%s", info.path.c_str(), info.config.c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(info.mode.c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(fmt_count(info.params).c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(blr::format_bytes(info.weight_bytes).c_str());
      ImGui::TableNextColumn();
      ImGui::Text("%s / %s", blr::format_bytes(info.memory.total).c_str(), blr::format_bytes(info.memory.high_water).c_str());
      ImGui::TableNextColumn();
      ImGui::TextDisabled("%.2f s", info.load_seconds);
      ImGui::TableNextColumn();
      if (ImGui::SmallButton("Unload")) do_action(app, "models.unload", {std::to_string(info.id)});
      ImGui::PopID();
    }
    ImGui::EndTable();
  }

  const blr::ModelInfo* sel = find_model(app, app.selected_model);
  if (sel) {
    ImGui::Spacing();
    ImGui::PushFont(app.fonts.large);
    ImGui::Text("%s", sel->name.c_str());
    ImGui::PopFont();
    ImGui::SameLine();
    ImGui::SetCursorPosY(ImGui::GetCursorPosY() + 10);
    ImGui::TextDisabled("[%s] %s", sel->mode.c_str(), blr::model_kind_name(sel->kind));
    key_value("config", sel->config, 130);
    key_value("layers", sel->variant, 130);
    key_value("storage", blr::cat(blr::dtype_name(sel->dtype), " on ", blr::device_name(sel->device)), 130);
    key_value("arena", sel->memory.summary(), 130);
    if (sel->memory.budget) key_value("budget", blr::format_bytes(*sel->memory.budget), 130);
    if (!sel->rules.empty()) key_value("rules", sel->rules, 130);
    if (sel->can_save) {
      std::string& save_path = app.save_paths[sel->id];
      if (save_path.empty()) save_path = sel->path + "." + sel->mode + ".safetensors";
      ImGui::SetNextItemWidth(-170);
      ImGui::InputText("##savepath", &save_path);
      ImGui::SameLine();
      if (ImGui::Button("Save compressed", ImVec2(-1, 0)))
        do_action(app, "models.save", {std::to_string(sel->id), save_path});
    }
    if (!sel->costs.empty()) {
      section_header("WHAT EACH MODE COSTS FOR THIS FILE");
      cost_table(sel->costs, "##costs");
    }
    if (!sel->compressed.empty()) {
      section_header("COMPRESSED LAYERS (relative Frobenius error of each factorisation)");
      layer_table(sel->compressed, "##layers", std::max(140.0f, ImGui::GetContentRegionAvail().y - 10));
    }
  } else if (app.inspection) {
    ImGui::Spacing();
    section_header("INSPECTED FILE (not loaded)");
    key_value("config", app.inspection->config, 130);
    key_value("parameters", fmt_count(app.inspection->params), 130);
    key_value("linear layers", blr::cat(app.inspection->layers.size()), 130);
    for (const auto& mr : app.inspection->modes)
      if (mr.scaled) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyle().Colors[ImGuiCol_TextDisabled]);
        ImGui::TextWrapped("%s", mr.note.c_str());
        ImGui::PopStyleColor();
        break;
      }
    cost_table(app.inspection->costs, "##inspectcosts");
  }
  ImGui::EndChild();
  end_panes();
}

}  // namespace studio
