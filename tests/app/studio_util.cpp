#include "tests/app/studio_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/io/frame_source.h"
#include "tests/common/test_util.h"

namespace blr::test {

namespace fs = std::filesystem;

namespace {

bool have_xvfb_run() { return std::system("command -v xvfb-run > /dev/null 2>&1") == 0; }

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string studio_binary() { return std::string(BLR_BINARY_DIR) + "/app/studio/blr-studio"; }

std::string studio_unavailable() {
  if (!fs::exists(studio_binary())) return "blr-studio is not built (ImGui/GLFW/OpenGL missing or BLR_BUILD_STUDIO=OFF)";
  const char* display = std::getenv("DISPLAY");
  if ((!display || !*display) && !have_xvfb_run()) return "no X display and no xvfb-run";
  return "";
}

StudioRun run_studio_script(const std::string& dir, const std::string& script, const std::string& config_dir,
                            const std::string& env, const std::string& args) {
  StudioRun r;
  r.dir = dir;
  fs::create_directories(dir);
  const std::string script_path = dir + "/script.txt";
  write_file(script_path, script);
  const std::string out = dir + "/out";
  fs::remove_all(out);
  const std::string config = config_dir.empty() ? dir + "/config" : config_dir;
  std::string cmd;
  // Leak reports from the GL driver (Mesa) are not ours; sanitizer builds keep every other check.
  cmd += "ASAN_OPTIONS=detect_leaks=0 " + env + " ";
  const char* display = std::getenv("DISPLAY");
  if (!display || !*display) {
    // A private server per test process: a display number from the pid, so parallel tests do not collide.
    const int num = 100 + static_cast<int>(getpid() % 800);
    cmd += "xvfb-run -n " + std::to_string(num) + " -s '-screen 0 1600x1000x24 -nolisten tcp -noreset' ";
  }
  cmd += "'" + studio_binary() + "' --headless --script '" + script_path + "' --screenshot-dir '" + out +
         "' --config-dir '" + config + "' --size 1480x920 " + args + " > '" + dir + "/log.txt' 2>&1";
  const int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.log = slurp(dir + "/log.txt");
  const std::string state = out + "/state.json";
  if (fs::exists(state)) r.state = nlohmann::json::parse(slurp(state));
  return r;
}

double region_stddev(const std::string& png, int x, int y, int w, int h) {
  const Tensor img = read_image_bgr(png);
  const int H = static_cast<int>(img.dim(0)), W = static_cast<int>(img.dim(1));
  x = std::max(0, x);
  y = std::max(0, y);
  w = std::min(w, W - x);
  h = std::min(h, H - y);
  if (w <= 0 || h <= 0) return 0;
  const uint8_t* p = img.data_as<const uint8_t>();
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  for (int yy = y; yy < y + h; ++yy)
    for (int xx = x; xx < x + w; ++xx)
      for (int c = 0; c < 3; ++c) {
        const double v = p[(static_cast<int64_t>(yy) * W + xx) * 3 + c];
        sum += v;
        sum2 += v * v;
        ++n;
      }
  const double mean = sum / static_cast<double>(n);
  return std::sqrt(std::max(0.0, sum2 / static_cast<double>(n) - mean * mean));
}

}  // namespace blr::test
