// Where a Progress reports (the type behind troupe::Progress) and how
// often. Not part of the API.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "troupe/progress.hpp"

namespace troupe::detail {

// A terminal's line is redrawn at most this often (~10 times a second).
inline constexpr std::chrono::milliseconds kTerminalRedrawPeriod{100};
// Elsewhere (a pipe, a file, a CI log) a plain line this often.
inline constexpr std::chrono::milliseconds kPlainLinePeriod{5000};

struct ProgressTarget {
  int fd = -1;  // a descriptor to draw on, or -1 for `callback`
  std::function<void(const ProgressSnapshot&)> callback;
  std::chrono::milliseconds callback_interval{};
  std::chrono::milliseconds plain_period = kPlainLinePeriod;
};

struct ProgressAccess {
  static Progress make(std::shared_ptr<const ProgressTarget> target) { return Progress(std::move(target)); }
};

// Progress::to_fd with another plain-line period (tests shorten it).
Progress progress_to_fd(int fd, std::chrono::milliseconds plain_period);

}  // namespace troupe::detail
