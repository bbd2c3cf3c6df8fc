#include "app/studio/image_view.h"

#include <algorithm>
#include <cmath>

#include "app/studio/widgets.h"

namespace studio {

namespace {
constexpr float kBackground[3] = {0.085f, 0.09f, 0.105f};
ImTextureID as_id(GLuint tex) { return reinterpret_cast<ImTextureID>(static_cast<intptr_t>(tex)); }
}  // namespace

void Shaders::load() {
  release();
  errors.clear();
  dir = find_shader_dir(&tried);
  if (dir.empty()) {
    errors.push_back("no shader folder found (tried " + tried + "); set BLR_SHADER_DIR");
    return;
  }
  view = build_program(dir, "image_view", "fullscreen.vert", "image_view.frag");
  if (!view.ok()) errors.push_back(view.error);
  diff = build_program(dir, "diff_heatmap", "fullscreen.vert", "diff_heatmap.frag");
  if (!diff.ok()) errors.push_back(diff.error);
}

void Shaders::release() {
  if (view.id) glDeleteProgram(view.id);
  if (diff.id) glDeleteProgram(diff.id);
  view = ShaderProgram{};
  diff = ShaderProgram{};
}

void empty_view(const char* id, ImVec2 size, const char* message) {
  const std::string shown = glyphs(message);
  const char* text = shown.c_str();
  const ImVec2 pos = ImGui::GetCursorScreenPos();
  size.x = std::max(size.x, 16.0f);
  size.y = std::max(size.y, 16.0f);
  ImGui::InvisibleButton(id, size);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  dl->AddRectFilled(pos, ImVec2(pos.x + size.x, pos.y + size.y),
                    ImGui::GetColorU32(ImVec4(kBackground[0], kBackground[1], kBackground[2], 1.0f)), 6.0f);
  const ImVec2 ts = ImGui::CalcTextSize(text, nullptr, false, size.x - 40);
  dl->AddText(nullptr, 0.0f, ImVec2(pos.x + (size.x - ts.x) * 0.5f, pos.y + (size.y - ts.y) * 0.5f),
              ImGui::GetColorU32(ImGuiCol_TextDisabled), text, nullptr, size.x - 40);
}

ViewRect image_view(const char* id, ViewState& state, const GlTexture& image, ImVec2 size, RenderTarget& target,
                    const Shaders& shaders, const GlTexture* b, float gain) {
  ViewRect r;
  if (!image.valid()) {
    empty_view(id, size, "no image");
    return r;
  }
  const ImVec2 pos = ImGui::GetCursorScreenPos();
  size.x = std::max(std::floor(size.x), 16.0f);
  size.y = std::max(std::floor(size.y), 16.0f);
  ImGui::InvisibleButton(id, size, ImGuiButtonFlags_MouseButtonLeft | ImGuiButtonFlags_MouseButtonMiddle);
  ImGuiIO& io = ImGui::GetIO();
  r.hovered = ImGui::IsItemHovered();
  const float iw = static_cast<float>(image.width), ih = static_cast<float>(image.height);
  const float fit = std::min(size.x / iw, size.y / ih);
  const ImVec2 centre(pos.x + size.x * 0.5f, pos.y + size.y * 0.5f);

  // Input: wheel zooms around the cursor (the image point under it stays put), drag pans.
  if (r.hovered && io.MouseWheel != 0.0f) {
    const float old_scale = fit * state.zoom;
    state.zoom = std::clamp(state.zoom * std::pow(1.15f, io.MouseWheel), 0.05f, 256.0f);
    const float k = fit * state.zoom / old_scale;
    const ImVec2 m(io.MousePos.x - centre.x, io.MousePos.y - centre.y);
    state.pan = ImVec2(m.x - (m.x - state.pan.x) * k, m.y - (m.y - state.pan.y) * k);
  }
  if (ImGui::IsItemActive() && (ImGui::IsMouseDragging(ImGuiMouseButton_Left, 1.0f) ||
                                ImGui::IsMouseDragging(ImGuiMouseButton_Middle, 1.0f))) {
    state.pan.x += io.MouseDelta.x;
    state.pan.y += io.MouseDelta.y;
  }
  if (r.hovered && ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) {
    state.zoom = 1.0f;
    state.pan = ImVec2(0, 0);
  }
  const float scale = fit * state.zoom;
  r.min = pos;
  r.max = ImVec2(pos.x + size.x, pos.y + size.y);
  r.scale = scale;
  r.image_min = ImVec2(centre.x + state.pan.x - iw * scale * 0.5f, centre.y + state.pan.y - ih * scale * 0.5f);
  r.image_max = ImVec2(r.image_min.x + iw * scale, r.image_min.y + ih * scale);

  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ShaderProgram& prog = b ? shaders.diff : shaders.view;
  const bool diff_ok = !b || (b->valid() && b->width == image.width && b->height == image.height);
  if (prog.ok() && diff_ok) {
    const ImVec2 fb = io.DisplayFramebufferScale;
    const int fw = static_cast<int>(size.x * fb.x), fh = static_cast<int>(size.y * fb.y);
    target.ensure(fw, fh);
    GLint prev_fbo = 0, prev_viewport[4];
    glGetIntegerv(GL_FRAMEBUFFER_BINDING, &prev_fbo);
    glGetIntegerv(GL_VIEWPORT, prev_viewport);
    glBindFramebuffer(GL_FRAMEBUFFER, target.fbo);
    glViewport(0, 0, fw, fh);
    glDisable(GL_SCISSOR_TEST);
    glDisable(GL_BLEND);
    glDisable(GL_DEPTH_TEST);
    glUseProgram(prog.id);
    glUniform2f(prog.uniform("u_view"), static_cast<float>(fw), static_cast<float>(fh));
    glUniform2f(prog.uniform("u_image_size"), iw, ih);
    glUniform2f(prog.uniform("u_pan"), state.pan.x * fb.x, state.pan.y * fb.y);
    glUniform1f(prog.uniform("u_scale"), scale * fb.x);
    glUniform3f(prog.uniform("u_background"), kBackground[0], kBackground[1], kBackground[2]);
    glActiveTexture(GL_TEXTURE0);
    glBindTexture(GL_TEXTURE_2D, image.id);
    const GLint filter = state.nearest ? GL_NEAREST : GL_LINEAR;
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, filter);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, filter);
    if (b) {
      glUniform1i(prog.uniform("u_a"), 0);
      glActiveTexture(GL_TEXTURE1);
      glBindTexture(GL_TEXTURE_2D, b->id);
      glUniform1i(prog.uniform("u_b"), 1);
      glUniform1f(prog.uniform("u_gain"), gain);
    } else {
      glUniform1i(prog.uniform("u_image"), 0);
      glUniform1i(prog.uniform("u_nearest"), state.nearest ? 1 : 0);
    }
    glBindVertexArray(empty_vertex_array());
    glDrawArrays(GL_TRIANGLES, 0, 3);
    glBindVertexArray(0);
    glActiveTexture(GL_TEXTURE0);
    glUseProgram(0);
    glBindFramebuffer(GL_FRAMEBUFFER, static_cast<GLuint>(prev_fbo));
    glViewport(prev_viewport[0], prev_viewport[1], prev_viewport[2], prev_viewport[3]);
    // The target's rows are bottom-up: flip v.
    dl->AddImage(as_id(target.color), r.min, r.max, ImVec2(0, 1), ImVec2(1, 0));
  } else {
    dl->PushClipRect(r.min, r.max, true);
    dl->AddRectFilled(r.min, r.max, ImGui::GetColorU32(ImVec4(kBackground[0], kBackground[1], kBackground[2], 1)));
    if (b) {
      const char* text = diff_ok ? "difference view unavailable: the heat-map shader did not build (see Messages)"
                                 : "difference view needs two images of the same size";
      const ImVec2 ts = ImGui::CalcTextSize(text, nullptr, false, size.x - 20);
      dl->AddText(nullptr, 0.0f, ImVec2(centre.x - ts.x * 0.5f, centre.y - ts.y * 0.5f),
                  ImGui::GetColorU32(ImGuiCol_TextDisabled), text, nullptr, size.x - 20);
    } else {
      glBindTexture(GL_TEXTURE_2D, image.id);
      const GLint filter = state.nearest ? GL_NEAREST : GL_LINEAR;
      glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, filter);
      glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, filter);
      dl->AddImage(as_id(image.id), r.image_min, r.image_max);
    }
    dl->PopClipRect();
  }
  return r;
}

}  // namespace studio
