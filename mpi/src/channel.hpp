// The one way troupe talks MPI: messages of bytes on MPI_COMM_WORLD, sent
// without blocking (MPI_Isend: two ranks sending each other large messages
// at once must not wait on each other) and received by polling, so the
// thread that owns the channel also serves its own queues between polls.
// Only one thread uses a Channel at a time (MPI_THREAD_SERIALIZED).
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <vector>

namespace troupe::mpi::detail {

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

// How long a thread with nothing to do sleeps before it polls again:
// doubling from 2 us to 1 ms, back to the start on any progress. A poll
// every millisecond costs no core (MPI's own blocking receive spins one).
class Backoff {
 public:
  void reset() noexcept { next_ = kFirst; }
  std::chrono::nanoseconds next() noexcept {
    const auto now = next_;
    next_ = std::min(next_ * 2, kLast);
    return now;
  }

 private:
  static constexpr std::chrono::nanoseconds kFirst = std::chrono::microseconds(2);
  static constexpr std::chrono::nanoseconds kLast = std::chrono::milliseconds(1);
  std::chrono::nanoseconds next_ = kFirst;
};

// Throws troupe::Error naming `what` when an MPI call failed (MPI's default
// handler aborts the job first; this is for an MPI set to return errors).
void check_mpi(int code, const char* what);

}  // namespace troupe::mpi::detail
