// Draws a ProgressSnapshot where a Progress asked: a line redrawn in place
// on a terminal, plain lines elsewhere, or a callback. Not part of the API.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "runner/progress_target.hpp"
#include "troupe/progress.hpp"

namespace troupe::detail {

// "label 120/1000 (12%) ok 118 failed 2 retried 3 | 45.2/s | elapsed 0:02 | ETA 0:19"
// (no total: "label 120 ok ...", no ETA).
std::string format_progress_line(const ProgressSnapshot& snapshot);

// Writes all of `text` to `fd`, retrying short writes and EINTR. Returns 0,
// or the errno of the write that failed (EIO when one wrote nothing).
int write_fully(int fd, std::string_view text) noexcept;

class ProgressRenderer {
 public:
  explicit ProgressRenderer(const ProgressTarget& target);

  // How long to wait between two draws while the run goes on.
  std::chrono::milliseconds period() const noexcept { return period_; }
  // Draws one snapshot (the last one when snapshot.finished). Never throws:
  // a failed write or a throwing callback is logged once and dropped.
  void draw(const ProgressSnapshot& snapshot) noexcept;

 private:
  const ProgressTarget& target_;
  bool terminal_ = false;
  std::chrono::milliseconds period_;
  bool warned_ = false;
};

}  // namespace troupe::detail
