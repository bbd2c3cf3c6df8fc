// The studio's look: one dark theme with a single teal accent, generous spacing, rounded frames, and a
// readable TrueType font (DejaVu Sans / Noto Sans / Ubuntu from the system, ImGui's built-in font when
// none is installed).
#include <imgui.h>

#include <filesystem>

#include "app/studio/studio.h"
#include "app/studio/widgets.h"

namespace studio {

namespace {

ImVec4 rgb(int r, int g, int b, float a = 1.0f) { return ImVec4(r / 255.0f, g / 255.0f, b / 255.0f, a); }

const char* find_font(const std::vector<const char*>& candidates) {
  for (const char* c : candidates) {
    std::error_code ec;
    if (std::filesystem::exists(c, ec)) return c;
  }
  return nullptr;
}

// Latin-1, Greek (η, σ, ε in labels) and the typographic characters the UI uses (– … → − ≥ ≤).
const ImWchar kRanges[] = {0x0020, 0x00FF, 0x0370, 0x03FF, 0x2010, 0x2027, 0x2190, 0x2193, 0x2212, 0x2212, 0x2264, 0x2265, 0};

}  // namespace

ImU32 accent_color(float alpha) { return ImGui::GetColorU32(rgb(38, 178, 164, alpha)); }

void apply_theme() {
  ImGuiStyle& s = ImGui::GetStyle();
  ImGui::StyleColorsDark(&s);
  s.WindowRounding = 6.0f;
  s.ChildRounding = 6.0f;
  s.FrameRounding = 4.0f;
  s.PopupRounding = 6.0f;
  s.GrabRounding = 4.0f;
  s.TabRounding = 5.0f;
  s.ScrollbarRounding = 6.0f;
  s.WindowBorderSize = 0.0f;
  s.ChildBorderSize = 0.0f;
  s.FrameBorderSize = 0.0f;
  s.WindowPadding = ImVec2(12, 10);
  s.FramePadding = ImVec2(8, 5);
  s.ItemSpacing = ImVec2(8, 7);
  s.ItemInnerSpacing = ImVec2(6, 5);
  s.ScrollbarSize = 12.0f;
  s.GrabMinSize = 10.0f;
  s.IndentSpacing = 16.0f;
  s.CellPadding = ImVec2(6, 3);

  ImVec4* c = s.Colors;
  const ImVec4 bg = rgb(24, 26, 31), panel = rgb(31, 34, 41), frame = rgb(43, 47, 56), frame_hi = rgb(53, 58, 69);
  const ImVec4 accent = rgb(38, 178, 164), accent_hi = rgb(62, 204, 190), accent_lo = rgb(27, 122, 113);
  c[ImGuiCol_Text] = rgb(226, 229, 235);
  c[ImGuiCol_TextDisabled] = rgb(128, 135, 148);
  c[ImGuiCol_WindowBg] = bg;
  c[ImGuiCol_ChildBg] = panel;
  c[ImGuiCol_PopupBg] = rgb(30, 33, 40, 0.98f);
  c[ImGuiCol_Border] = rgb(58, 63, 75);
  c[ImGuiCol_FrameBg] = frame;
  c[ImGuiCol_FrameBgHovered] = frame_hi;
  c[ImGuiCol_FrameBgActive] = rgb(60, 66, 79);
  c[ImGuiCol_TitleBg] = bg;
  c[ImGuiCol_TitleBgActive] = panel;
  c[ImGuiCol_MenuBarBg] = rgb(20, 22, 26);
  c[ImGuiCol_ScrollbarBg] = rgb(0, 0, 0, 0);
  c[ImGuiCol_ScrollbarGrab] = rgb(62, 67, 80);
  c[ImGuiCol_ScrollbarGrabHovered] = rgb(78, 84, 99);
  c[ImGuiCol_ScrollbarGrabActive] = rgb(90, 97, 114);
  c[ImGuiCol_CheckMark] = accent_hi;
  c[ImGuiCol_SliderGrab] = accent;
  c[ImGuiCol_SliderGrabActive] = accent_hi;
  c[ImGuiCol_Button] = frame;
  c[ImGuiCol_ButtonHovered] = frame_hi;
  c[ImGuiCol_ButtonActive] = accent_lo;
  c[ImGuiCol_Header] = rgb(38, 178, 164, 0.22f);
  c[ImGuiCol_HeaderHovered] = rgb(38, 178, 164, 0.32f);
  c[ImGuiCol_HeaderActive] = rgb(38, 178, 164, 0.45f);
  c[ImGuiCol_Separator] = rgb(52, 57, 68);
  c[ImGuiCol_Tab] = panel;
  c[ImGuiCol_TabHovered] = rgb(38, 178, 164, 0.45f);
  c[ImGuiCol_TabActive] = rgb(27, 122, 113);
  c[ImGuiCol_TabUnfocused] = panel;
  c[ImGuiCol_TabUnfocusedActive] = rgb(27, 100, 93);
  c[ImGuiCol_PlotLines] = accent_hi;
  c[ImGuiCol_PlotLinesHovered] = rgb(250, 190, 90);
  c[ImGuiCol_PlotHistogram] = accent;
  c[ImGuiCol_PlotHistogramHovered] = accent_hi;
  c[ImGuiCol_TableHeaderBg] = rgb(38, 42, 51);
  c[ImGuiCol_TableBorderStrong] = rgb(58, 63, 75);
  c[ImGuiCol_TableBorderLight] = rgb(46, 50, 60);
  c[ImGuiCol_TableRowBg] = rgb(0, 0, 0, 0);
  c[ImGuiCol_TableRowBgAlt] = rgb(255, 255, 255, 0.025f);
  c[ImGuiCol_TextSelectedBg] = rgb(38, 178, 164, 0.35f);
  c[ImGuiCol_NavHighlight] = accent;
  c[ImGuiCol_ModalWindowDimBg] = rgb(0, 0, 0, 0.55f);
}

Fonts load_fonts(float size, bool builtin_only) {
  Fonts f;
  ImGuiIO& io = ImGui::GetIO();
  const std::vector<const char*> sans_candidates = {
      "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf",
      "/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
      "/usr/share/fonts/opentype/noto/NotoSans-Regular.ttf", "/usr/share/fonts/truetype/ubuntu/Ubuntu-R.ttf",
      "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"};
  const char* sans = builtin_only ? nullptr : find_font(sans_candidates);
  const char* mono = find_font({"/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
                                "/usr/share/fonts/TTF/DejaVuSansMono.ttf", "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",
                                "/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf",
                                "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf"});
  if (sans) {
    ImFontConfig cfg;
    cfg.OversampleH = 2;
    cfg.OversampleV = 1;
    f.regular = io.Fonts->AddFontFromFileTTF(sans, size, &cfg, kRanges);
    f.large = io.Fonts->AddFontFromFileTTF(sans, size * 1.75f, &cfg, kRanges);
    f.mono = mono ? io.Fonts->AddFontFromFileTTF(mono, size * 0.94f, &cfg, kRanges) : f.regular;
    f.source = sans;
  }
  if (!f.regular) {
    ImFontConfig cfg;
    cfg.SizePixels = 13.0f;
    f.regular = io.Fonts->AddFontDefault(&cfg);
    f.large = f.regular;
    f.mono = f.regular;
    f.source = "ImGui default (no TrueType font found)";
  }
  set_typographic_glyphs(sans != nullptr && f.source == sans);
  io.FontDefault = f.regular;
  return f;
}

void section_header(const char* text) {
  ImGui::Spacing();
  ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyle().Colors[ImGuiCol_TextDisabled]);
  ImGui::TextUnformatted(text);
  ImGui::PopStyleColor();
  const ImVec2 p = ImGui::GetCursorScreenPos();
  ImGui::GetWindowDrawList()->AddLine(ImVec2(p.x, p.y - 3), ImVec2(p.x + ImGui::GetContentRegionAvail().x, p.y - 3),
                                      ImGui::GetColorU32(ImGuiCol_Separator));
  ImGui::Spacing();
}

void help_marker(const char* text) {
  ImGui::SameLine();
  ImGui::TextDisabled("(?)");
  if (ImGui::IsItemHovered()) {
    ImGui::BeginTooltip();
    ImGui::PushTextWrapPos(ImGui::GetFontSize() * 32.0f);
    ImGui::TextUnformatted(text);
    ImGui::PopTextWrapPos();
    ImGui::EndTooltip();
  }
}

bool primary_button(const char* label, ImVec2 size) {
  ImGui::PushStyleColor(ImGuiCol_Button, rgb(27, 122, 113));
  ImGui::PushStyleColor(ImGuiCol_ButtonHovered, rgb(38, 158, 146));
  ImGui::PushStyleColor(ImGuiCol_ButtonActive, rgb(38, 178, 164));
  const bool pressed = ImGui::Button(label, size);
  ImGui::PopStyleColor(3);
  return pressed;
}

}  // namespace studio
