// Getting device images into OpenGL textures. When the GL context runs on NVIDIA's driver and the
// engine uses the CUDA backend, a texture is registered with CUDA once (cudaGraphicsGLRegisterImage)
// and each new image is copied device-to-device into its array — no trip through host memory. Anywhere
// else (Mesa, llvmpipe under Xvfb, the CPU backend, a registration that fails) the caller uploads the
// host copy with glTexSubImage2D instead; the reason is kept for the overlay.
#pragma once

#include <map>
#include <string>

#include "app/studio/gl.h"
#include "engine/core/tensor.h"

namespace studio {

class Interop {
 public:
  // Decides whether interop can be used: CUDA backend, GL vendor NVIDIA, not disabled.
  void init(bool cuda_backend, bool disabled);
  bool enabled() const { return enabled_; }
  const std::string& reason() const { return reason_; }  // why it is off, or "CUDA–GL interop"
  // Copies a device u8 [1, H, W, 4] or [H, W, 4] image into `tex` (resized as needed). False when it
  // cannot (then the caller falls back to the host copy; the first failure turns interop off).
  bool upload(GlTexture& tex, const blr::Tensor& device_rgba);
  int uploads() const { return uploads_; }
  double last_ms() const { return last_ms_; }
  void release();  // unregisters every texture (before the GL context goes)

 private:
  bool enabled_ = false;
  std::string reason_ = "not initialised";
  std::map<unsigned, void*> registered_;  // GL texture id -> cudaGraphicsResource_t
  std::map<unsigned, std::pair<int, int>> sizes_;
  int uploads_ = 0;
  double last_ms_ = 0;
};

}  // namespace studio
