// blr demo: the demo-shapes pictures of the built-in demo models (docs/MODELS.md), drawn by the C++
// renderer (engine/demo).
//   blr demo pictures --out DIR [--count 100] [--seed 7] [--size 32]
//       PNG files NNNNN_<class>.png (classes cycle through all ten), labels.txt, index.csv
//   blr demo video --out assets/demo_video.avi [--size 128] [--fps 12] [--seconds-per-class 1] [--seed 7]
//       MJPG video of moving pictures, one class after another
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "app/cli/args.h"
#include "app/cli/command.h"
#include "engine/demo/demo_shapes.h"
#include "engine/demo/demo_video.h"
#include "engine/io/png.h"

namespace blr::cli {

namespace {

namespace fs = std::filesystem;

int write_pictures(const Args& args, int size) {
  const int count = args.get_int("count");
  if (count < 1 || count > 1000000) throw UsageError(cat("--count ", count, ": must be in 1..1000000"));
  if (size < 8 || size > 4096) throw UsageError(cat("--size ", size, ": must be in 8..4096"));
  const int64_t seed = args.get_int64("seed");
  if (seed < 0) throw UsageError(cat("--seed ", seed, ": must be >= 0"));
  const std::string dir = args.get("out");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) throw InputError(cat(dir, ": cannot create the output directory"));
  const auto& names = demo::class_names();
  std::ofstream labels(dir + "/labels.txt"), index(dir + "/index.csv");
  if (!labels || !index) throw InputError(cat(dir, ": cannot write labels.txt / index.csv"));
  for (const auto& n : names) labels << n << "\n";
  index << "file,class,name\n";
  demo::ShapeSampler sampler(static_cast<uint64_t>(seed));
  for (int i = 0; i < count; ++i) {
    const demo::ShapeParams p = sampler.sample(i % demo::kNumClasses);
    char file[64];
    std::snprintf(file, sizeof file, "%05d_%s.png", i, names[p.cls].c_str());
    write_png(dir + "/" + file, demo::render(p, size), {{"Software", "BLR Studio demo shapes"}});
    index << file << "," << p.cls << "," << names[p.cls] << "\n";
  }
  std::printf("wrote %d demo pictures (%dx%d, seed %lld) to %s/ with labels.txt and index.csv\n", count, size, size,
              static_cast<long long>(seed), dir.c_str());
  return 0;
}

int write_video(const Args& args, int size) {
  demo::VideoOptions o;
  o.size = size;
  o.fps = args.get_double("fps");
  o.seconds_per_class = args.get_double("seconds-per-class");
  o.classes = args.get_int("classes");
  const int64_t seed = args.get_int64("seed");
  if (seed < 0) throw UsageError(cat("--seed ", seed, ": must be >= 0"));
  o.seed = static_cast<uint64_t>(seed);
  const int frames = demo::write_video(args.get("out"), o);
  std::error_code ec;
  const auto bytes = fs::file_size(args.get("out"), ec);
  std::printf("wrote %s: %d frames of %dx%d at %.3g fps (MJPG, %lld bytes)\n", args.get("out").c_str(), frames,
              o.size, o.size, o.fps, static_cast<long long>(ec ? 0 : bytes));
  return 0;
}

int run_demo(const std::vector<std::string>& argv) {
  Args args("demo", "Draws the demo-shapes pictures of the built-in demo models: test pictures or the demo video.");
  args.positional("ACTION", "pictures (PNG files) or video (MJPG .avi)")
      .option("out", "PATH", "output directory (pictures) or video file (video)")
      .option("count", "N", "pictures to draw; classes cycle through all ten", "100")
      .option("seed", "N", "random seed", "7")
      .option("size", "N", "picture side in pixels (default 32 for pictures, 128 for the video)")
      .option("fps", "F", "video frames per second", "12")
      .option("seconds-per-class", "S", "video: how long each class is shown", "1")
      .option("classes", "N", "video: how many classes are shown (each once)", "10");
  if (!args.parse(argv)) return 0;
  const std::string action = args.get("ACTION");
  if (!args.has("out")) throw UsageError("blr demo: --out PATH is required");
  const bool video = action == "video";
  const int size = args.has("size") ? args.get_int("size") : (video ? 128 : 32);
  if (action == "pictures") return write_pictures(args, size);
  if (video) return write_video(args, size);
  throw UsageError(cat("blr demo: unknown action '", action, "' (expected pictures or video)"));
}

}  // namespace

BLR_REGISTER_COMMAND(demo, "demo", "draw demo-shapes pictures or the demo video (built-in demo models)", run_demo);

}  // namespace blr::cli
