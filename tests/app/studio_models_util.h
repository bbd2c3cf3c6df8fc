// Tiny random models and inputs for the studio's headless tests (and its documentation screenshots):
// a DiT in original facebookresearch names, an SD-VAE-layout decoder, a timm ViT, and a short video —
// all small enough that the CPU backend runs a whole session in seconds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace blr::test {

// DiT: width 64, depth 2, 4 heads, patch 2, 8x8x4 latent, learned sigma, 10 classes with names.
void write_tiny_dit(const std::string& path, uint64_t seed);
// Any DiT size in the same layout (e.g. DiT-S/2-like: 384, 12, 6, 32 for load and UI measurements).
void write_random_dit(const std::string& path, uint64_t seed, int64_t hidden, int64_t depth, int64_t heads,
                      int64_t latent);
// SD-VAE-style decoder: 4 latent channels, mid width 32 with attention, up blocks 32,32,16,16 (8x).
void write_tiny_vae(const std::string& path, uint64_t seed);
// timm ViT: 32x32 images, patch 8, width 64, depth 2, 2 heads, 10 classes with names.
void write_tiny_vit(const std::string& path, uint64_t seed);
// MJPG .avi of `frames` frames (96x72) of moving coloured shapes; false when OpenCV cannot write one.
bool write_test_video(const std::string& path, int frames);
// The 10 class names the tiny models carry.
const std::vector<std::string>& tiny_class_names();

}  // namespace blr::test
