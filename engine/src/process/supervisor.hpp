// A worker process's lifecycle: spawn (with its hello queued), ready, retire
// with the grace period (shutdown frame, then SIGTERM, then SIGKILL), kill,
// and reap; plus its channel's I/O. The supervisor owns the workers; what
// their frames mean is the pool's business (pool_frames.cpp).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "process/frame_codec.hpp"
#include "process/job.hpp"
#include "process/reactor.hpp"
#include "process/worker_page.hpp"
#include "troupe/process_errors.hpp"
#include "troupe/process_pool.hpp"

namespace troupe::detail::process {

enum class Phase { starting, ready, stopping };

// Why a worker's process ended, as far as the pool knows. A reason replaces
// the one set before only when it ranks higher (later in this list).
enum class ExitReason {
  unexpected,           // a crash: the task it ran fails, what it had not started runs elsewhere
  protocol_error,       // killed for a bad frame: a crash that says why
  left,                 // bye, init_failed, SIGTERM after the grace period, or killed by a broken pool
  killed_for_shutdown,  // shutdown({.kill_workers = true}): its tasks fail with WorkerCrashedError
  startup_timeout,      // not ready within startup_timeout
  task_timeout,         // killed for the timeout of the item it ran
  interrupted,          // killed by interrupt_running(): its running task ends cancelled, not a crash
};

struct WorkerProcess {
  std::uint64_t token = 0;  // unique for the pool's life; ids are reused
  std::size_t id = 0;
  pid_t pid = -1;
  int pidfd = -1;
  int fd = -1;
  WorkerPage* page = nullptr;
  Phase phase = Phase::starting;
  FrameBuffer in{default_max_frame + 16};
  std::vector<std::uint8_t> out;
  std::size_t out_pos = 0;
  bool want_write = false;
  bool channel_open = true;
  bool revoke_unflushed = false;  // a revoke frame is in `out`: bump the page's revoke epoch once it is sent
  std::deque<JobPtr> inflight;
  std::int64_t spawned_ns = 0;
  std::int64_t idle_since_ns = 0;
  std::int64_t current_started_ns = 0;  // when the head of `inflight` became the head (for the EWMA)
  std::int64_t last_result_ns = 0;
  double ewma_ns = 0;
  std::optional<std::uint64_t> last_rss;
  bool retiring = false;
  ExitReason exit_reason = ExitReason::unexpected;
  std::string protocol_error;      // what the bad frame was (ExitReason::protocol_error)
  std::uint64_t timed_out_id = 0;  // ExitReason::task_timeout: the frame, its item, its timeout
  std::uint64_t timed_out_item = 0;
  std::chrono::nanoseconds timed_out_after{0};
  std::int64_t term_at = 0;  // retirement: SIGTERM at, then SIGKILL at
  std::int64_t kill_at = 0;

  void expect(ExitReason why) {
    if (why > exit_reason) {
      exit_reason = why;
    }
  }
  std::uint64_t channel_tag() const { return token << 1; }
  std::uint64_t pid_tag() const { return (token << 1) | 1; }
};

// What reap() found: the exit, the frame (and item) the page says ran, and
// the last frame it began (those sent before it began too; after it, none).
struct Reaped {
  WorkerExit exit;
  std::uint64_t running_id = 0;
  std::uint64_t running_item = 0;
  std::uint64_t begun_id = 0;
};

class Supervisor {
 public:
  Supervisor(Reactor& reactor, const ProcessPoolOptions& options, std::filesystem::path executable,
             std::vector<std::filesystem::path> plugins);

  // Starts a worker (posix_spawn from this thread: PR_SET_PDEATHSIG follows
  // it), watches its channel and pidfd, and queues its hello. Throws Error.
  WorkerProcess& spawn();
  WorkerProcess* find(std::uint64_t token);
  std::size_t live() const { return workers_.size(); }
  auto& workers() { return workers_; }
  const auto& workers() const { return workers_; }

  // The shutdown frame now; escalate() sends SIGTERM once `grace` has passed
  // and SIGKILL after another `grace`.
  void retire(WorkerProcess& w, std::chrono::nanoseconds grace, std::int64_t now);
  void escalate(WorkerProcess& w, std::int64_t now, std::chrono::nanoseconds grace);
  void kill(WorkerProcess& w, ExitReason why);
  void kill_for_protocol_error(WorkerProcess& w, std::string what);

  void flush(WorkerProcess& w);
  void flush_all();
  void close_channel(WorkerProcess& w);
  // Reads what the channel has and calls on_frame(w, frame) for each frame;
  // a malformed frame (FrameError) kills the worker as a protocol error.
  template <class OnFrame>
  void read_channel(WorkerProcess& w, OnFrame&& on_frame);

  // After its pidfd fired: the exit status (waitid), what it was running
  // (the page), every descriptor closed. forget() then drops it.
  Reaped reap(WorkerProcess& w);
  void forget(WorkerProcess& w);

  const std::filesystem::path& executable() const { return executable_; }

 private:
  std::size_t free_id();
  void set_write_interest(WorkerProcess& w, bool on);

  Reactor& reactor_;
  const ProcessPoolOptions& options_;
  std::filesystem::path executable_;
  std::vector<std::filesystem::path> plugins_;
  std::unordered_map<std::uint64_t, std::unique_ptr<WorkerProcess>> workers_;
  std::uint64_t next_token_ = 1;
  std::vector<bool> used_ids_;
  std::mt19937_64 rng_;
};

template <class OnFrame>
void Supervisor::read_channel(WorkerProcess& w, OnFrame&& on_frame) {
  while (w.channel_open) {
    auto space = w.in.prepare();
    const ssize_t n = ::recv(w.fd, space.data(), space.size(), MSG_DONTWAIT);
    if (n > 0) {
      w.in.commit(static_cast<std::size_t>(n));
      try {
        FrameView frame{};
        while (w.channel_open && w.in.next(frame)) {
          on_frame(w, frame);
        }
      } catch (const std::exception& e) {
        kill_for_protocol_error(w, e.what());
      }
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    }
    close_channel(w);  // EOF or error: the process is ending; the pidfd follows
  }
}

}  // namespace troupe::detail::process
