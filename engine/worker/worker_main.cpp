// troupe-worker: one process of a troupe::ProcessPool.
//
// Started by the pool's reactor thread with `--channel 3 --parent PID`. It
// reads a hello frame (plugins, initializer, finalizer, limits), loads the
// plugins, runs the initializer and answers ready (or init_failed). Then it
// runs task and chunk frames in order, streaming results back in batches,
// and a monitor thread sends a heartbeat with the RSS every ~100 ms while a
// task runs. It exits on a shutdown frame (after the finalizer), on EOF of
// its channel, and when its parent changes (the host died): it never
// outlives its host.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "process/error_record.hpp"
#include "process/frame_codec.hpp"
#include "process/protocol.hpp"
#include "process/worker_page.hpp"
#include "throw_trace.hpp"
#include "troupe/detail/chunk_loop.hpp"
#include "troupe/registry.hpp"
#include "troupe/sdk/task_context.hpp"
#include "troupe/sdk/worker.hpp"

namespace {

namespace tp = troupe::detail::process;
using tp::Message;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void quit(int status) {
  ::_exit(status);
}

class WorkerProcess {
 public:
  WorkerProcess(int fd, tp::WorkerPage* page, pid_t parent, std::unordered_map<std::uint64_t, int> descriptors)
      : fd_(fd), page_(page), parent_(parent), descriptors_(std::move(descriptors)) {
    statm_fd_ = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    page_size_ = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  }

  [[noreturn]] void run() {
    handshake();
    monitor_ = std::thread([this] { monitor_loop(); });
    for (;;) {
      look_ahead_for_revokes();
      tp::FrameView frame{};
      while (!in_.next(frame)) {
        if (!read_some(false)) {
          flush();
          read_some(true);
        }
      }
      handle(frame);
    }
  }

 private:
  // ---- channel ----------------------------------------------------------

  // Reads what is there (or blocks for something when `block`). False when
  // nothing was available. EOF: the host is gone or dropped us; exit.
  bool read_some(bool block) {
    auto space = in_.prepare();
    for (;;) {
      const long n = tp::recv_with_fds(fd_, space.data(), space.size(), block ? 0 : MSG_DONTWAIT, incoming_fds_);
      if (n > 0) {
        in_.commit(static_cast<std::size_t>(n));
        return true;
      }
      if (n == 0) {
        quit(0);
      }
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return false;
      }
      quit(0);
    }
  }

  void send_all(const std::uint8_t* data, std::size_t size) {
    while (size > 0) {
      const ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        quit(0);  // EPIPE: the host is gone
      }
      data += n;
      size -= static_cast<std::size_t>(n);
    }
  }

  void flush_locked() {
    if (!out_.empty()) {
      send_all(out_.data(), out_.size());
      out_.clear();
    }
  }

  void flush() {
    std::lock_guard lock(out_mutex_);
    flush_locked();
  }

  // Queues complete frames from `scratch_`; flushes when the batch is big or old.
  void emit() {
    const auto now = now_ns();
    std::lock_guard lock(out_mutex_);
    if (out_.empty()) {
      out_since_ns_ = now;
    }
    out_.insert(out_.end(), scratch_.begin(), scratch_.end());
    scratch_.clear();
    if (out_.size() >= 64 * 1024 || now - out_since_ns_ >= 100'000) {
      flush_locked();
    }
  }

  std::uint64_t read_rss() const {
    char text[128];
    const ssize_t n = ::pread(statm_fd_, text, sizeof text - 1, 0);
    if (n <= 0) {
      return 0;
    }
    text[n] = '\0';
    unsigned long long total = 0;
    unsigned long long resident = 0;
    if (std::sscanf(text, "%llu %llu", &total, &resident) != 2) {
      return 0;
    }
    return resident * page_size_;
  }

  // Fresh after a task that ran a while (it may have grown), else at most 1 ms old.
  std::uint64_t rss_after(std::int64_t task_ns, std::int64_t now) {
    if (task_ns >= 50'000 || now - rss_read_ns_ >= 1'000'000) {
      rss_ = read_rss();
      rss_read_ns_ = now;
    }
    return rss_;
  }

  // ---- start-up -----------------------------------------------------------

  [[noreturn]] void fail_start(const troupe::Value& record) {
    scratch_.clear();
    tp::write_frame(scratch_, tp::InitFailed{record});
    send_all(scratch_.data(), scratch_.size());
    quit(3);
  }

  void handshake() {
    tp::FrameView frame{};
    while (!in_.next(frame)) {
      read_some(true);
    }
    if (frame.type != Message::hello) {
      fail_start(tp::error_record("troupe::Error", "the first frame from the host was not hello"));
    }
    try {
      tp::Hello hello = tp::read_frame<tp::Hello>(frame);
      max_tasks_ = hello.max_tasks;
      max_memory_ = hello.max_memory;
      max_frame_ = hello.max_frame;
      worker_.emplace(static_cast<std::size_t>(hello.worker_id), hello.pool);
      for (const auto& path : hello.plugins) {
        registry_.load(path);
      }
      finalizer_ = std::move(hello.finalizer);
      if (finalizer_) {
        registry_.finalizer(finalizer_->task);  // unknown names fail at start, not at exit
      }
      if (hello.initializer) {
        troupe::worker::forget_last_throw();
        registry_.initializer(hello.initializer->task)
            .invoke(*worker_, hello.initializer->args, hello.initializer->kwargs);
      }
    } catch (...) {
      fail_start(tp::error_record_from_current(troupe::worker::take_trace()));
    }
    in_.set_max_frame(max_frame_ + 16);  // frames read past hello stay buffered
    scratch_.clear();
    rss_ = read_rss();
    rss_read_ns_ = now_ns();
    tp::Ready ready{static_cast<std::uint64_t>(::getpid()), rss_, {}};
    for (const troupe::Plugin* plugin : registry_.plugins()) {
      for (const auto& task : plugin->descriptor().tasks) {
        ready.tasks.push_back(task.signature);
      }
    }
    tp::write_frame(scratch_, ready);
    send_all(scratch_.data(), scratch_.size());
    scratch_.clear();
  }

  // ---- revoke and descriptors ------------------------------------------------

  // The host bumps the page's revoke epoch once a revoke frame is wholly in
  // the channel: read everything there is and note the ids of every revoke
  // frame buffered, so the frames they name are answered `revoked` instead
  // of run. Only between frames: reading may move the buffer under a view.
  void look_ahead_for_revokes() {
    const std::uint64_t epoch = page_->revoke_epoch.load(std::memory_order_acquire);
    if (epoch == revoke_epoch_seen_) {
      return;
    }
    revoke_epoch_seen_ = epoch;
    while (read_some(false)) {
    }
    in_.peek([this](const tp::FrameView& frame) {
      if (frame.type != Message::revoke) {
        return;
      }
      tp::MsgpackReader reader(frame.body, frame.end);
      tp::Revoke revoke;
      try {
        tp::decode(reader, revoke);
      } catch (const tp::FrameError&) {
        quit(4);
      }
      revoked_.insert(revoked_.end(), revoke.ids.begin(), revoke.ids.end());
    });
  }

  bool answer_if_revoked(std::uint64_t id) {
    const auto it = std::find(revoked_.begin(), revoked_.end(), id);
    if (it == revoked_.end()) {
      return false;
    }
    revoked_.erase(it);
    tp::write_frame(scratch_, tp::Revoked{id});
    emit();
    return true;
  }

  // A revoke frame reached in order: the frames it names are behind it, run
  // or revoked already; their ids are no longer needed.
  void forget_revokes(tp::MsgpackReader& reader) {
    tp::Revoke revoke;
    tp::decode(reader, revoke);
    for (const auto id : revoke.ids) {
      if (const auto it = std::find(revoked_.begin(), revoked_.end(), id); it != revoked_.end()) {
        revoked_.erase(it);
      }
    }
  }

  void take_descriptors(tp::MsgpackReader& reader) {
    tp::Descriptors message;
    tp::decode(reader, message);
    if (message.ids.size() > incoming_fds_.size()) {
      quit(4);  // a protocol error: the descriptors did not come with the frame
    }
    for (std::size_t i = 0; i < message.ids.size(); ++i) {
      auto [it, added] = descriptors_.try_emplace(message.ids[i], incoming_fds_[i]);
      if (!added) {
        ::close(it->second);
        it->second = incoming_fds_[i];
      }
    }
    incoming_fds_.erase(incoming_fds_.begin(), incoming_fds_.begin() + static_cast<std::ptrdiff_t>(message.ids.size()));
  }

  // ---- frames ---------------------------------------------------------------

  void handle(const tp::FrameView& frame) {
    tp::MsgpackReader reader(frame.body, frame.end);
    switch (frame.type) {
      case Message::task:
        run_task(reader);
        return;
      case Message::chunk:
        run_chunk(reader);
        return;
      case Message::revoke:
        forget_revokes(reader);
        return;
      case Message::descriptors:
        take_descriptors(reader);
        return;
      case Message::shutdown:
        shut_down();
      default:
        quit(4);  // a protocol error: the host sees an exit status
    }
  }

  const troupe::TaskInfo& lookup(std::string_view name) {
    auto it = tasks_.find(std::string(name));
    if (it == tasks_.end()) {
      it = tasks_.emplace(std::string(name), &registry_.task(name)).first;
    }
    return *it->second;
  }

  void begin_item(std::uint64_t id, std::uint64_t item, std::int64_t now) {
    running_id_.store(id, std::memory_order_relaxed);
    page_->item_started_ns.store(now, std::memory_order_relaxed);
    page_->item.store(item, std::memory_order_relaxed);
    page_->running_id.store(id, std::memory_order_release);
  }

  // The frame's outcome is queued (not necessarily sent).
  void end_frame_run() {
    running_id_.store(0, std::memory_order_relaxed);
    page_->rss.store(rss_, std::memory_order_relaxed);
    page_->running_id.store(0, std::memory_order_release);
  }

  void maybe_flush_before_task() {
    // A task that is not tiny should not hold back results already made.
    if (ewma_task_ns_ >= 20'000) {
      flush();
    }
  }

  void record_duration(std::int64_t ns) { ewma_task_ns_ = 0.8 * ewma_task_ns_ + 0.2 * static_cast<double>(ns); }

  void run_task(tp::MsgpackReader& reader) {
    tp::decode(reader, task_);
    const std::uint64_t id = task_.id;
    const std::string_view name = task_.task;
    if (retiring_) {
      return;  // the host put it back in its queue
    }
    if (answer_if_revoked(id)) {
      return;
    }
    maybe_flush_before_task();
    cancel_.store(false, std::memory_order_relaxed);
    const auto start = now_ns();
    begin_item(id, 0, start);
    std::optional<troupe::Value> result;
    troupe::Value record;
    troupe::worker::forget_last_throw();
    try {
      const troupe::TaskInfo& info = lookup(name);
      troupe::TaskContext context(info.signature.qualified_name, *worker_, &cancel_);
      result = info.invoke(context, task_.args, task_.kwargs);
    } catch (...) {
      record = tp::error_record_from_current(troupe::worker::take_trace());
    }
    const auto end = now_ns();
    record_duration(end - start);
    const std::uint64_t rss = rss_after(end - start, end);
    const auto at = scratch_.size();
    if (result) {
      const auto size = tp::write_frame(scratch_, tp::Result{id, rss, std::move(*result)});
      if (size - 4 > max_frame_) {
        scratch_.resize(at);
        tp::write_frame(scratch_, tp::Failure{id, rss, too_large(name, size)});
      }
    } else {
      tp::write_frame(scratch_, tp::Failure{id, rss, std::move(record)});
    }
    after_task(rss);
    emit();
    end_frame_run();
  }

  troupe::Value too_large(std::string_view name, std::size_t size) const {
    return tp::error_record("troupe::ResultTooLargeError",
                            "the result of " + std::string(name) + " is " + tp::format_bytes(size) +
                                " encoded, over the pool's max_frame of " + tp::format_bytes(max_frame_) +
                                "; return less (or a path to a file), or raise max_frame");
  }

  // Chunk results go out in parts: a part closes when it would pass
  // max_frame or has been open ~100 ms, so a crash loses little.
  struct Part {
    std::size_t frame = 0;
    std::size_t count_at = 0;
    std::uint32_t count = 0;
    std::int64_t opened_ns = 0;
  };

  Part open_part(std::uint64_t id, std::uint64_t first, std::int64_t now) {
    Part part;
    part.frame = tp::begin_frame(scratch_, Message::chunk_part);
    tp::MsgpackWriter writer(scratch_);
    tp::encode(writer, tp::ChunkPart{id, first, 0});
    part.count_at = tp::chunk_part_count_offset(scratch_);
    part.opened_ns = now;
    return part;
  }

  void close_part(Part& part, bool last, std::uint64_t rss) {
    tp::MsgpackWriter writer(scratch_);
    writer.patch_u32(part.count_at, part.count);
    tp::encode(writer, tp::ChunkPartTail{last, rss});
    tp::end_frame(scratch_, part.frame);
  }

  // One chunk frame being run: where its items come from and the part its outcomes go to.
  struct ChunkRun {
    std::uint64_t id;
    std::string_view name;
    const troupe::TaskInfo* info;
    tp::MsgpackReader& reader;
    std::int64_t now;
    Part part{};
  };

  // Runs item i (its args are next in the frame) and appends its outcome.
  bool run_item(ChunkRun& run, std::size_t i, std::size_t count) {
    tp::decode_chunk_item(run.reader, task_.args);
    begin_item(run.id, i, run.now);
    const auto item_at = scratch_.size();
    tp::MsgpackWriter writer(scratch_);
    bool ok = true;
    troupe::worker::forget_last_throw();
    try {
      troupe::TaskContext context(run.info->signature.qualified_name, *worker_, &cancel_);
      tp::encode_item_ok(writer, run.info->invoke(context, task_.args, no_kwargs_));
    } catch (...) {
      scratch_.resize(item_at);
      tp::encode_item_error(writer, tp::error_record_from_current(troupe::worker::take_trace()));
      ok = false;
    }
    run.now = now_ns();
    ok = fit_item(run, i, item_at) && ok;
    ++run.part.count;
    if (run.now - run.part.opened_ns >= 100'000'000 && i + 1 < count) {
      close_part(run.part, false, rss_after(0, run.now));
      emit();
      flush();
      run.part = open_part(run.id, i + 1, run.now);
    }
    return ok;
  }

  // An item never run because the chunk was cancelled: its args are skipped.
  void skip_item(ChunkRun& run, std::size_t) {
    tp::decode_chunk_item(run.reader, task_.args);
    tp::MsgpackWriter writer(scratch_);
    tp::encode_item_cancelled(writer);
    ++run.part.count;
  }

  // Keeps the open part under max_frame: an item that does not fit moves to a
  // fresh part; one that fits in no part becomes a ResultTooLargeError. False
  // when the item's value was replaced by that error.
  bool fit_item(ChunkRun& run, std::size_t i, std::size_t item_at) {
    constexpr std::size_t trailer = 10;  // bool last + uint64 rss
    if (scratch_.size() - run.part.frame - 4 + trailer <= max_frame_) {
      return true;
    }
    const std::size_t item_size = scratch_.size() - item_at;
    if (run.part.count > 0) {
      std::vector<std::uint8_t> item(scratch_.begin() + static_cast<std::ptrdiff_t>(item_at), scratch_.end());
      scratch_.resize(item_at);
      close_part(run.part, false, rss_after(0, run.now));
      emit();
      run.part = open_part(run.id, i, run.now);
      scratch_.insert(scratch_.end(), item.begin(), item.end());
    }
    if (scratch_.size() - run.part.frame - 4 + trailer <= max_frame_) {
      return true;
    }
    scratch_.resize(scratch_.size() - item_size);
    tp::MsgpackWriter writer(scratch_);
    tp::encode_item_error(writer, too_large(run.name, item_size));
    return false;
  }

  void run_chunk(tp::MsgpackReader& reader) {
    tp::Chunk chunk;
    tp::decode(reader, chunk);
    const std::uint64_t id = chunk.id;
    const std::string_view name = chunk.task;
    const std::uint64_t count = chunk.count;
    if (retiring_) {
      return;
    }
    if (answer_if_revoked(id)) {
      return;
    }
    maybe_flush_before_task();
    cancel_.store(false, std::memory_order_relaxed);
    const troupe::TaskInfo* info = nullptr;
    if (count > 0) {  // an empty chunk is the pool's ping: no task to look up
      try {
        info = &lookup(name);
      } catch (...) {
        // The chunk as a whole cannot run: its future fails.
        tp::write_frame(scratch_, tp::Failure{id, rss_, tp::error_record_from_current(std::string())});
        after_task(rss_);
        emit();
        return;
      }
    }
    const auto chunk_start = now_ns();
    ChunkRun run{id, name, info, reader, chunk_start};
    run.part = open_part(id, 0, run.now);
    // The host forwards a cancel through the shared page; reading it before
    // each item stops the chunk within one item (the monitor's 100 ms poll
    // only feeds TaskContext::cancelled()).
    const auto is_cancelled = [&] {
      return cancel_.load(std::memory_order_relaxed) || page_->cancel_id.load(std::memory_order_acquire) == id;
    };
    troupe::detail::run_chunk_items(
        count, is_cancelled, [&](std::size_t i) { return run_item(run, i, count); },
        [&](std::size_t i) { skip_item(run, i); });
    const auto now = run.now;
    record_duration(now - chunk_start);
    const std::uint64_t rss = rss_after(now - chunk_start, now);
    close_part(run.part, true, rss);
    after_task(rss);
    emit();
    end_frame_run();
  }

  // Recycling: the worker decides, right after the task that crossed a limit.
  void after_task(std::uint64_t rss) {
    ++tasks_done_;
    std::optional<tp::RetireReason> reason;
    if (max_memory_ != 0 && rss > max_memory_) {
      reason = tp::RetireReason::max_memory;
    } else if (max_tasks_ != 0 && tasks_done_ >= max_tasks_) {
      reason = tp::RetireReason::max_tasks;
    }
    if (reason) {
      retiring_ = true;
      tp::write_frame(scratch_, tp::Retiring{*reason, rss});
    }
  }

  [[noreturn]] void shut_down() {
    tp::Bye bye;
    if (finalizer_) {
      troupe::worker::forget_last_throw();
      try {
        registry_.finalizer(finalizer_->task).invoke(*worker_, finalizer_->args, finalizer_->kwargs);
      } catch (...) {
        bye.finalizer_error = tp::error_record_from_current(troupe::worker::take_trace());
      }
    }
    worker_->clear();
    tp::write_frame(scratch_, bye);
    emit();
    flush();
    quit(0);
  }

  // ---- monitor: parent watch, heartbeats, late flushes -------------------

  void monitor_loop() {
    std::vector<std::uint8_t> beat;
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (::getppid() != parent_) {
        quit(0);  // the host died (and PR_SET_PDEATHSIG did not reach us first)
      }
      const std::uint64_t id = running_id_.load(std::memory_order_relaxed);
      // Cooperative cancellation: the host names the running frame it wants
      // stopped; the task sees TaskContext::cancelled().
      if (id != 0 && page_->cancel_id.load(std::memory_order_acquire) == id) {
        cancel_.store(true, std::memory_order_relaxed);
      }
      std::lock_guard lock(out_mutex_);
      flush_locked();
      if (id == 0) {
        continue;
      }
      beat.clear();
      const std::uint64_t rss = read_rss();
      page_->rss.store(rss, std::memory_order_relaxed);
      tp::write_frame(beat, tp::Heartbeat{rss});
      send_all(beat.data(), beat.size());
    }
  }

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
  std::optional<troupe::Worker> worker_;
  std::optional<troupe::Call> finalizer_;
  std::unordered_map<std::string, const troupe::TaskInfo*> tasks_;
  tp::Task task_;  // the frame being decoded; its Args/Kwargs storage is reused
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

}  // namespace

int main(int argc, char** argv) {
  // Die with the host. The check after it closes the race with a host that
  // died before prctl ran.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  int channel = -1;
  int page_fd = -1;
  long parent = -1;
  std::unordered_map<std::uint64_t, int> inherited;  // --descriptor ID:FD, the host's table entries
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--descriptor") == 0) {
      char* colon = nullptr;
      const auto id = std::strtoull(argv[i + 1], &colon, 10);
      if (colon != nullptr && *colon == ':') {
        inherited[id] = std::atoi(colon + 1);
      }
    } else if (std::strcmp(argv[i], "--channel") == 0) {
      channel = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--page") == 0) {
      page_fd = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--parent") == 0) {
      parent = std::atol(argv[i + 1]);
    }
  }
  if (channel < 0 || page_fd < 0 || parent <= 0) {
    std::fprintf(stderr,
                 "troupe-worker runs inside a troupe::ProcessPool, which starts it; it is not a command "
                 "(usage: troupe-worker --channel FD --page FD --parent PID)\n");
    return 2;
  }
  if (::getppid() != static_cast<pid_t>(parent)) {
    return 0;
  }
  ::signal(SIGPIPE, SIG_IGN);
  // Ctrl-C goes to the host's process group, not ours; the host decides.
  ::signal(SIGINT, SIG_IGN);
  void* page = ::mmap(nullptr, tp::worker_page_size, PROT_READ | PROT_WRITE, MAP_SHARED, page_fd, 0);
  if (page == MAP_FAILED) {
    return 5;
  }
  ::close(page_fd);
  static WorkerProcess worker(channel, static_cast<tp::WorkerPage*>(page), static_cast<pid_t>(parent),
                              std::move(inherited));
  worker.run();
}
