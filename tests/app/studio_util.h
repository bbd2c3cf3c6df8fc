// Running blr-studio headless from a test: finds the binary, provides an X display (the caller's, or a
// private Xvfb through xvfb-run), writes the script, runs it with a fresh config folder and returns the
// exit code, the log and the state JSON the script dumped. Tests skip when the studio was not built or
// no display can be had.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace blr::test {

struct StudioRun {
  int exit_code = -1;
  std::string log;            // stdout + stderr
  std::string dir;            // the run's folder: script.txt, out/ (screenshots, state), config/
  nlohmann::json state;       // out/state.json when the script wrote it
};

// Empty when the studio can run here, else why not (the test then skips).
std::string studio_unavailable();
std::string studio_binary();

// Runs `script` in <dir>. `config_dir` empty: <dir>/config. `env` is prepended to the command
// (e.g. "BLR_SHADER_DIR=/x"). Screenshots and state land in <dir>/out.
StudioRun run_studio_script(const std::string& dir, const std::string& script, const std::string& config_dir = "",
                            const std::string& env = "", const std::string& args = "");

// Standard deviation of the pixels of a PNG inside a rectangle (all channels), and the rectangle's area.
double region_stddev(const std::string& png, int x, int y, int w, int h);

}  // namespace blr::test
