#include "engine/core/error.h"

#include <cstring>

namespace blr {

void throw_check_failure(const char* file, int line, const std::string& message) {
  const char* base = std::strrchr(file, '/');
  throw Error(cat(base ? base + 1 : file, ":", line, ": ", message));
}

}  // namespace blr
