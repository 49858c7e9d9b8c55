// troupe::Progress: the ways a caller picks where progress goes.
#include "troupe/progress.hpp"

#include <string>
#include <utility>

#include "runner/progress_target.hpp"
#include "troupe/errors.hpp"

namespace troupe {

namespace detail {

Progress progress_to_fd(int fd, std::chrono::milliseconds plain_period) {
  if (fd < 0) {
    throw ArgumentError("Progress::to_fd: the descriptor must be open (>= 0), got " + std::to_string(fd));
  }
  if (plain_period.count() <= 0) {
    throw ArgumentError("Progress::to_fd: the plain-line period must be positive, got " +
                        std::to_string(plain_period.count()) + " ms");
  }
  auto target = std::make_shared<ProgressTarget>();
  target->fd = fd;
  target->plain_period = plain_period;
  return ProgressAccess::make(std::move(target));
}

}  // namespace detail

Progress Progress::to_terminal() {
  return to_fd(2);
}

Progress Progress::to_fd(int fd) {
  return detail::progress_to_fd(fd, detail::kPlainLinePeriod);
}

Progress Progress::to_callback(std::function<void(const ProgressSnapshot&)> fn, std::chrono::milliseconds interval) {
  if (!fn) {
    throw ArgumentError("Progress::to_callback: the callback is empty; pass a function or use Progress::none()");
  }
  if (interval.count() <= 0) {
    throw ArgumentError("Progress::to_callback: the interval must be positive, got " +
                        std::to_string(interval.count()) + " ms");
  }
  auto target = std::make_shared<detail::ProgressTarget>();
  target->callback = std::move(fn);
  target->callback_interval = interval;
  return Progress(std::move(target));
}

}  // namespace troupe
