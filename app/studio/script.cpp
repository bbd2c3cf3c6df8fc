#include "app/studio/script.h"

#include <GLFW/glfw3.h>
#include <imgui.h>
#include <imgui_impl_glfw.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "app/studio/studio.h"
#include "engine/core/error.h"
#include "engine/io/png.h"

namespace studio {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

std::string unquote(std::string s) {
  if (s.size() >= 2 && ((s.front() == '"' && s.back() == '"') || (s.front() == '\'' && s.back() == '\'')))
    return s.substr(1, s.size() - 2);
  return s;
}

// ${NAME} -> the environment variable (an unset one is an error, so a script never runs half-configured).
std::string expand(const std::string& line, std::string* error) {
  std::string out;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '$' && i + 1 < line.size() && line[i + 1] == '{') {
      const size_t end = line.find('}', i + 2);
      if (end == std::string::npos) {
        *error = "unterminated ${";
        return line;
      }
      const std::string name = line.substr(i + 2, end - i - 2);
      const char* v = std::getenv(name.c_str());
      if (!v) {
        *error = "environment variable " + name + " is not set";
        return line;
      }
      out += v;
      i = end;
    } else {
      out.push_back(line[i]);
    }
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

bool parse_keys(const std::string& spec, std::vector<int>* keys) {
  std::string s;
  for (char c : spec) s.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, '+')) {
    int k = -1;
    if (part == "ctrl") k = GLFW_KEY_LEFT_CONTROL;
    else if (part == "shift") k = GLFW_KEY_LEFT_SHIFT;
    else if (part == "alt") k = GLFW_KEY_LEFT_ALT;
    else if (part == "enter" || part == "return") k = GLFW_KEY_ENTER;
    else if (part == "esc" || part == "escape") k = GLFW_KEY_ESCAPE;
    else if (part == "space") k = GLFW_KEY_SPACE;
    else if (part.size() >= 2 && part[0] == 'f' && std::isdigit(static_cast<unsigned char>(part[1])))
      k = GLFW_KEY_F1 + std::atoi(part.c_str() + 1) - 1;
    else if (part.size() == 1 && std::isalpha(static_cast<unsigned char>(part[0]))) k = GLFW_KEY_A + (part[0] - 'a');
    else if (part.size() == 1 && std::isdigit(static_cast<unsigned char>(part[0]))) k = GLFW_KEY_0 + (part[0] - '0');
    if (k < 0) return false;
    keys->push_back(k);
  }
  return !keys->empty();
}

// Compares a JSON value with the text of a script: numbers numerically, anything else as text.
bool compare(const json& v, const std::string& op, const std::string& want, std::string* why) {
  if (op == "contains") {
    const std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    return text.find(want) != std::string::npos;
  }
  if (v.is_number()) {
    double w = 0;
    try {
      w = std::stod(want);
    } catch (const std::exception&) {
      *why = "'" + want + "' is not a number";
      return false;
    }
    const double x = v.get<double>();
    if (op == "==") return x == w;
    if (op == "!=") return x != w;
    if (op == "<") return x < w;
    if (op == "<=") return x <= w;
    if (op == ">") return x > w;
    if (op == ">=") return x >= w;
  } else {
    const std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    if (op == "==") return text == want;
    if (op == "!=") return text != want;
  }
  *why = "operator '" + op + "' does not apply to " + v.dump();
  return false;
}

bool evaluate(const App& app, const std::vector<std::string>& args, std::string* why) {
  if (args.size() < 3) {
    *why = "needs POINTER OP VALUE";
    return false;
  }
  const json state = state_json(app, false);
  const json::json_pointer ptr(args[0]);
  if (!state.contains(ptr)) {
    *why = args[0] + " is not in the state";
    return false;
  }
  std::string want;
  for (size_t i = 2; i < args.size(); ++i) want += (i > 2 ? " " : "") + args[i];
  want = unquote(want);
  const json& v = state.at(ptr);
  if (!compare(v, args[1], want, why)) {
    if (why->empty()) *why = args[0] + " is " + v.dump() + ", expected " + args[1] + " " + want;
    return false;
  }
  return true;
}

}  // namespace

bool ScriptRunner::load(const std::string& path, const std::string& screenshot_dir, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = path + ": cannot read the script";
    return false;
  }
  dir_ = screenshot_dir.empty() ? "." : screenshot_dir;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const size_t hash = line.find('#');
    if (hash != std::string::npos && (hash == 0 || std::isspace(static_cast<unsigned char>(line[hash - 1]))))
      line.resize(hash);
    std::string err;
    line = trim(expand(line, &err));
    if (!err.empty()) {
      *error = path + ":" + std::to_string(n) + ": " + err;
      return false;
    }
    if (line.empty()) continue;
    Command c;
    c.line = n;
    std::istringstream words(line);
    words >> c.verb;
    std::string w;
    while (words >> w) c.args.push_back(unquote(w));
    c.rest = unquote(trim(line.substr(c.verb.size())));
    static const char* verbs[] = {"tab", "set", "press", "key", "wait_idle", "wait_until", "wait_frames", "sleep",
                                  "screenshot", "state", "expect", "expect_message", "resize", "quit"};
    if (std::find_if(std::begin(verbs), std::end(verbs), [&](const char* v) { return c.verb == v; }) == std::end(verbs)) {
      *error = path + ":" + std::to_string(n) + ": unknown command '" + c.verb + "'";
      return false;
    }
    commands_.push_back(std::move(c));
  }
  return true;
}

std::string ScriptRunner::out_path(const std::string& name) const {
  const fs::path p(name);
  return p.is_absolute() ? name : (fs::path(dir_) / p).string();
}

void ScriptRunner::fail(const std::string& why) {
  const Command& c = commands_[std::min(pc_, commands_.size() - 1)];
  error_ = "script line " + std::to_string(c.line) + " (" + c.verb + (c.rest.empty() ? "" : " " + c.rest) + "): " + why;
  std::fprintf(stderr, "blr-studio: %s\n", error_.c_str());
  failed_ = true;
  finished_ = true;
}

void ScriptRunner::before_new_frame(App& app) {
  for (int k : keys_down_) ImGui_ImplGlfw_KeyCallback(app.window, k, 0, GLFW_RELEASE, 0);
  keys_down_.clear();
  for (int k : keys_to_press_) ImGui_ImplGlfw_KeyCallback(app.window, k, 0, GLFW_PRESS, 0);
  keys_down_.swap(keys_to_press_);
}

void ScriptRunner::before_frame(App& app) {
  while (!finished_ && pc_ < commands_.size()) {
    if (!step(app)) return;
    ++pc_;
    started_ = false;
  }
  if (pc_ >= commands_.size() && !capture_pending_ && keys_down_.empty()) finished_ = true;
}

bool ScriptRunner::step(App& app) {
  const Command& c = commands_[pc_];
  if (!started_) {
    started_ = true;
    began_ = std::chrono::steady_clock::now();
    frames_ = 0;
    idle_frames_ = 0;
  } else {
    ++frames_;
  }
  auto timeout_of = [&](size_t index, double fallback) {
    if (c.args.size() > index) return std::atof(c.args[index].c_str());
    return fallback;
  };
  try {
    if (c.verb == "tab") {
      do_action(app, "tab", c.args);
      return true;
    }
    if (c.verb == "set") {
      if (c.args.empty()) throw blr::InputError("set needs FIELD VALUE");
      set_field(app, c.args[0], unquote(trim(c.rest.substr(c.args[0].size()))));
      return true;
    }
    if (c.verb == "press") {
      if (c.args.empty()) throw blr::InputError("press needs an action");
      do_action(app, c.args[0], std::vector<std::string>(c.args.begin() + 1, c.args.end()));
      return true;
    }
    if (c.verb == "key") {
      if (frames_ == 0) {
        std::vector<int> keys;
        if (c.args.empty() || !parse_keys(c.args[0], &keys)) throw blr::InputError("unknown key '" + c.rest + "'");
        keys_to_press_ = keys;
        return false;
      }
      return frames_ >= 2;  // pressed on the next frame, released on the one after
    }
    if (c.verb == "wait_idle") {
      const double limit = timeout_of(0, 300.0);
      // Idle for two frames in a row, so the last results were picked up and drawn.
      idle_frames_ = any_busy(app) ? 0 : idle_frames_ + 1;
      if (frames_ >= 1 && idle_frames_ >= 2) return true;
      if (seconds_since(began_) > limit) fail("still busy after " + std::to_string(static_cast<int>(limit)) + " s");
      return false;
    }
    if (c.verb == "wait_until") {
      std::string why;
      if (evaluate(app, c.args, &why)) return true;
      const double limit = timeout_of(3, 300.0);
      if (seconds_since(began_) > limit) fail("not reached after " + std::to_string(static_cast<int>(limit)) + " s: " + why);
      return false;
    }
    if (c.verb == "wait_frames") return frames_ >= static_cast<int>(timeout_of(0, 1));
    if (c.verb == "sleep") return seconds_since(began_) >= timeout_of(0, 1);
    if (c.verb == "screenshot") {
      if (c.args.empty()) throw blr::InputError("screenshot needs a file name");
      // Let two frames draw the current state first (layout settles over a frame).
      if (frames_ < 2) return false;
      if (!capture_pending_ && capture_path_.empty()) {
        capture_pending_ = true;
        capture_path_ = out_path(c.args[0]);
        return false;
      }
      if (capture_pending_) return false;  // taken in after_render of this frame
      capture_path_.clear();
      return true;
    }
    if (c.verb == "state") {
      if (c.args.empty()) throw blr::InputError("state needs a file name");
      const std::string path = out_path(c.args[0]);
      std::ofstream out(path);
      if (!out) throw blr::InputError(path + ": cannot write");
      out << state_json(app, true).dump(2) << "\n";
      return true;
    }
    if (c.verb == "expect") {
      std::string why;
      if (!evaluate(app, c.args, &why)) fail(why);
      return true;
    }
    if (c.verb == "expect_message") {
      if (c.rest.empty()) throw blr::InputError("expect_message needs a text");
      expected_.push_back(c.rest);
      for (const auto& m : app.messages)
        if (m.text.find(c.rest) != std::string::npos) return true;
      std::string all;
      for (const auto& m : app.messages) all += "\n  " + std::string(level_name(m.level)) + ": " + m.text;
      fail("no message contains '" + c.rest + "'; messages:" + (all.empty() ? " none" : all));
      return true;
    }
    if (c.verb == "resize") {
      if (c.args.size() < 2) throw blr::InputError("resize needs W H");
      if (frames_ == 0) {
        glfwSetWindowSize(app.window, std::atoi(c.args[0].c_str()), std::atoi(c.args[1].c_str()));
        return false;
      }
      return frames_ >= 3;
    }
    if (c.verb == "quit") {
      finished_ = true;
      return true;
    }
  } catch (const std::exception& e) {
    fail(e.what());
    return true;
  }
  fail("unknown command");
  return true;
}

void ScriptRunner::after_render(App& app, int fb_width, int fb_height) {
  (void)app;
  if (!capture_pending_) return;
  capture_pending_ = false;
  try {
    const std::vector<uint8_t> pixels = read_framebuffer(fb_width, fb_height);
    auto holder = std::make_shared<std::vector<uint8_t>>(pixels);
    const blr::Tensor img =
        blr::Tensor::from_blob(holder->data(), {fb_height, fb_width, 4}, blr::DType::U8, blr::Device::CPU, holder);
    blr::write_png(capture_path_, img, {{"Software", "blr-studio --headless"}});
  } catch (const std::exception& e) {
    fail(std::string("screenshot: ") + e.what());
  }
}

int ScriptRunner::exit_code(const App& app) const {
  if (failed_) return 1;
  std::vector<std::string> unexpected;
  for (const auto& m : app.messages) {
    if (m.level != Message::Level::Error) continue;
    const bool ok = std::any_of(expected_.begin(), expected_.end(),
                                [&](const std::string& e) { return m.text.find(e) != std::string::npos; });
    if (!ok) unexpected.push_back(m.text);
  }
  if (!unexpected.empty()) {
    for (const auto& u : unexpected) std::fprintf(stderr, "blr-studio: unexpected error: %s\n", u.c_str());
    return 3;
  }
  return 0;
}

}  // namespace studio
