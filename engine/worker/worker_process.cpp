// The worker's channel, start-up, revokes and descriptors, shutdown and monitor thread.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "process/error_record.hpp"
#include "throw_trace.hpp"
#include "troupe/detail/chunk_loop.hpp"
#include "troupe/sdk/task_context.hpp"
#include "worker_process.hpp"

namespace troupe::worker {

using tp::Message;

[[noreturn]] void WorkerProcess::run() {
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

bool WorkerProcess::read_some(bool block) {
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

void WorkerProcess::send_all(const std::uint8_t* data, std::size_t size) {
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

void WorkerProcess::flush_locked() {
  if (!out_.empty()) {
    send_all(out_.data(), out_.size());
    out_.clear();
  }
}

void WorkerProcess::flush() {
  std::lock_guard lock(out_mutex_);
  flush_locked();
}

void WorkerProcess::emit() {
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

std::uint64_t WorkerProcess::read_rss() const {
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

std::uint64_t WorkerProcess::rss_after(std::int64_t task_ns, std::int64_t now) {
  if (task_ns >= 50'000 || now - rss_read_ns_ >= 1'000'000) {
    rss_ = read_rss();
    rss_read_ns_ = now;
  }
  return rss_;
}

[[noreturn]] void WorkerProcess::fail_start(const troupe::Value& record) {
  scratch_.clear();
  tp::write_frame(scratch_, tp::InitFailed{record});
  send_all(scratch_.data(), scratch_.size());
  quit(3);
}

void WorkerProcess::handshake() {
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
    worker_->set_services(shared_.services());
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
    fail_start(caught(troupe::worker::take_trace()));
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
    for (const auto& hook : plugin->descriptor().initializers) {
      ready.tasks.push_back(hook.signature);
    }
    for (const auto& hook : plugin->descriptor().finalizers) {
      ready.tasks.push_back(hook.signature);
    }
  }
  tp::write_frame(scratch_, ready);
  send_all(scratch_.data(), scratch_.size());
  scratch_.clear();
}

void WorkerProcess::look_ahead_for_revokes() {
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

bool WorkerProcess::answer_if_revoked(std::uint64_t id) {
  const auto it = std::find(revoked_.begin(), revoked_.end(), id);
  if (it == revoked_.end()) {
    return false;
  }
  revoked_.erase(it);
  tp::write_frame(scratch_, tp::Revoked{id});
  emit();
  return true;
}

void WorkerProcess::forget_revokes(tp::MsgpackReader& reader) {
  tp::Revoke revoke;
  tp::decode(reader, revoke);
  for (const auto id : revoke.ids) {
    if (const auto it = std::find(revoked_.begin(), revoked_.end(), id); it != revoked_.end()) {
      revoked_.erase(it);
    }
  }
}

void WorkerProcess::take_descriptors(tp::MsgpackReader& reader) {
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
    attach_shared(message.ids[i], incoming_fds_[i]);
  }
  incoming_fds_.erase(incoming_fds_.begin(), incoming_fds_.begin() + static_cast<std::ptrdiff_t>(message.ids.size()));
}

void WorkerProcess::attach_shared(std::uint64_t id, int fd) {
  if (id >= troupe::detail::shared::first_descriptor_id) {
    shared_.attach(fd);
  }
}

[[noreturn]] void WorkerProcess::shut_down() {
  tp::Bye bye;
  if (finalizer_) {
    troupe::worker::forget_last_throw();
    try {
      registry_.finalizer(finalizer_->task).invoke(*worker_, finalizer_->args, finalizer_->kwargs);
    } catch (...) {
      bye.finalizer_error = caught(troupe::worker::take_trace());
    }
  }
  // Worker objects (worker_class) after the finalizer, on this (their) thread.
  troupe::worker::forget_last_throw();
  try {
    worker_->destroy_objects();
  } catch (...) {
    if (!bye.finalizer_error) {
      bye.finalizer_error = caught(troupe::worker::take_trace());
    }
  }
  worker_->clear();
  tp::write_frame(scratch_, bye);
  emit();
  flush();
  quit(0);
}

void WorkerProcess::monitor_loop() {
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

}  // namespace troupe::worker
