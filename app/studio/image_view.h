// The image view: a region of the window that shows one texture with zoom (mouse wheel, around the
// cursor), pan (drag), fit (double-click or R) and nearest/linear sampling, drawn by the GLSL program in
// shaders/image_view.frag into an offscreen target that ImGui then places. With a second texture it draws
// the |A − B| heat map (shaders/diff_heatmap.frag) instead. Several views can share one ViewState so
// side-by-side images zoom and pan together. If the shaders failed to build, the view falls back to
// ImGui's own textured quad (zoom/pan still work; the heat map is then unavailable and says so).
#pragma once

#include <imgui.h>

#include <string>
#include <vector>

#include "app/studio/gl.h"

namespace studio {

struct ViewState {
  float zoom = 1.0f;        // relative to "fit the view"
  ImVec2 pan{0.0f, 0.0f};   // image centre offset from the view centre, in screen pixels
  bool nearest = true;      // nearest (exact pixels) or bilinear
};

struct Shaders {
  std::string dir, tried;
  ShaderProgram view, diff;
  std::vector<std::string> errors;  // one entry per failed program (with the compiler log)
  void load();                      // (re)builds both programs from the shader folder
  void release();
};

// Where the image landed on screen (for overlays drawn on top of it).
struct ViewRect {
  ImVec2 min, max;          // the view region
  ImVec2 image_min, image_max;  // the image's rectangle (may extend past the region when zoomed in)
  float scale = 1.0f;       // screen pixels per image pixel
  bool hovered = false;
};

// Draws the view at the cursor with `size` (screen pixels) and handles its input. `b` set: heat map of
// |image − b| with `gain`.
ViewRect image_view(const char* id, ViewState& state, const GlTexture& image, ImVec2 size, RenderTarget& target,
                    const Shaders& shaders, const GlTexture* b = nullptr, float gain = 4.0f);

// A placeholder with centred text, the same size as a view would be.
void empty_view(const char* id, ImVec2 size, const char* text);

}  // namespace studio
