// Minimal levelled logging to stderr. The CLI sets the level from --verbose/--quiet.
#pragma once

#include <string>

#include "engine/core/error.h"

namespace blr {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };
void set_log_level(LogLevel level);
LogLevel log_level();
void log_message(LogLevel level, const std::string& message);

template <typename... Args> void log_debug(const Args&... a) { if (log_level() <= LogLevel::Debug) log_message(LogLevel::Debug, cat(a...)); }
template <typename... Args> void log_info(const Args&... a) { if (log_level() <= LogLevel::Info) log_message(LogLevel::Info, cat(a...)); }
template <typename... Args> void log_warn(const Args&... a) { if (log_level() <= LogLevel::Warn) log_message(LogLevel::Warn, cat(a...)); }

}  // namespace blr
