// troupe::Progress and detail::ProgressMeter (engine/src/runner/): the line
// redrawn on a terminal, plain lines on a pipe, the callback's snapshots.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runner/progress_board.hpp"
#include "runner/progress_renderer.hpp"
#include "runner/progress_target.hpp"
#include "troupe/detail/progress_meter.hpp"
#include "troupe/errors.hpp"
#include "troupe/progress.hpp"

namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using troupe::Progress;
using troupe::ProgressSnapshot;
using troupe::detail::ProgressMeter;

// Both ends of a descriptor pair, closed at the end of the test.
struct FdPair {
  int read = -1;
  int write = -1;
  ~FdPair() {
    for (int fd : {read, write}) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
  }
};

// Reads what `fd` has until `done(text)` holds or 10 s pass (a generous
// bound, never an assertion on time).
std::string read_until(int fd, std::string text, const std::function<bool(const std::string&)>& done) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done(text) && std::chrono::steady_clock::now() < give_up) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) == 1 && (p.revents & POLLIN) != 0) {
      char buf[4096];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        text.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  return text;
}

// Everything already written to `fd` (the writer has finished).
std::string drain(int fd, std::string text) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) != 1 || (p.revents & POLLIN) == 0) {
      return text;
    }
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      return text;
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
}

void count_some(ProgressMeter& meter) {
  meter.add_ok(7);
  meter.add_failed(3);
  meter.add_retried(2);
}

TEST(Progress, TerminalGetsOneLineRedrawnInPlaceThenTheFinalNumbersAndANewline) {
  FdPair pty;
  ASSERT_EQ(::openpty(&pty.read, &pty.write, nullptr, nullptr, nullptr), 0);
  termios raw{};
  ASSERT_EQ(::tcgetattr(pty.write, &raw), 0);
  ::cfmakeraw(&raw);  // no "\n" -> "\r\n" translation: the test sees what was written
  ASSERT_EQ(::tcsetattr(pty.write, TCSANOW, &raw), 0);

  ProgressMeter meter(Progress::to_fd(pty.write), "words", 10);
  count_some(meter);
  // Two redraws while it runs (about 100 ms apart).
  std::string out =
      read_until(pty.read, "", [](const std::string& t) { return std::count(t.begin(), t.end(), '\r') >= 2; });
  ASSERT_GE(std::count(out.begin(), out.end(), '\r'), 2) << out;
  EXPECT_EQ(out.find('\n'), std::string::npos) << "a running line is redrawn, never ended: " << out;
  meter.finish();
  out = drain(pty.read, out);

  EXPECT_EQ(out.front(), '\r');
  EXPECT_THAT(out, EndsWith("\n"));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  const std::string last = out.substr(out.rfind('\r'));
  EXPECT_THAT(last, HasSubstr("words 10/10 (100%) ok 7 failed 3 retried 2"));
  EXPECT_THAT(last, HasSubstr("\x1b[K"));  // clears what a longer line left
}

TEST(Progress, PipeGetsPlainLinesWithNewlinesAndNoCarriageReturn) {
  FdPair pipe;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pipe.read = fds[0];
  pipe.write = fds[1];

  ProgressMeter meter(troupe::detail::progress_to_fd(pipe.write, std::chrono::milliseconds(10)), "docs", 20);
  count_some(meter);
  std::string out =
      read_until(pipe.read, "", [](const std::string& t) { return std::count(t.begin(), t.end(), '\n') >= 2; });
  ASSERT_GE(std::count(out.begin(), out.end(), '\n'), 2) << out;
  meter.add_ok(10);
  meter.finish();
  out = drain(pipe.read, out);

  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_THAT(out, EndsWith("\n"));
  EXPECT_THAT(out, HasSubstr("docs 10/20 (50%) ok 7 failed 3 retried 2"));
  out.pop_back();
  const std::string last = out.substr(out.rfind('\n') + 1);
  EXPECT_THAT(last, HasSubstr("docs 20/20 (100%) ok 17 failed 3 retried 2"));
  EXPECT_THAT(last, Not(HasSubstr("ETA")));
}

TEST(Progress, CallbackLastSnapshotIsFinishedWithExactCountsAfterConcurrentAdds) {
  std::mutex mutex;
  std::vector<ProgressSnapshot> seen;
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  ProgressMeter meter(Progress::to_callback(
                          [&](const ProgressSnapshot& s) {
                            if (inside.fetch_add(1) != 0) {
                              overlapped = true;
                            }
                            {
                              std::lock_guard lock(mutex);
                              seen.push_back(s);
                            }
                            inside.fetch_sub(1);
                          },
                          std::chrono::milliseconds(1)),
                      "batch", 4 * 1100);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        meter.add_ok();
        if (i % 10 == 0) {
          meter.add_failed();
          meter.add_retried();
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  meter.finish();

  std::lock_guard lock(mutex);
  ASSERT_FALSE(seen.empty());
  EXPECT_FALSE(overlapped);
  const ProgressSnapshot& last = seen.back();
  EXPECT_TRUE(last.finished);
  EXPECT_EQ(last.label, "batch");
  EXPECT_EQ(last.ok, 4000u);
  EXPECT_EQ(last.failed, 400u);
  EXPECT_EQ(last.retried, 400u);
  EXPECT_EQ(last.done, 4400u);
  EXPECT_EQ(last.total, 4400u);
  EXPECT_EQ(std::count_if(seen.begin(), seen.end(), [](const ProgressSnapshot& s) { return s.finished; }), 1);
  for (std::size_t i = 1; i < seen.size(); ++i) {
    EXPECT_LE(seen[i - 1].done, seen[i].done) << "counts only grow";
  }
}

TEST(Progress, UnknownTotalShowsCountsAndRateButNoEta) {
  ProgressMeter meter(Progress::none(), "stream", std::nullopt);
  meter.add_ok(41);
  meter.add_failed(1);
  const ProgressSnapshot s = meter.snapshot();
  EXPECT_FALSE(s.total.has_value());
  EXPECT_FALSE(s.eta.has_value());
  EXPECT_EQ(s.done, 42u);
  EXPECT_GE(s.rate, 0.0);
  const std::string line = troupe::detail::format_progress_line(s);
  EXPECT_THAT(line, HasSubstr("stream 42 ok 41 failed 1 retried 0 | "));
  EXPECT_THAT(line, HasSubstr("/s | elapsed "));
  EXPECT_THAT(line, Not(HasSubstr("ETA")));
}

TEST(Progress, KnownTotalAndRateGiveAnEta) {
  ProgressSnapshot s;
  s.label = "x";
  s.done = 50;
  s.ok = 50;
  s.total = 100;
  s.rate = 10;
  s.elapsed = std::chrono::seconds(65);
  s.eta = std::chrono::seconds(5);
  EXPECT_EQ(troupe::detail::format_progress_line(s),
            "x 50/100 (50%) ok 50 failed 0 retried 0 | 10.0/s | elapsed 1:05 | ETA 0:05");
  s.total.reset();
  s.eta.reset();
  s.label.clear();
  s.rate = 1234.4;
  s.elapsed = std::chrono::seconds(3723);
  EXPECT_EQ(troupe::detail::format_progress_line(s), "50 ok 50 failed 0 retried 0 | 1234/s | elapsed 1:02:03");
}

TEST(Progress, MeterWithATotalReportsAnEtaWhileRunning) {
  ProgressMeter meter(Progress::none(), "", 1000);
  meter.add_ok(10);
  // The rate is an average of items over elapsed time: positive once any
  // item is done, so an ETA follows.
  const ProgressSnapshot s = meter.snapshot();
  EXPECT_GT(s.rate, 0.0);
  ASSERT_TRUE(s.eta.has_value());
  EXPECT_GT(s.eta->count(), 0);
  EXPECT_FALSE(s.finished);
}

TEST(Progress, NoneCountsWithoutDrawingAndFinishIsIdempotent) {
  ProgressMeter meter(Progress::none(), "quiet", 3);
  EXPECT_FALSE(Progress::none());
  meter.add_ok(2);
  meter.add_failed();
  meter.finish();
  meter.finish();
  const ProgressSnapshot s = meter.snapshot();
  EXPECT_TRUE(s.finished);
  EXPECT_EQ(s.done, 3u);
  meter.add_ok();  // late counts are kept, never lost
  EXPECT_EQ(meter.snapshot().ok, 3u);
}

TEST(Progress, FinishDrawsTheFinishedSnapshotExactlyOnce) {
  std::atomic<int> finished{0};
  {
    ProgressMeter meter(Progress::to_callback([&](const ProgressSnapshot& s) { finished += s.finished ? 1 : 0; }), "",
                        std::nullopt);
    meter.finish();
    meter.finish();
  }  // and the destructor does not draw it again
  EXPECT_EQ(finished, 1);
}

TEST(Progress, ThrowingCallbackIsIgnoredAndTheRunGoesOn) {
  std::atomic<int> calls{0};
  ProgressMeter meter(Progress::to_callback(
                          [&](const ProgressSnapshot&) {
                            ++calls;
                            throw std::runtime_error("display broke");
                          },
                          std::chrono::milliseconds(1)),
                      "", 5);
  meter.add_ok(5);
  EXPECT_NO_THROW(meter.finish());
  EXPECT_GE(calls, 1);
  EXPECT_EQ(meter.snapshot().ok, 5u);
}

// A raw pseudo-terminal `columns` wide: what is written arrives unchanged.
void open_raw_terminal(FdPair& pty, unsigned short columns) {
  winsize size{};
  size.ws_row = 24;
  size.ws_col = columns;
  ASSERT_EQ(::openpty(&pty.read, &pty.write, nullptr, nullptr, &size), 0);
  termios raw{};
  ASSERT_EQ(::tcgetattr(pty.write, &raw), 0);
  ::cfmakeraw(&raw);
  ASSERT_EQ(::tcsetattr(pty.write, TCSANOW, &raw), 0);
}

// The lines of the last redraw: what follows the last cursor-up ("\x1b[nA"),
// split at "\n", each without its "\r" and line clear.
std::vector<std::string> last_board(const std::string& out) {
  std::vector<std::string> drawn;
  std::size_t from = out.size();
  while ((from = out.rfind("\x1b[", from == 0 ? 0 : from - 1)) != std::string::npos) {
    std::size_t end = from + 2;
    while (end < out.size() && std::isdigit(static_cast<unsigned char>(out[end])) != 0) {
      ++end;
    }
    if (end > from + 2 && end < out.size() && out[end] == 'A') {
      break;
    }
    if (from == 0) {
      return drawn;
    }
  }
  if (from == std::string::npos) {
    return drawn;
  }
  std::size_t at = out.find('A', from) + 1;
  for (std::size_t next; (next = out.find('\n', at)) != std::string::npos; at = next + 1) {
    std::string line = out.substr(at, next - at);
    EXPECT_EQ(line.front(), '\r') << line;
    EXPECT_THAT(line, EndsWith("\x1b[K")) << line;
    drawn.push_back(line.substr(1, line.size() - 1 - 3));
  }
  return drawn;
}

TEST(ProgressBoard, RunsSharingATerminalEachKeepALineRedrawnTogether) {
  FdPair pty;
  open_raw_terminal(pty, 200);
  const Progress board = troupe::detail::progress_board(pty.write);
  {
    ProgressMeter words(board, "words", 10);
    ProgressMeter counts(board, "counts", 4);
    count_some(words);
    counts.add_ok(1);
    // Redraws of both lines, the cursor going back up over the two.
    std::string out = read_until(pty.read, "", [](const std::string& t) { return t.find("\x1b[2A") != t.npos; });
    ASSERT_THAT(out, HasSubstr("\x1b[2A"));
    counts.add_ok(3);
    counts.finish();
    words.finish();
  }
  const std::string out = drain(pty.read, "");
  const auto lines = last_board(out);
  ASSERT_EQ(lines.size(), 2u) << out;
  // In the order the runs first reported, which their threads decide.
  EXPECT_THAT(lines, ::testing::UnorderedElementsAre(HasSubstr("words 10/10 (100%) ok 7 failed 3 retried 2"),
                                                     HasSubstr("counts 4/4 (100%) ok 4 failed 0")));
}

TEST(ProgressBoard, LinesAreCutToTheTerminalWidthSoRedrawsStayInPlace) {
  FdPair pty;
  open_raw_terminal(pty, 20);
  const Progress board = troupe::detail::progress_board(pty.write);
  {
    ProgressMeter one(board, "first-job-with-a-long-name", 10);
    ProgressMeter two(board, "second", 10);
    one.finish();
    two.finish();
  }
  const std::string out = drain(pty.read, "");
  const auto lines = last_board(out);
  ASSERT_EQ(lines.size(), 2u) << out;
  EXPECT_EQ(lines[0], "first-job-with-a-lo");  // 19 columns: one short of the width
  EXPECT_EQ(lines[1].size(), 19u) << lines[1];
  EXPECT_THAT(lines[1], ::testing::StartsWith("second 0/10"));
}

TEST(Progress, BadTargetsAreRefusedNamingWhatIsWrong) {
  try {
    Progress::to_fd(-1);
    FAIL() << "a negative descriptor was accepted";
  } catch (const troupe::ArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr("Progress::to_fd"));
    EXPECT_THAT(e.what(), HasSubstr("-1"));
  }
  EXPECT_THROW(Progress::to_callback(nullptr), troupe::ArgumentError);
  EXPECT_THROW(troupe::detail::progress_board(-1), troupe::ArgumentError);
  try {
    Progress::to_callback([](const ProgressSnapshot&) {}, std::chrono::milliseconds(0));
    FAIL() << "a zero interval was accepted";
  } catch (const troupe::ArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr("interval must be positive, got 0 ms"));
  }
}

}  // namespace
