#include "engine/io/png.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "engine/core/error.h"

#if defined(BLR_HAVE_STB)
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#endif

namespace blr {

bool png_supported() {
#if defined(BLR_HAVE_STB)
  return true;
#else
  return false;
#endif
}

uint32_t crc32_png(const uint8_t* data, size_t size, uint32_t crc) {
  static uint32_t table[256];
  static const bool ready = [] {
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[n] = c;
    }
    return true;
  }();
  (void)ready;
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

namespace {

const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}
uint32_t get_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::vector<uint8_t> text_chunk(const std::string& key, const std::string& text) {
  if (key.empty() || key.size() > 79) throw InputError(cat("PNG text keyword '", key, "' must be 1-79 characters"));
  for (unsigned char ch : key)
    if (ch < 32 || (ch > 126 && ch < 161)) throw InputError(cat("PNG text keyword '", key, "' has a non-printable character"));
  if (text.find('\0') != std::string::npos) throw InputError(cat("PNG text for '", key, "' contains a NUL byte"));
  std::vector<uint8_t> body = {'t', 'E', 'X', 't'};
  body.insert(body.end(), key.begin(), key.end());
  body.push_back(0);
  body.insert(body.end(), text.begin(), text.end());
  std::vector<uint8_t> chunk;
  put_u32(chunk, static_cast<uint32_t>(body.size() - 4));
  chunk.insert(chunk.end(), body.begin(), body.end());
  put_u32(chunk, crc32_png(body.data(), body.size()));
  return chunk;
}

// Walks chunks, checking bounds and CRCs; calls f(type, data, length) for each.
template <typename F>
void walk_chunks(const uint8_t* data, size_t size, const std::string& label, F&& f) {
  if (size < 8 || std::memcmp(data, kSignature, 8) != 0) throw InputError(cat(label, ": not a PNG file (bad signature)"));
  size_t pos = 8;
  bool seen_end = false;
  while (pos < size && !seen_end) {
    if (size - pos < 12) throw InputError(cat(label, ": truncated PNG chunk at byte ", pos));
    const uint32_t len = get_u32(data + pos);
    if (len > size - pos - 12) throw InputError(cat(label, ": PNG chunk at byte ", pos, " runs past the end of the file"));
    const uint8_t* type = data + pos + 4;
    const uint32_t crc = get_u32(data + pos + 8 + len);
    if (crc32_png(type, len + 4) != crc)
      throw InputError(cat(label, ": CRC mismatch in PNG chunk '", std::string(reinterpret_cast<const char*>(type), 4),
                           "' at byte ", pos));
    const std::string t(reinterpret_cast<const char*>(type), 4);
    f(t, data + pos + 8, len);
    seen_end = t == "IEND";
    pos += 12 + len;
  }
  if (!seen_end) throw InputError(cat(label, ": PNG has no IEND chunk (truncated file?)"));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(cat(path, ": cannot open"));
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

std::vector<uint8_t> encode_png(const uint8_t* pixels, int width, int height, int channels, const PngText& text) {
  if (width <= 0 || height <= 0 || channels < 1 || channels > 4)
    throw InputError(cat("PNG: bad image size ", width, "x", height, "x", channels));
  std::vector<std::vector<uint8_t>> chunks;
  for (const auto& [k, v] : text) chunks.push_back(text_chunk(k, v));
#if defined(BLR_HAVE_STB)
  int len = 0;
  unsigned char* png = stbi_write_png_to_mem(pixels, width * channels, width, height, channels, &len);
  if (!png || len < 33) {
    if (png) STBIW_FREE(png);
    throw Error("PNG encoding failed (stb_image_write)");
  }
  // Signature (8) + IHDR chunk (4 + 4 + 13 + 4 = 25): text chunks go right after.
  const size_t after_ihdr = 33;
  std::vector<uint8_t> out(png, png + after_ihdr);
  for (const auto& c : chunks) out.insert(out.end(), c.begin(), c.end());
  out.insert(out.end(), png + after_ihdr, png + len);
  STBIW_FREE(png);
  return out;
#else
  (void)pixels;
  throw Error("PNG output is not available: built without stb_image_write.h (install libstb-dev)");
#endif
}

void write_png(const std::string& path, const Tensor& image, const PngText& text) {
  Tensor img = image.ndim() == 4 && image.dim(0) == 1 ? image.select(0, 0) : image;
  BLR_CHECK(img.ndim() == 3 && img.dtype() == DType::U8 && img.device() == Device::CPU,
            "write_png: need a host u8 [H, W, C] image, got ", image.describe());
  if (!img.is_contiguous()) img = img.clone();
  const std::vector<uint8_t> bytes = encode_png(img.data_as<const uint8_t>(), static_cast<int>(img.dim(1)),
                                                static_cast<int>(img.dim(0)), static_cast<int>(img.dim(2)), text);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw InputError(cat(path, ": cannot write: ", std::strerror(errno)));
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw Error(cat(path, ": write failed"));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(cat(path, ": cannot rename the temporary file into place: ", std::strerror(errno)));
  }
}

PngText parse_png_text(const uint8_t* data, size_t size, const std::string& label) {
  PngText out;
  walk_chunks(data, size, label, [&](const std::string& type, const uint8_t* body, uint32_t len) {
    if (type != "tEXt") return;
    const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(body, 0, len));
    if (!nul || nul == body) throw InputError(cat(label, ": malformed tEXt chunk (no keyword)"));
    out.emplace_back(std::string(reinterpret_cast<const char*>(body), nul - body),
                     std::string(reinterpret_cast<const char*>(nul + 1), body + len - nul - 1));
  });
  return out;
}

PngText read_png_text(const std::string& path) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  return parse_png_text(bytes.data(), bytes.size(), path);
}

std::pair<int, int> png_size(const std::string& path) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  std::pair<int, int> wh{0, 0};
  walk_chunks(bytes.data(), bytes.size(), path, [&](const std::string& type, const uint8_t* body, uint32_t len) {
    if (type == "IHDR" && len >= 8) wh = {static_cast<int>(get_u32(body)), static_cast<int>(get_u32(body + 4))};
  });
  if (wh.first == 0) throw InputError(cat(path, ": PNG without IHDR"));
  return wh;
}

Tensor image_grid(const Tensor& images) {
  BLR_CHECK(images.ndim() == 4 && images.dtype() == DType::U8 && images.device() == Device::CPU,
            "image_grid: need host u8 [B, H, W, C], got ", images.describe());
  const Tensor src = images.is_contiguous() ? images : images.clone();
  const int64_t B = src.dim(0), H = src.dim(1), W = src.dim(2), C = src.dim(3);
  const int64_t cols = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(B))));
  const int64_t rows = (B + cols - 1) / cols;
  const size_t bytes = static_cast<size_t>(rows * H * cols * W * C);
  std::shared_ptr<void> mem(::operator new(bytes), [](void* p) { ::operator delete(p); });
  Tensor out = Tensor::from_blob(mem.get(), {rows * H, cols * W, C}, DType::U8, Device::CPU, mem);
  uint8_t* d = out.data_as<uint8_t>();
  for (size_t i = 0; i < bytes; ++i) d[i] = (C == 4 && i % 4 == 3) ? 255 : 0;
  const uint8_t* s = src.data_as<const uint8_t>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t r0 = (b / cols) * H, c0 = (b % cols) * W;
    for (int64_t y = 0; y < H; ++y)
      std::memcpy(d + ((r0 + y) * cols * W + c0) * C, s + ((b * H + y) * W) * C, static_cast<size_t>(W * C));
  }
  return out;
}

}  // namespace blr
