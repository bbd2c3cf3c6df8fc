// The built-in demo models (docs/MODELS.md): small DiT and ViTs trained on the demo-shapes pictures by
// tools/train_demo.py and shipped in assets/models/, so `blr generate`, `blr classify`, the studio and
// scripts/run.sh do their real job on a fresh machine with nothing to download. This file knows where they
// are and reads the few things they carry in metadata (class names, the sampler settings they were made
// for); the loaders treat them like any other checkpoint.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace blr {
class Checkpoint;
}

namespace blr::demo {

// <assets>/models/demo_dit.safetensors etc. (assets_dir(): BLR_ASSETS_DIR, else the source tree's assets/)
std::string models_dir();
// The pixel-space DiT and the ViT, by layer mode: "dense" (as trained), "monarch" / "blast" (compressed
// from the dense file by tools/make_demo_assets.sh with blr compress, data-free), and for the ViT also
// "blast-trained" (BLAST layers trained from the start). InputError for another mode.
std::string dit_path(const std::string& mode = "dense");
std::string vit_path(const std::string& mode = "dense");
std::vector<std::string> dit_modes();  // dense, monarch, blast
std::vector<std::string> vit_modes();  // dense, monarch, blast, blast-trained
std::string video_path();  // <assets>/demo_video.avi: a few seconds of moving demo pictures

// Path of a demo file that must exist: InputError saying how to get it otherwise (what = "demo DiT", ...).
std::string require(const std::string& path, const std::string& what);

// Class names a model file carries: metadata "class_names" (also "labels", "dit.class_names",
// "vit.class_names"), a JSON array of strings or one name per line. Empty when none.
std::vector<std::string> metadata_class_names(const Checkpoint& ckpt);

// Sampler settings a model file recommends (metadata demo.sampler, demo.steps, demo.cfg); unset when absent.
struct SamplerDefaults {
  std::optional<std::string> sampler;
  std::optional<int> steps;
  std::optional<double> cfg;
};
SamplerDefaults sampler_defaults(const Checkpoint& ckpt);

}  // namespace blr::demo
