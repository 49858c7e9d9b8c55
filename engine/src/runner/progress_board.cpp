// progress_board: one line per run on a shared terminal, redrawn together by
// moving the cursor back up over the lines drawn last time.
#include "runner/progress_board.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/log.hpp"
#include "runner/progress_renderer.hpp"
#include "runner/progress_target.hpp"
#include "troupe/errors.hpp"

namespace troupe::detail {

namespace {

using Clock = std::chrono::steady_clock;

// `text` cut to at most `columns` characters (UTF-8 code points, so a job
// name is never cut inside a character). 0: no limit known.
std::string fit(std::string text, std::size_t columns) {
  if (columns == 0) {
    return text;
  }
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if ((byte & 0xC0U) != 0x80U && seen++ == columns) {
      text.resize(i);
      break;
    }
  }
  return text;
}

class Board {
 public:
  explicit Board(int fd) : fd_(fd) {}

  void update(const ProgressSnapshot& snapshot) {
    std::lock_guard lock(mutex_);
    bool fresh = true;
    for (auto& [label, text] : lines_) {
      if (label == snapshot.label) {
        text = format_progress_line(snapshot);
        fresh = false;
        break;
      }
    }
    if (fresh) {
      lines_.emplace_back(snapshot.label, format_progress_line(snapshot));
    }
    const auto now = Clock::now();
    if (fresh || snapshot.finished || now - last_draw_ >= kTerminalRedrawPeriod) {
      draw();
      last_draw_ = now;
    }
  }

 private:
  void draw() {
    std::string text;
    if (drawn_ > 0) {
      text = fmt::format("\x1b[{}A", drawn_);  // back up to the first line drawn last time
    }
    // One column short of the width: a line that fills it would wrap on
    // some terminals and the cursor would come back one line too few.
    winsize size{};
    const std::size_t columns = ::ioctl(fd_, TIOCGWINSZ, &size) == 0 && size.ws_col > 1 ? size.ws_col - 1U : 0;
    for (const auto& line : lines_) {
      text += "\r" + fit(line.second, columns) + "\x1b[K\n";
    }
    drawn_ = lines_.size();
    if (const int error = write_fully(fd_, text); error != 0 && !warned_) {
      warned_ = true;
      log(LogLevel::warn, fmt::format("progress: cannot write to descriptor {}: {}", fd_, std::strerror(error)));
    }
  }

  const int fd_;
  std::mutex mutex_;
  std::vector<std::pair<std::string, std::string>> lines_;  // label, its last line
  std::size_t drawn_ = 0;                                   // lines on the terminal now
  Clock::time_point last_draw_{};
  bool warned_ = false;
};

}  // namespace

Progress progress_board(int fd) {
  if (fd < 0) {
    throw ArgumentError("progress_board: the descriptor must be open (>= 0), got " + std::to_string(fd));
  }
  auto board = std::make_shared<Board>(fd);
  return Progress::to_callback([board](const ProgressSnapshot& snapshot) { board->update(snapshot); },
                               kTerminalRedrawPeriod);
}

}  // namespace troupe::detail
