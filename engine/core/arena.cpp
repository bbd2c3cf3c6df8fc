#include "engine/core/arena.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "engine/core/error.h"

namespace blr {

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

const char* mem_category_name(MemCategory c) {
  switch (c) {
    case MemCategory::Weights: return "weights";
    case MemCategory::Activations: return "activations";
    case MemCategory::Workspace: return "workspace";
    case MemCategory::Graphs: return "graphs";
    case MemCategory::Other: return "other";
  }
  return "?";
}

std::string format_bytes(size_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (bytes >= (size_t(1) << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1u << 30));
  else if (bytes >= (size_t(1) << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1u << 20));
  else if (bytes >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024);
  else std::snprintf(buf, sizeof buf, "%zu B", bytes);
  return buf;
}

size_t parse_bytes(const std::string& text) {
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw InputError(cat("cannot read '", text, "' as a size (e.g. 7.5GiB, 512MiB)"));
  }
  std::string unit = text.substr(pos);
  unit.erase(std::remove_if(unit.begin(), unit.end(), ::isspace), unit.end());
  std::transform(unit.begin(), unit.end(), unit.begin(), ::tolower);
  double mult = 0;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kib") mult = 1024.0;
  else if (unit == "m" || unit == "mib") mult = 1024.0 * 1024;
  else if (unit == "g" || unit == "gib") mult = 1024.0 * 1024 * 1024;
  else if (unit == "kb") mult = 1e3;
  else if (unit == "mb") mult = 1e6;
  else if (unit == "gb") mult = 1e9;
  if (mult == 0 || !(value >= 0) || std::isinf(value))
    throw InputError(cat("cannot read '", text, "' as a size (e.g. 7.5GiB, 512MiB)"));
  return static_cast<size_t>(value * mult);
}

std::string MemoryReport::summary() const {
  std::string s;
  for (int c = 0; c < kMemCategoryCount; ++c) {
    if (current[c] == 0 && peak[c] == 0) continue;
    if (!s.empty()) s += ", ";
    s += cat(mem_category_name(static_cast<MemCategory>(c)), " ", format_bytes(current[c]));
  }
  if (s.empty()) s = "nothing";
  s += cat(" (total ", format_bytes(total), ", peak ", format_bytes(high_water));
  if (budget) s += cat(", budget ", format_bytes(*budget));
  s += ")";
  return s;
}

struct Arena::State {
  Device device;
  std::string name;
  mutable std::mutex mutex;
  MemoryReport report;

  void charge(size_t bytes, MemCategory category, const std::string& what) {
    const int c = static_cast<int>(category);
    if (report.budget && report.total + bytes > *report.budget) {
      throw OutOfMemoryError(cat("memory budget exceeded in ", name, ": cannot allocate ",
                                 format_bytes(bytes), " for '", what, "' (", mem_category_name(category),
                                 "); budget ", format_bytes(*report.budget), ", already in use ",
                                 format_bytes(report.total), " [", report.summary(), "]"));
    }
    report.current[c] += bytes;
    report.peak[c] = std::max(report.peak[c], report.current[c]);
    report.total += bytes;
    report.high_water = std::max(report.high_water, report.total);
    ++report.live_allocations;
  }
  void refund(size_t bytes, MemCategory category) {
    std::lock_guard<std::mutex> lock(mutex);
    report.current[static_cast<int>(category)] -= bytes;
    report.total -= bytes;
    --report.live_allocations;
  }
};

Arena::Arena(Device device, std::string name, std::optional<size_t> budget)
    : state_(std::make_shared<State>()) {
  state_->device = device;
  state_->name = std::move(name);
  state_->report.arena = state_->name;
  state_->report.device = device;
  state_->report.budget = budget;
}

Arena::~Arena() = default;

std::shared_ptr<void> Arena::allocate(size_t bytes, MemCategory category, const std::string& what) {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->charge(bytes, category, what);
  }
  void* ptr = nullptr;
  const size_t request = std::max<size_t>(bytes, 1);
  if (state_->device == Device::CPU) {
    ptr = std::aligned_alloc(256, (request + 255) / 256 * 256);
    if (!ptr) {
      state_->refund(bytes, category);
      throw OutOfMemoryError(cat("out of host memory allocating ", format_bytes(bytes), " for '", what, "'"));
    }
  } else {
    const cudaError_t err = cudaMalloc(&ptr, request);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error so later calls are unaffected
      state_->refund(bytes, category);
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw OutOfMemoryError(cat("cannot allocate ", format_bytes(bytes), " of device memory for '", what,
                                 "': ", cudaGetErrorString(err), " (device free ", format_bytes(free_b),
                                 " of ", format_bytes(total_b), "; ", state_->name, " holds ",
                                 report().summary(), ")"));
    }
  }
  std::shared_ptr<State> state = state_;
  const Device device = state_->device;
  return std::shared_ptr<void>(ptr, [state, device, bytes, category](void* p) {
    if (device == Device::CPU) std::free(p);
    else cudaFree(p);
    state->refund(bytes, category);
  });
}

std::shared_ptr<void> Arena::account(size_t bytes, MemCategory category, const std::string& what) {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->charge(bytes, category, what);
  }
  std::shared_ptr<State> state = state_;
  // A non-null dummy pointer so the deleter runs; it is never dereferenced.
  static char token;
  return std::shared_ptr<void>(&token, [state, bytes, category](void*) { state->refund(bytes, category); });
}

MemoryReport Arena::report() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->report;
}

void Arena::reset_peaks() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->report.peak = state_->report.current;
  state_->report.high_water = state_->report.total;
}

void Arena::set_budget(std::optional<size_t> budget) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->report.budget = budget;
}

Device Arena::device() const { return state_->device; }
const std::string& Arena::name() const { return state_->name; }

}  // namespace blr
