// troupe/progress.hpp
//
// troupe::Progress: where a run (Runner, map, parallelize) reports how far
// it has come. A value type chosen by the caller; nothing is shown unless
// asked.
//
// Guarantees: rendering never blocks the run (it happens on the meter's own
// thread, at most ~10 times a second on a terminal); the last line is
// always drawn when the run ends; a callback is never called concurrently
// with itself. A callback that throws is logged and ignored: progress never
// fails a run.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace troupe {

// How far a run has come, as a display sees it.
struct ProgressSnapshot {
  std::string label;
  std::uint64_t done = 0;  // finished items: ok + failed
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
  std::uint64_t retried = 0;           // attempts scheduled again
  std::optional<std::uint64_t> total;  // unknown for a streaming source
  std::chrono::nanoseconds elapsed{};
  double rate = 0;                              // finished items per second, smoothed
  std::optional<std::chrono::nanoseconds> eta;  // only with a total and a rate
  bool finished = false;                        // the run's last snapshot
};

namespace detail {
struct ProgressTarget;
struct ProgressAccess;
}  // namespace detail

class Progress {
 public:
  // Reports nowhere (the default).
  Progress() = default;
  static Progress none() { return {}; }
  // stderr: one line redrawn in place on a terminal; a plain line every few
  // seconds otherwise.
  static Progress to_terminal();
  // The same rules on another descriptor (a pseudo-terminal, a pipe); the
  // caller keeps it open for the run.
  static Progress to_fd(int fd);
  // `fn` gets a snapshot about every `interval` and once at the end.
  static Progress to_callback(std::function<void(const ProgressSnapshot&)> fn,
                              std::chrono::milliseconds interval = std::chrono::milliseconds(100));

  explicit operator bool() const noexcept { return target_ != nullptr; }
  const std::shared_ptr<const detail::ProgressTarget>& target() const noexcept { return target_; }

 private:
  friend struct detail::ProgressAccess;
  explicit Progress(std::shared_ptr<const detail::ProgressTarget> target) : target_(std::move(target)) {}
  std::shared_ptr<const detail::ProgressTarget> target_;
};

}  // namespace troupe
