// Small UI pieces the panels share: the two-pane layout with a draggable splitter, the class picker,
// model-variant combos, top-k bars, and number formatting.
#pragma once

#include <cstddef>
#include <cstdint>
#include <imgui.h>

#include <string>
#include <vector>

#include "app/studio/studio.h"

namespace studio {

// Left control panel (settings.window.panel_width wide, scrolls) | splitter | main area. Call
// begin_panes, draw the panel, next_pane, draw the main area, end_panes.
void begin_panes(App& app, const char* id, ImVec2 size);
void next_pane(App& app, ImVec2 size);
void end_panes();

// Type-to-filter list over class names; returns true when the selection changed.
bool class_picker(App& app, const char* id, int* class_id, float list_height);

// Combo over the modes of loaded models of a kind ("dense", "blast", ...); returns true on change.
bool mode_combo(App& app, const char* label, blr::ModelKind kind, std::string* mode);

// Top-k list: label, probability bar and percentage for each entry (rows of topk_row_height(), no gaps).
float topk_row_height();
void topk_bars(const std::vector<std::string>& labels, const blr::Prediction& p, float width, int max_rows = 5);

// UI text with typographic glyphs (– … − ≥) as written when the loaded font has them, else with their
// ASCII forms: ImGui's built-in font (used when no TrueType font is installed, e.g. a minimal Jetson image
// or the GPU machine) covers Latin-1 only and would draw '?'. load_fonts() says which.
void set_typographic_glyphs(bool available);
bool typographic_glyphs();
std::string glyphs(std::string text);
std::string fmt_ms(double ms);            // "3.21 ms", "412 ms", "1.8 s"
std::string fmt_count(int64_t n);         // "675.1 M", "25.3 k"
std::string fmt_pct(double fraction);     // "97.3%"
void text_right(const char* text);        // right-aligned in the remaining width
void key_value(const char* key, const std::string& value, float key_width = 150.0f);

}  // namespace studio
