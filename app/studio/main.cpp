// blr-studio: the interactive app. Parses the command line and hands over to run_studio (app.cpp).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "app/studio/studio.h"

namespace {

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: blr-studio [options]\n"
               "  --dit FILE            load a DiT checkpoint at start\n"
               "  --vae FILE            load an SD-VAE decoder at start\n"
               "  --vit FILE            load a ViT checkpoint at start\n"
               "  --mode MODE           also load the DiT/ViT compressed in MODE (blast, monarch, lowrank) for Compare\n"
               "  --memory-budget SIZE  per-model arena budget, e.g. 7.5GiB\n"
               "  --cpu                 use the CPU backend even with a GPU\n"
               "  --no-interop          upload images through host memory even on NVIDIA GL\n"
               "  --builtin-font        ImGui's built-in font even when a TrueType font is installed\n"
               "  --size WxH            window size (default: last used)\n"
               "  --config-dir DIR      settings folder (default $XDG_CONFIG_HOME/blr-studio or ~/.config/blr-studio)\n"
               "  --headless --script FILE --screenshot-dir DIR\n"
               "                        run a script of UI actions and exit (non-zero on any error)\n"
               "With no model arguments the built-in demo models in assets/models/ are loaded when present.\n");
}

}  // namespace

int main(int argc, char** argv) {
  studio::Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "blr-studio: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (a == "--headless") {
      o.headless = true;
    } else if (a == "--script") {
      o.script = value("--script");
    } else if (a == "--screenshot-dir") {
      o.screenshot_dir = value("--screenshot-dir");
    } else if (a == "--config-dir") {
      o.config_dir = value("--config-dir");
    } else if (a == "--dit") {
      o.dit = value("--dit");
    } else if (a == "--vae") {
      o.vae = value("--vae");
    } else if (a == "--vit") {
      o.vit = value("--vit");
    } else if (a == "--mode") {
      o.mode = value("--mode");
    } else if (a == "--memory-budget") {
      o.budget = value("--memory-budget");
    } else if (a == "--cpu") {
      o.cpu = true;
    } else if (a == "--no-interop") {
      o.no_interop = true;
    } else if (a == "--builtin-font") {
      o.builtin_font = true;
    } else if (a == "--size") {
      const std::string v = value("--size");
      if (std::sscanf(v.c_str(), "%dx%d", &o.width, &o.height) != 2 || o.width < 320 || o.height < 240) {
        std::fprintf(stderr, "blr-studio: --size %s: expected WxH, e.g. 1480x920\n", v.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr, "blr-studio: unknown option '%s'\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (o.headless && o.script.empty()) {
    std::fprintf(stderr, "blr-studio: --headless needs --script FILE\n");
    return 2;
  }
  return studio::run_studio(o);
}
