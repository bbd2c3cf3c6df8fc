#include "engine/core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace blr {

static std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
static std::mutex g_log_mutex;

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

void log_message(LogLevel level, const std::string& message) {
  static const char* names[] = {"debug", "info", "warning", "error"};
  std::lock_guard<std::mutex> lock(g_log_mutex);
  std::fprintf(stderr, "[blr %s] %s\n", names[static_cast<int>(level)], message.c_str());
}

}  // namespace blr
