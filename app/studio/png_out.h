// PNG output for the studio: screenshots and saved images. Uses the engine's writer (engine/io/png.h:
// stb_image_write plus tEXt chunks) when it is built; until then screenshots still work through
// stb_image_write directly, without text chunks.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"

namespace studio {

// Writes host u8 [H, W, 4] (or [1, H, W, 4]) with tEXt (keyword, text) chunks. Throws blr::Error.
void write_png_file(const std::string& path, const blr::Tensor& rgba,
                    const std::vector<std::pair<std::string, std::string>>& text);
// Whether text chunks are written (the engine writer is built).
bool png_text_supported();

}  // namespace studio
