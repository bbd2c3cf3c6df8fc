// Headless mode: `blr-studio --headless --script FILE --screenshot-dir DIR` runs a script of UI actions in
// a real GLFW window (Xvfb in CI) and exits with a non-zero status on any error. One command per line,
// '#' starts a comment, ${NAME} is replaced by the environment variable NAME:
//   tab NAME                      switch to Generate / Classify / Compare / Models
//   set FIELD VALUE               set a field (the names in the state JSON's "fields"), e.g. set generate.steps 10
//   press ACTION [ARGS...]        do what a button does, e.g. press generate, press models.load
//   key KEYS                      press a shortcut through ImGui's input, e.g. key ctrl+enter, key F1, key space
//   wait_idle [SECONDS]           until nothing loads, generates or classifies (default 300 s)
//   wait_until POINTER OP VALUE [SECONDS]   until the state JSON satisfies it, e.g. wait_until /classify/classified >= 5
//   wait_frames N | sleep SECONDS
//   screenshot FILE               PNG of the whole window (relative to the screenshot dir)
//   state FILE                    the state JSON, with every classified frame (relative to the screenshot dir)
//   expect POINTER OP VALUE       fail unless the state satisfies it; OP: == != < <= > >= contains
//   expect_message TEXT           fail unless a message contains TEXT; also marks such error messages as expected
//   resize W H | quit
// Exit status: 0 success; 1 a command failed (the line and why go to stderr); 2 the script could not be
// read; 3 the app reported an error message the script did not expect (expect_message).
#pragma once

#include <cstddef>
#include <cstdint>
#include <chrono>
#include <string>
#include <vector>

namespace studio {

struct App;

class ScriptRunner {
 public:
  bool load(const std::string& path, const std::string& screenshot_dir, std::string* error);
  // Called once per frame: before ImGui's new frame (injects keys), after polling the tasks (runs
  // commands), after rendering (takes screenshots).
  void before_new_frame(App& app);
  void before_frame(App& app);
  void after_render(App& app, int fb_width, int fb_height);
  bool finished() const { return finished_; }
  int exit_code(const App& app) const;

 private:
  struct Command {
    int line = 0;
    std::string verb;
    std::vector<std::string> args;
    std::string rest;  // everything after the verb, trimmed
  };
  bool step(App& app);  // runs the current command; true when it completed
  void fail(const std::string& why);
  std::string out_path(const std::string& name) const;

  std::vector<Command> commands_;
  size_t pc_ = 0;
  std::string dir_;
  bool finished_ = false;
  bool failed_ = false;
  std::string error_;
  // State of the command in progress.
  bool started_ = false;
  std::chrono::steady_clock::time_point began_;
  int frames_ = 0;
  int idle_frames_ = 0;
  bool capture_pending_ = false;
  std::string capture_path_;
  std::vector<int> keys_down_;   // keys pressed this frame, released on the next
  std::vector<int> keys_to_press_;
  std::vector<std::string> expected_;  // expect_message patterns
};

}  // namespace studio
