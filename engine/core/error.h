// Errors are exceptions that carry where they happened, what failed and why, so a user sees one clear
// line ("model.safetensors: tensor 'blocks.0.attn.qkv.weight': shape [768,768] expected [2304,768]")
// and the library never calls exit().
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace blr {

// Concatenates anything streamable into a string: cat("got ", n, " of ", total).
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Thrown when a request exceeds the memory budget or the device runs out of memory.
class OutOfMemoryError : public Error {
 public:
  using Error::Error;
};

// Thrown by backends for an op they do not implement (yet); the parity harness reports these as such.
class NotImplementedError : public Error {
 public:
  using Error::Error;
};

// Bad user input (flags, files, shapes): the CLI turns these into a usage error with exit code 2.
class InputError : public Error {
 public:
  using Error::Error;
};

[[noreturn]] void throw_check_failure(const char* file, int line, const std::string& message);

}  // namespace blr

// Internal invariant / argument check: throws blr::Error("file:line: message") when cond is false.
#define BLR_CHECK(cond, ...)                                                      \
  do {                                                                            \
    if (!(cond)) ::blr::throw_check_failure(__FILE__, __LINE__, ::blr::cat(__VA_ARGS__)); \
  } while (0)
