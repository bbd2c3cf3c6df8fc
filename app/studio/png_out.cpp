#include "app/studio/png_out.h"

#include "engine/core/error.h"

#if __has_include("engine/io/png.h")
#include "engine/io/png.h"
#define STUDIO_ENGINE_PNG 1
#else
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>
#pragma GCC diagnostic pop
#endif

namespace studio {

bool png_text_supported() {
#ifdef STUDIO_ENGINE_PNG
  return true;
#else
  return false;
#endif
}

void write_png_file(const std::string& path, const blr::Tensor& rgba,
                    const std::vector<std::pair<std::string, std::string>>& text) {
#ifdef STUDIO_ENGINE_PNG
  blr::write_png(path, rgba, text);
#else
  (void)text;
  const blr::Tensor img = rgba.ndim() == 4 ? rgba.select(0, 0) : rgba;
  const blr::Tensor c = img.is_contiguous() ? img : img.clone();
  const int h = static_cast<int>(c.dim(0)), w = static_cast<int>(c.dim(1)), ch = static_cast<int>(c.dim(2));
  if (!stbi_write_png(path.c_str(), w, h, ch, c.data(), w * ch)) throw blr::Error(path + ": cannot write the PNG");
#endif
}

}  // namespace studio
