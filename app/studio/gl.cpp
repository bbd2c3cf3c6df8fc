#include "app/studio/gl.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace studio {

namespace fs = std::filesystem;

GlTexture& GlTexture::operator=(GlTexture&& o) noexcept {
  if (this != &o) {
    release();
    id = o.id;
    width = o.width;
    height = o.height;
    version = o.version;
    o.id = 0;
    o.width = o.height = 0;
  }
  return *this;
}

bool GlTexture::ensure(int w, int h) {
  if (id && w == width && h == height) return false;
  if (!id) glGenTextures(1, &id);
  glBindTexture(GL_TEXTURE_2D, id);
  glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, w, h, 0, GL_RGBA, GL_UNSIGNED_BYTE, nullptr);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_LINEAR);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_LINEAR);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
  width = w;
  height = h;
  return true;
}

void GlTexture::upload(const uint8_t* pixels, int w, int h, int channels) {
  ensure(w, h);
  glBindTexture(GL_TEXTURE_2D, id);
  glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
  glPixelStorei(GL_UNPACK_ROW_LENGTH, 0);
  const GLenum format = channels == 4 ? GL_RGBA : channels == 3 ? GL_BGR : GL_RED;
  glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, w, h, format, GL_UNSIGNED_BYTE, pixels);
  if (channels == 1) {
    const GLint swizzle[4] = {GL_RED, GL_RED, GL_RED, GL_ONE};
    glTexParameteriv(GL_TEXTURE_2D, GL_TEXTURE_SWIZZLE_RGBA, swizzle);
  }
  glPixelStorei(GL_UNPACK_ALIGNMENT, 4);
}

void GlTexture::release() {
  if (id) glDeleteTextures(1, &id);
  id = 0;
  width = height = 0;
}

std::string find_shader_dir(std::string* tried) {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("BLR_SHADER_DIR"); env && *env) candidates.push_back(env);
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = 0;
    candidates.push_back((fs::path(exe).parent_path().parent_path() / "share" / "blr-studio" / "shaders").string());
  }
#ifdef BLR_SHADER_DIR
  candidates.push_back(BLR_SHADER_DIR);
#endif
  std::string list;
  for (const auto& c : candidates) {
    list += (list.empty() ? "" : ", ") + c;
    std::error_code ec;
    if (fs::is_directory(c, ec)) {
      if (tried) *tried = list;
      return c;
    }
  }
  if (tried) *tried = list;
  return {};
}

namespace {

bool read_text(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

GLuint compile(GLenum type, const std::string& path, std::string& error) {
  std::string src;
  if (!read_text(path, src)) {
    error = path + ": cannot read the shader file";
    return 0;
  }
  const GLuint s = glCreateShader(type);
  const char* text = src.c_str();
  glShaderSource(s, 1, &text, nullptr);
  glCompileShader(s);
  GLint ok = 0;
  glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
  if (!ok) {
    GLint len = 0;
    glGetShaderiv(s, GL_INFO_LOG_LENGTH, &len);
    std::string log(static_cast<size_t>(std::max(len, 1)), '\0');
    glGetShaderInfoLog(s, len, nullptr, log.data());
    while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
    error = path + ": compile error:\n" + log;
    glDeleteShader(s);
    return 0;
  }
  return s;
}

}  // namespace

ShaderProgram build_program(const std::string& dir, const std::string& name, const std::string& vert,
                            const std::string& frag) {
  ShaderProgram p;
  p.name = name;
  if (dir.empty()) {
    p.error = "no shader folder found (set BLR_SHADER_DIR)";
    return p;
  }
  const GLuint vs = compile(GL_VERTEX_SHADER, (fs::path(dir) / vert).string(), p.error);
  if (!vs) return p;
  const GLuint fs_ = compile(GL_FRAGMENT_SHADER, (fs::path(dir) / frag).string(), p.error);
  if (!fs_) {
    glDeleteShader(vs);
    return p;
  }
  const GLuint prog = glCreateProgram();
  glAttachShader(prog, vs);
  glAttachShader(prog, fs_);
  glLinkProgram(prog);
  glDeleteShader(vs);
  glDeleteShader(fs_);
  GLint ok = 0;
  glGetProgramiv(prog, GL_LINK_STATUS, &ok);
  if (!ok) {
    GLint len = 0;
    glGetProgramiv(prog, GL_INFO_LOG_LENGTH, &len);
    std::string log(static_cast<size_t>(std::max(len, 1)), '\0');
    glGetProgramInfoLog(prog, len, nullptr, log.data());
    while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
    p.error = name + ": link error:\n" + log;
    glDeleteProgram(prog);
    return p;
  }
  p.id = prog;
  return p;
}

void RenderTarget::ensure(int w, int h) {
  w = std::max(w, 1);
  h = std::max(h, 1);
  if (fbo && w == width && h == height) return;
  if (!fbo) {
    glGenFramebuffers(1, &fbo);
    glGenTextures(1, &color);
  }
  glBindTexture(GL_TEXTURE_2D, color);
  glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, w, h, 0, GL_RGBA, GL_UNSIGNED_BYTE, nullptr);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
  glBindFramebuffer(GL_FRAMEBUFFER, fbo);
  glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, color, 0);
  glBindFramebuffer(GL_FRAMEBUFFER, 0);
  width = w;
  height = h;
}

void RenderTarget::release() {
  if (fbo) glDeleteFramebuffers(1, &fbo);
  if (color) glDeleteTextures(1, &color);
  fbo = color = 0;
  width = height = 0;
}

GLuint empty_vertex_array() {
  static GLuint vao = 0;
  if (!vao) glGenVertexArrays(1, &vao);
  return vao;
}

std::vector<uint8_t> read_framebuffer(int w, int h) {
  std::vector<uint8_t> pixels(static_cast<size_t>(w) * h * 4);
  glBindFramebuffer(GL_FRAMEBUFFER, 0);
  glReadBuffer(GL_BACK);
  glPixelStorei(GL_PACK_ALIGNMENT, 1);
  glReadPixels(0, 0, w, h, GL_RGBA, GL_UNSIGNED_BYTE, pixels.data());
  // GL rows are bottom-up; images are top-down.
  const size_t row = static_cast<size_t>(w) * 4;
  std::vector<uint8_t> tmp(row);
  for (int y = 0; y < h / 2; ++y) {
    uint8_t* a = pixels.data() + static_cast<size_t>(y) * row;
    uint8_t* b = pixels.data() + static_cast<size_t>(h - 1 - y) * row;
    std::copy(a, a + row, tmp.data());
    std::copy(b, b + row, a);
    std::copy(tmp.data(), tmp.data() + row, b);
  }
  return pixels;
}

static std::string gl_string(GLenum what) {
  const auto* s = reinterpret_cast<const char*>(glGetString(what));
  return s ? s : "";
}
std::string gl_vendor() { return gl_string(GL_VENDOR); }
std::string gl_renderer() { return gl_string(GL_RENDERER); }
std::string gl_version() { return gl_string(GL_VERSION); }

}  // namespace studio
