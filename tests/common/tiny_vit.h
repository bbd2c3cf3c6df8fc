// The tiny ViT configuration the tests share: the same shape as tools/make_vit_golden.py's timm model in
// tests/data/vit_tiny (32×32 images, patch 8, width 64, depth 2, 2 heads, MLP 256, 10 classes).
#pragma once

#include "engine/models/vit/vit_config.h"

namespace blr::test {

inline VitConfig tiny_vit_config() {
  VitConfig c;
  c.image_size = 32;
  c.patch = 8;
  c.width = 64;
  c.depth = 2;
  c.heads = 2;
  c.mlp_hidden = 256;
  c.num_classes = 10;
  return c;
}

}  // namespace blr::test
