// Helpers shared by the studio runtime tests (CPU and GPU): a model load request and a bounded wait for a
// worker thread's state.
#pragma once

#include <chrono>
#include <string>
#include <thread>

#include "engine/runtime/session.h"

namespace blr::test {

inline LoadRequest request(ModelKind kind, const std::string& path, const std::string& mode = "dense",
                           const std::string& rules = "", const std::string& label = "") {
  LoadRequest r;
  r.kind = kind;
  r.path = path;
  r.mode = mode;
  r.rules_text = rules;
  r.label = label;
  return r;
}

// Polls `pred` every `poll` (zero: without sleeping) until it holds or `limit` passes; returns its last value.
template <typename Pred>
bool wait_for(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(120),
              std::chrono::milliseconds poll = std::chrono::milliseconds(1)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    if (poll.count() > 0) std::this_thread::sleep_for(poll);
  }
  return pred();
}

}  // namespace blr::test
