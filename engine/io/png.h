// PNG output through stb_image_write (optional: BLR_HAVE_STB) with text chunks, and a reader for those
// chunks. stb writes no text chunks, so the encoder asks stb for the PNG in memory and splices one tEXt
// chunk per (keyword, text) pair right after IHDR, each with its CRC-32. `blr generate` records every
// generation parameter this way (keyword "parameters", JSON text), so an image carries how it was made.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"

namespace blr {

using PngText = std::vector<std::pair<std::string, std::string>>;

bool png_supported();  // false when built without stb_image_write

// Encodes 8-bit pixels (channels 1-4, rows packed) to PNG bytes with the text chunks. Keywords must be
// 1-79 printable Latin-1 characters; text must not contain NUL (tEXt rules). Throws Error when PNG
// output is not built in, InputError for invalid keywords or text.
std::vector<uint8_t> encode_png(const uint8_t* pixels, int width, int height, int channels, const PngText& text);
// Writes host u8 [H, W, C] (or [1, H, W, C]) to `path` (through a temporary file renamed into place).
void write_png(const std::string& path, const Tensor& image, const PngText& text = {});

// The tEXt chunks of a PNG, in file order. Checks the signature, chunk bounds and every CRC; throws
// InputError "<label>: <problem>" on anything malformed.
PngText parse_png_text(const uint8_t* data, size_t size, const std::string& label);
PngText read_png_text(const std::string& path);
// Width and height from IHDR (same checks).
std::pair<int, int> png_size(const std::string& path);

// CRC-32 (ISO 3309, as PNG uses) of bytes.
uint32_t crc32_png(const uint8_t* data, size_t size, uint32_t crc = 0);

// Tiles host u8 [B, H, W, C] images into one [rows·H, cols·W, C] image (cols = ⌈√B⌉), padding opaque black.
Tensor image_grid(const Tensor& images);

}  // namespace blr
