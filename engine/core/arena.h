// Memory accounting. Every byte the engine allocates for a session goes through one Arena, which keeps
// the bytes in use per category (weights, activations, workspace, graphs, other), their high-water marks,
// and an optional budget. A request past the budget fails with an OutOfMemoryError naming the request,
// the budget and what is already in use — so a desktop GPU can tell whether a configuration would fit a
// Jetson Orin Nano before anyone copies it there. Thread-safe: the studio's workers share arenas.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace blr {

enum class Device : uint8_t { CPU, CUDA };
const char* device_name(Device d);

enum class MemCategory : uint8_t { Weights, Activations, Workspace, Graphs, Other };
constexpr int kMemCategoryCount = 5;
const char* mem_category_name(MemCategory c);

struct MemoryReport {
  std::string arena;
  Device device = Device::CPU;
  std::array<size_t, kMemCategoryCount> current{};  // bytes in use now, per category
  std::array<size_t, kMemCategoryCount> peak{};     // high-water mark per category
  size_t total = 0;                                  // bytes in use now
  size_t high_water = 0;                             // largest total ever in use
  size_t live_allocations = 0;
  std::optional<size_t> budget;
  size_t of(MemCategory c) const { return current[static_cast<int>(c)]; }
  size_t peak_of(MemCategory c) const { return peak[static_cast<int>(c)]; }
  std::string summary() const;  // one line: "weights 1.2 GiB, activations 40 MiB, ... (peak 1.3 GiB)"
};

// "1.50 GiB", "12.0 MiB", "512 B".
std::string format_bytes(size_t bytes);
// Parses "7.5GiB", "512MiB", "1e9", "2GB"; throws InputError on anything else.
size_t parse_bytes(const std::string& text);

class Arena {
 public:
  Arena(Device device, std::string name, std::optional<size_t> budget = std::nullopt);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Allocates `bytes` (zero allowed) aligned to 256 bytes; `what` names the request in errors. The
  // returned handle frees the memory and its accounting when the last copy goes — even after the
  // Arena object itself is gone.
  std::shared_ptr<void> allocate(size_t bytes, MemCategory category, const std::string& what);

  // Records memory this arena did not allocate itself (e.g. instantiated CUDA graphs) so reports include
  // it; the budget applies the same way. Release with the returned handle.
  std::shared_ptr<void> account(size_t bytes, MemCategory category, const std::string& what);

  MemoryReport report() const;
  void reset_peaks();
  void set_budget(std::optional<size_t> budget);
  Device device() const;
  const std::string& name() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace blr
