// The one way troupe talks MPI: messages of bytes on MPI_COMM_WORLD, sent
// without blocking (MPI_Isend: two ranks sending each other large messages
// at once must not wait on each other) and received by polling, so the
// thread that owns the channel also serves its own queues between polls.
// Only one thread uses a Channel at a time (MPI_THREAD_SERIALIZED).
#pragma once

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace troupe::mpi::detail {

// The most bytes one message carries: MPI counts them in an int.
inline constexpr std::size_t kMaxMessage = 0x7fffffff;
// What a frame or a result may take so that it fits a message with its
// header (stats, counts).
inline constexpr std::size_t kMaxFrame = kMaxMessage - 4096;

struct Received {
  int source = 0;
  int tag = 0;
  std::vector<std::uint8_t> body;
};

class Channel {
 public:
  Channel() = default;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  ~Channel();  // waits for the sends still in flight

  // Starts sending `body` (kept alive here until MPI is done with it).
  void send(int rank, int tag, std::vector<std::uint8_t> body);
  // A message that has arrived, from `source` (MPI_ANY_SOURCE) with `tag`
  // (MPI_ANY_TAG); false when none has.
  bool poll(Received& message, int source = MPI_ANY_SOURCE, int tag = MPI_ANY_TAG);
  // Retires the sends MPI has finished with.
  void progress();
  bool sending() const noexcept { return !sends_.empty(); }
  void flush();  // waits until every send has left

 private:
  struct Send {
    MPI_Request request;
    std::vector<std::uint8_t> body;
  };
  std::deque<Send> sends_;
};

// How long a thread with nothing to do sleeps before it polls MPI again:
// doubling from 2 us up to a cap, back to the start on any progress. The cap
// follows how often messages have been arriving (half the smoothed gap, 10 us
// to 1 ms): a stream of results is read within a fraction of its pace, and a
// long wait polls once a millisecond, which costs no core (MPI's own
// blocking receive spins one).
class Backoff {
 public:
  void reset() noexcept { next_ = kFirst; }
  // A message arrived at `now_ns`.
  void arrived(std::int64_t now_ns) noexcept {
    if (last_ns_ != 0) {
      const double gap = static_cast<double>(now_ns - last_ns_);
      gap_ns_ = gap_ns_ <= 0 ? gap : 0.8 * gap_ns_ + 0.2 * gap;
    }
    last_ns_ = now_ns;
  }
  std::chrono::nanoseconds next() noexcept {
    const auto cap = std::chrono::nanoseconds(static_cast<std::int64_t>(
        std::clamp(gap_ns_ / 2, static_cast<double>(kLeast.count()), static_cast<double>(kMost.count()))));
    const auto now = std::min(next_, cap);
    next_ = std::min(next_ * 2, cap);
    return now;
  }

 private:
  static constexpr std::chrono::nanoseconds kFirst = std::chrono::microseconds(2);
  static constexpr std::chrono::nanoseconds kLeast = std::chrono::microseconds(10);
  static constexpr std::chrono::nanoseconds kMost = std::chrono::milliseconds(1);
  std::chrono::nanoseconds next_ = kFirst;
  std::int64_t last_ns_ = 0;
  double gap_ns_ = 1e6;  // until messages have come: the longest cap
};

// Throws troupe::Error naming `what` when an MPI call failed (MPI's default
// handler aborts the job first; this is for an MPI set to return errors).
void check_mpi(int code, const char* what);

}  // namespace troupe::mpi::detail
