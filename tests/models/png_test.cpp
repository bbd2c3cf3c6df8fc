// PNG output: text chunks spliced after IHDR survive a round trip, CRCs are right (the IEND chunk's CRC
// is the fixed value 0xAE426082 in every PNG), corruption and truncation are caught, grids tile images.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/error.h"

#include "engine/io/png.h"
#include "tests/common/test_util.h"

namespace blr {
namespace {

TEST(Png, Crc32OfIendIsTheKnownConstant) {
  const uint8_t iend[4] = {'I', 'E', 'N', 'D'};
  EXPECT_EQ(crc32_png(iend, 4), 0xAE426082u);
}

TEST(Png, TextChunksRoundTrip) {
  if (!png_supported()) GTEST_SKIP() << "built without stb_image_write";
  std::vector<uint8_t> px(5 * 3 * 4);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 7);
  const PngText text = {{"parameters", R"({"seed":3,"classes":[207,360],"sampler":"ddpm"})"}, {"Software", "BLR"}};
  const std::vector<uint8_t> png = encode_png(px.data(), 5, 3, 4, text);
  EXPECT_EQ(parse_png_text(png.data(), png.size(), "mem"), text);
  // The first chunk after IHDR is our first tEXt chunk.
  EXPECT_EQ(std::string(png.begin() + 33 + 4, png.begin() + 33 + 8), "tEXt");
}

TEST(Png, WriteReadFileAndSize) {
  if (!png_supported()) GTEST_SKIP() << "built without stb_image_write";
  const std::string dir = test::temp_dir("png_test");
  Tensor img = Tensor::zeros({6, 10, 4}, DType::U8);
  write_png(dir + "/a.png", img, {{"k", "v"}});
  EXPECT_EQ(png_size(dir + "/a.png"), std::make_pair(10, 6));
  EXPECT_EQ(read_png_text(dir + "/a.png"), (PngText{{"k", "v"}}));
}

TEST(Png, CorruptionAndTruncationAreInputErrors) {
  if (!png_supported()) GTEST_SKIP() << "built without stb_image_write";
  std::vector<uint8_t> px(4 * 4 * 3, 128);
  std::vector<uint8_t> png = encode_png(px.data(), 4, 4, 3, {{"parameters", "x"}});
  std::vector<uint8_t> bad = png;
  bad[33 + 8 + 2] ^= 0x40;  // inside the tEXt body: its CRC no longer matches
  EXPECT_THROW(parse_png_text(bad.data(), bad.size(), "bad"), InputError);
  EXPECT_THROW(parse_png_text(png.data(), png.size() - 5, "short"), InputError);
  const uint8_t junk[16] = {1, 2, 3};
  EXPECT_THROW(parse_png_text(junk, sizeof junk, "junk"), InputError);
}

TEST(Png, InvalidKeywordsAreRejected) {
  if (!png_supported()) GTEST_SKIP() << "built without stb_image_write";
  uint8_t px[4] = {0, 0, 0, 255};
  EXPECT_THROW(encode_png(px, 1, 1, 4, {{"", "x"}}), InputError);
  EXPECT_THROW(encode_png(px, 1, 1, 4, {{std::string(80, 'a'), "x"}}), InputError);
  EXPECT_THROW(encode_png(px, 1, 1, 4, {{"k", std::string("a\0b", 3)}}), InputError);
}

TEST(Png, GridTilesImagesRowMajor) {
  Tensor imgs = Tensor::zeros({3, 2, 2, 4}, DType::U8);
  for (int b = 0; b < 3; ++b)
    for (int i = 0; i < 16; ++i) imgs.data_as<uint8_t>()[b * 16 + i] = static_cast<uint8_t>(10 * (b + 1));
  const Tensor g = image_grid(imgs);  // 3 images -> 2 columns, 2 rows
  ASSERT_EQ(g.shape(), Shape({4, 4, 4}));
  EXPECT_EQ(g.at({0, 0, 0}), 10);
  EXPECT_EQ(g.at({0, 2, 0}), 20);
  EXPECT_EQ(g.at({2, 0, 0}), 30);
  EXPECT_EQ(g.at({2, 2, 0}), 0);    // padding is black
  EXPECT_EQ(g.at({2, 2, 3}), 255);  // and opaque
}

}  // namespace
}  // namespace blr
