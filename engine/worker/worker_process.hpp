// troupe-worker's one process: the channel to the host, start-up (hello ->
// ready), the frames it runs (worker_run.cpp), revokes and descriptors, and
// the monitor thread (worker_process.cpp). One per process; never destroyed
// (the process ends with _exit).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "process/error_record.hpp"
#include "process/frame_codec.hpp"
#include "process/protocol.hpp"
#include "process/worker_page.hpp"
#include "shared/shared_state.hpp"
#include "troupe/registry.hpp"
#include "troupe/sdk/worker.hpp"

namespace troupe::worker {

namespace tp = troupe::detail::process;

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] inline void quit(int status) {
  ::_exit(status);
}

class WorkerProcess {
 public:
  WorkerProcess(int fd, tp::WorkerPage* page, pid_t parent, std::unordered_map<std::uint64_t, int> descriptors)
      : fd_(fd), page_(page), parent_(parent), descriptors_(std::move(descriptors)) {
    statm_fd_ = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    page_size_ = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    for (const auto& [id, descriptor] : descriptors_) {
      attach_shared(id, descriptor);
    }
  }

  [[noreturn]] void run();

 private:
  // ---- channel ----------------------------------------------------------

  // Reads what is there (or blocks for something when `block`). False when
  // nothing was available. EOF: the host is gone or dropped us; exit.
  bool read_some(bool block);

  void send_all(const std::uint8_t* data, std::size_t size);

  void flush_locked();

  void flush();

  // Queues complete frames from `scratch_`; flushes when the batch is big or old.
  void emit();

  std::uint64_t read_rss() const;

  // Fresh after a task that ran a while (it may have grown), else at most 1 ms old.
  std::uint64_t rss_after(std::int64_t task_ns, std::int64_t now);

  // ---- start-up -----------------------------------------------------------

  [[noreturn]] void fail_start(const troupe::Value& record);

  // The exception being handled, as an error record cut to fit in a frame
  // (a record over max_frame would be a protocol error). Inside a catch.
  troupe::Value caught(std::string trace) const {
    constexpr std::size_t frame_overhead = 64;  // header, ids, rss, a chunk part's head and tail
    return tp::fit_error_record(tp::error_record_from_current(std::move(trace)), max_frame_ - frame_overhead);
  }

  void handshake();

  // ---- revoke and descriptors ------------------------------------------------

  // The host bumps the page's revoke epoch once a revoke frame is wholly in
  // the channel: read everything there is and note the ids of every revoke
  // frame buffered, so the frames they name are answered `revoked` instead
  // of run. Only between frames: reading may move the buffer under a view.
  void look_ahead_for_revokes();

  bool answer_if_revoked(std::uint64_t id);

  // A revoke frame reached in order: the frames it names are behind it, run
  // or revoked already; their ids are no longer needed.
  void forget_revokes(tp::MsgpackReader& reader);

  void take_descriptors(tp::MsgpackReader& reader);
  // Maps a shared counter's or dict's memfd (ids from shared::first_descriptor_id).
  void attach_shared(std::uint64_t id, int fd);

  // ---- frames ---------------------------------------------------------------

  void handle(const tp::FrameView& frame);

  const troupe::TaskInfo& lookup(std::string_view name);

  void begin_item(std::uint64_t id, std::uint64_t item, std::int64_t now);

  // The frame's outcome is queued (not necessarily sent).
  void end_frame_run();

  void maybe_flush_before_task();

  void record_duration(std::int64_t ns) { ewma_task_ns_ = 0.8 * ewma_task_ns_ + 0.2 * static_cast<double>(ns); }

  void run_task(tp::MsgpackReader& reader);

  // The running task's arguments; ArgumentError when they cannot be read.
  void decode_arguments(tp::MsgpackReader& reader, std::string_view name);

  // The error record for a result the codec cannot write (nested too deep).
  static troupe::Value unsendable(std::string_view name, const tp::FrameError& e);

  troupe::Value too_large(std::string_view name, std::size_t size) const;

  // Chunk results go out in parts: a part closes when it would pass
  // max_frame or has been open ~100 ms, so a crash loses little.
  struct Part {
    std::size_t frame = 0;
    std::size_t count_at = 0;
    std::uint32_t count = 0;
    std::int64_t opened_ns = 0;
  };

  Part open_part(std::uint64_t id, std::uint64_t first, std::int64_t now);

  void close_part(Part& part, bool last, std::uint64_t rss);

  // One chunk frame being run: where its items come from and the part its outcomes go to.
  struct ChunkRun {
    std::uint64_t id;
    std::string_view name;
    const troupe::TaskInfo* info;
    tp::MsgpackReader& reader;
    std::int64_t now;
    Part part{};
    std::string unreadable;  // why an item's arguments could not be read; the rest cannot be found
  };

  // Runs item i (its args are next in the frame) and appends its outcome.
  bool run_item(ChunkRun& run, std::size_t i, std::size_t count);

  // Reads the next item's arguments into task_.args; false (and why in
  // run.unreadable) when they, or an earlier item's, cannot be read.
  bool read_item_arguments(ChunkRun& run);

  // An item never run because the chunk was cancelled: its args are skipped.
  void skip_item(ChunkRun& run, std::size_t);

  // Keeps the open part under max_frame: an item that does not fit moves to a
  // fresh part; one that fits in no part becomes a ResultTooLargeError. False
  // when the item's value was replaced by that error.
  bool fit_item(ChunkRun& run, std::size_t i, std::size_t item_at);

  void run_chunk(tp::MsgpackReader& reader);

  // Recycling: the worker decides, right after the task that crossed a limit.
  void after_task(std::uint64_t rss);

  [[noreturn]] void shut_down();

  // ---- monitor: parent watch, heartbeats, late flushes -------------------

  void monitor_loop();

  int fd_;
  tp::WorkerPage* page_;
  pid_t parent_;
  int statm_fd_ = -1;
  std::uint64_t page_size_ = 4096;
  tp::FrameBuffer in_{tp::default_max_frame};
  std::mutex out_mutex_;
  std::vector<std::uint8_t> out_;  // complete frames not yet sent (out_mutex_)
  std::int64_t out_since_ns_ = 0;
  std::vector<std::uint8_t> scratch_;  // frames being built (main thread)
  std::uint64_t max_frame_ = tp::default_max_frame;
  std::uint64_t max_tasks_ = 0;
  std::uint64_t max_memory_ = 0;
  std::uint64_t tasks_done_ = 0;
  bool retiring_ = false;
  troupe::Registry registry_;
  troupe::detail::shared::SharedState shared_;  // the pool's counters and dicts; worker_'s services()
  std::optional<troupe::Worker> worker_;
  std::optional<troupe::Call> finalizer_;
  std::unordered_map<std::string, const troupe::TaskInfo*> tasks_;
  tp::Task task_;                 // the frame being decoded; its Args/Kwargs storage is reused
  std::uint64_t timeout_ns_ = 0;  // the running frame's per-item timeout (0: none)
  const troupe::Kwargs no_kwargs_;
  std::vector<int> incoming_fds_;                       // arrived with the channel's bytes, not yet claimed
  std::unordered_map<std::uint64_t, int> descriptors_;  // the host's descriptors, by its id
  std::vector<std::uint64_t> revoked_;                  // ids seen in buffered revoke frames
  std::uint64_t revoke_epoch_seen_ = 0;
  std::atomic<bool> cancel_{false};
  std::atomic<std::uint64_t> running_id_{0};
  std::uint64_t rss_ = 0;
  std::int64_t rss_read_ns_ = 0;
  double ewma_task_ns_ = 0;
  std::thread monitor_;  // never joined: the process ends with _exit
};

}  // namespace troupe::worker
