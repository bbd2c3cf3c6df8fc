// OpenGL 3.3 core helpers for the studio: one include point for the GL prototypes (Linux's libOpenGL
// exports every core function, so no loader is needed), textures, shader programs built from the files
// in shaders/ (with the compiler log kept for the UI when one fails), and an offscreen target the image
// views render into before ImGui draws it.
#pragma once

#ifndef GL_GLEXT_PROTOTYPES
#define GL_GLEXT_PROTOTYPES 1
#endif
#include <GL/gl.h>
#include <GL/glext.h>

#include <cstdint>
#include <string>
#include <vector>

namespace studio {

// An RGBA8 2-D texture that keeps its size; re-created when the size changes.
struct GlTexture {
  GLuint id = 0;
  int width = 0, height = 0;
  uint64_t version = 0;  // what the owner last uploaded (e.g. a frame counter)

  GlTexture() = default;
  GlTexture(const GlTexture&) = delete;
  GlTexture& operator=(const GlTexture&) = delete;
  GlTexture(GlTexture&& o) noexcept { *this = std::move(o); }
  GlTexture& operator=(GlTexture&& o) noexcept;
  ~GlTexture() { release(); }

  bool valid() const { return id != 0 && width > 0 && height > 0; }
  // (Re)allocates storage when the size differs; returns true when it did.
  bool ensure(int w, int h);
  // Host pixels, rows packed. channels 4 = RGBA, 3 = BGR (OpenCV frames), 1 = grey.
  void upload(const uint8_t* pixels, int w, int h, int channels);
  void release();
};

// Where the shader files are: $BLR_SHADER_DIR, else <exe>/../share/blr-studio/shaders, else the source
// tree's shaders/ (compiled in). Returns the first folder that exists, and what was tried.
std::string find_shader_dir(std::string* tried);

struct ShaderProgram {
  GLuint id = 0;
  std::string name;   // "image_view"
  std::string error;  // compiler or linker log, with the file name, when building failed
  bool ok() const { return id != 0; }
  GLint uniform(const char* n) const { return glGetUniformLocation(id, n); }
};

// Builds a program from <dir>/<vert> and <dir>/<frag>. Never throws: failures land in `error`.
ShaderProgram build_program(const std::string& dir, const std::string& name, const std::string& vert,
                            const std::string& frag);

// Offscreen colour target for an image view.
struct RenderTarget {
  GLuint fbo = 0, color = 0;
  int width = 0, height = 0;
  void ensure(int w, int h);
  void release();
};

// An empty vertex array: core profiles need one bound to draw the full-screen triangle (vertices come
// from gl_VertexID).
GLuint empty_vertex_array();

// Reads the default framebuffer (w×h) as top-down RGBA rows.
std::vector<uint8_t> read_framebuffer(int w, int h);

std::string gl_vendor();
std::string gl_renderer();
std::string gl_version();

}  // namespace studio
