// ProgressRenderer and the one progress line.
#include "runner/progress_renderer.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include "common/log.hpp"
#include "troupe/errors.hpp"

namespace troupe::detail {

namespace {

// 0:05, 2:40, 1:02:03.
std::string clock_text(std::chrono::nanoseconds d) {
  const auto total = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  const auto h = total / 3600;
  const auto m = (total / 60) % 60;
  const auto s = total % 60;
  if (h > 0) {
    return fmt::format("{}:{:02}:{:02}", h, m, s);
  }
  return fmt::format("{}:{:02}", m, s);
}

std::string rate_text(double rate) {
  return rate < 100 ? fmt::format("{:.1f}/s", rate) : fmt::format("{:.0f}/s", rate);
}

}  // namespace

std::string format_progress_line(const ProgressSnapshot& s) {
  std::string line;
  if (!s.label.empty()) {
    line = s.label + " ";
  }
  if (s.total) {
    const auto percent = *s.total == 0 ? 100.0 : 100.0 * static_cast<double>(s.done) / static_cast<double>(*s.total);
    line += fmt::format("{}/{} ({:.0f}%)", s.done, *s.total, percent);
  } else {
    line += fmt::format("{}", s.done);
  }
  line += fmt::format(" ok {} failed {} retried {} | {} | elapsed {}", s.ok, s.failed, s.retried, rate_text(s.rate),
                      clock_text(s.elapsed));
  if (s.eta && !s.finished) {
    line += " | ETA " + clock_text(*s.eta);
  }
  return line;
}

ProgressRenderer::ProgressRenderer(const ProgressTarget& target)
    : target_(target), terminal_(target.fd >= 0 && ::isatty(target.fd) == 1) {
  if (target_.fd < 0) {
    period_ = target_.callback_interval;
  } else {
    period_ = terminal_ ? kTerminalRedrawPeriod : target_.plain_period;
  }
}

void ProgressRenderer::draw(const ProgressSnapshot& snapshot) noexcept {
  try {
    if (target_.fd < 0) {
      target_.callback(snapshot);
      return;
    }
    std::string text;
    if (terminal_) {
      // Back to the line's start, draw, clear what a longer line left.
      text = "\r" + format_progress_line(snapshot) + "\x1b[K";
      if (snapshot.finished) {
        text += "\n";
      }
    } else {
      text = format_progress_line(snapshot) + "\n";
    }
    if (const int error = write_fully(target_.fd, text); error != 0 && !warned_) {
      warned_ = true;
      log(LogLevel::warn, fmt::format("progress: cannot write to descriptor {}: {}", target_.fd, std::strerror(error)));
    }
  } catch (...) {
    if (!warned_) {
      warned_ = true;
      log(LogLevel::warn, "progress: drawing failed and is skipped: " + describe_exception(std::current_exception()));
    }
  }
}

int write_fully(int fd, std::string_view text) noexcept {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return n < 0 ? errno : EIO;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

}  // namespace troupe::detail
