#include "process/supervisor.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process/protocol.hpp"
#include "process/spawn.hpp"

namespace troupe::detail::process {

Supervisor::Supervisor(Reactor& reactor, const ProcessPoolOptions& options, std::filesystem::path executable,
                       std::vector<std::filesystem::path> plugins)
    : reactor_(reactor), options_(options), executable_(std::move(executable)), plugins_(std::move(plugins)) {
  rng_.seed(std::random_device{}());
}

std::size_t Supervisor::free_id() {
  for (std::size_t i = 0;; ++i) {
    if (i >= used_ids_.size()) {
      used_ids_.resize(i + 1, false);
    }
    if (!used_ids_[i]) {
      used_ids_[i] = true;
      return i;
    }
  }
}

WorkerProcess& Supervisor::spawn() {
  const SpawnedWorker spawned =
      spawn_worker(executable_, options_.env, inherited_ ? inherited_() : std::vector<InheritedFd>{});
  auto w = std::make_unique<WorkerProcess>();
  w->token = next_token_++;
  w->id = free_id();
  w->pid = spawned.pid;
  w->pidfd = spawned.pidfd;
  w->fd = spawned.channel;
  w->page = static_cast<WorkerPage*>(spawned.page);
  w->spawned_ns = detail::now_ns();
  w->in = FrameBuffer(options_.max_frame + 16);
  const int buffer = 1 << 20;
  ::setsockopt(w->fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  ::setsockopt(w->fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  reactor_.watch(w->fd, EPOLLIN | EPOLLRDHUP, w->channel_tag());
  reactor_.watch(w->pidfd, EPOLLIN, w->pid_tag());

  std::uint64_t max_tasks = 0;
  if (options_.max_tasks_per_worker) {
    max_tasks = *options_.max_tasks_per_worker;
    if (options_.recycle_jitter > 0) {
      max_tasks += std::uniform_int_distribution<std::uint64_t>(0, options_.recycle_jitter)(rng_);
    }
  }
  Hello hello{w->id,
              options_.name,
              {},
              options_.initializer,
              options_.finalizer,
              max_tasks,
              options_.max_memory_per_worker.value_or(0),
              options_.max_frame};
  for (const auto& p : plugins_) {
    hello.plugins.push_back(p.string());
  }
  write_frame(w->out, hello);
  WorkerProcess& added = *w;
  workers_.emplace(w->token, std::move(w));
  return added;
}

WorkerProcess* Supervisor::find(std::uint64_t token) {
  const auto it = workers_.find(token);
  return it == workers_.end() ? nullptr : it->second.get();
}

void Supervisor::retire(WorkerProcess& w, std::chrono::nanoseconds grace, std::int64_t now) {
  if (w.phase == Phase::stopping) {
    return;
  }
  w.phase = Phase::stopping;
  w.term_at = now + grace.count();
  if (w.channel_open) {
    write_frame(w.out, Shutdown{});
  }
}

void Supervisor::escalate(WorkerProcess& w, std::int64_t now, std::chrono::nanoseconds grace) {
  if (w.term_at != 0 && now >= w.term_at) {
    w.term_at = 0;
    w.kill_at = now + grace.count();
    w.expect(ExitReason::left);
    ::kill(w.pid, SIGTERM);
  }
  if (w.kill_at != 0 && now >= w.kill_at) {
    w.kill_at = 0;
    ::kill(w.pid, SIGKILL);
  }
}

void Supervisor::kill(WorkerProcess& w, ExitReason why) {
  w.expect(why);
  ::kill(w.pid, SIGKILL);
}

// A malformed or out-of-order frame: the worker cannot be trusted.
void Supervisor::kill_for_protocol_error(WorkerProcess& w, std::string what) {
  w.protocol_error = std::move(what);
  kill(w, ExitReason::protocol_error);
  close_channel(w);
}

void Supervisor::set_write_interest(WorkerProcess& w, bool on) {
  if (w.want_write == on || !w.channel_open) {
    return;
  }
  w.want_write = on;
  reactor_.rewatch(w.fd, EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u), w.channel_tag());
}

void Supervisor::share(std::uint64_t id, int fd) {
  for (auto& [token, w] : workers_) {
    if (w->channel_open) {
      w->fd_marks.emplace_back(w->out.size(), fd);
      write_frame(w->out, Descriptors{{id}});
    }
  }
}

// Sends up to the next fd mark; at a mark, from it with the fd attached.
void Supervisor::flush(WorkerProcess& w) {
  if (!w.channel_open) {
    w.out.clear();
    w.out_pos = 0;
    w.fd_marks.clear();
    return;
  }
  while (w.out_pos < w.out.size()) {
    const bool at_mark = !w.fd_marks.empty() && w.fd_marks.front().first == w.out_pos;
    std::size_t end = w.out.size();
    for (const auto& [offset, fd] : w.fd_marks) {
      if (offset > w.out_pos) {
        end = offset;
        break;
      }
    }
    const ssize_t n = at_mark
                          ? send_with_fds(w.fd, w.out.data() + w.out_pos, end - w.out_pos, {w.fd_marks.front().second})
                          : ::send(w.fd, w.out.data() + w.out_pos, end - w.out_pos, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      if (at_mark) {
        w.fd_marks.pop_front();
      }
      w.out_pos += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_write_interest(w, true);
      return;
    }
    close_channel(w);  // EPIPE / ECONNRESET: the worker is gone; its pidfd tells the rest
    return;
  }
  w.out.clear();
  w.out_pos = 0;
  set_write_interest(w, false);
  if (w.revoke_unflushed) {
    w.revoke_unflushed = false;
    w.page->revoke_epoch.fetch_add(1, std::memory_order_release);  // the revoke is wholly in the channel
  }
}

void Supervisor::flush_all() {
  for (auto& [token, w] : workers_) {
    if (w->out.size() > w->out_pos) {
      flush(*w);
    }
  }
}

void Supervisor::close_channel(WorkerProcess& w) {
  if (!w.channel_open) {
    return;
  }
  w.channel_open = false;
  reactor_.unwatch(w.fd);
  w.out.clear();
  w.out_pos = 0;
  w.fd_marks.clear();
}

namespace {

WorkerExit collect_exit(const WorkerProcess& w) {
  WorkerExit exit;
  exit.worker_id = w.id;
  exit.pid = w.pid;
  exit.last_rss = w.last_rss;
  exit.starting = w.phase == Phase::starting;
  siginfo_t info{};
  int r = ::waitid(P_PID, static_cast<id_t>(w.pid), &info, WEXITED | WNOHANG);
  if (r == 0 && info.si_pid == 0) {
    r = ::waitid(P_PID, static_cast<id_t>(w.pid), &info, WEXITED);
  }
  if (r == 0) {
    if (info.si_code == CLD_EXITED) {
      exit.exit_status = info.si_status;
    } else {
      exit.signal = info.si_status;
    }
  }
  // Only the pool's own SIGKILL is its doing: a worker that sent a bad
  // frame and then crashed on its own keeps its own cause.
  if (w.exit_reason == ExitReason::protocol_error && exit.signal == SIGKILL) {
    exit.killed_for = "it broke the frame protocol (" + w.protocol_error + ")";
  }
  return exit;
}

}  // namespace

Reaped Supervisor::reap(WorkerProcess& w) {
  Reaped reaped;
  reaped.exit = collect_exit(w);
  reactor_.unwatch(w.pidfd);
  close_channel(w);
  ::close(w.pidfd);
  ::close(w.fd);
  // Results of frames before the running one that were still in its send
  // batch died with it: the page says which frame was running, and which
  // it began last.
  reaped.running_id = w.page->running_id.load(std::memory_order_acquire);
  reaped.running_item = w.page->item.load(std::memory_order_relaxed);
  reaped.begun_id = w.page->begun_id.load(std::memory_order_relaxed);
  if (const auto page_rss = w.page->rss.load(std::memory_order_relaxed); page_rss != 0) {
    reaped.exit.last_rss = page_rss;
  }
  ::munmap(w.page, worker_page_size);
  w.page = nullptr;
  return reaped;
}

void Supervisor::forget(WorkerProcess& w) {
  if (w.id < used_ids_.size()) {
    used_ids_[w.id] = false;
  }
  workers_.erase(w.token);  // `w` is gone from here on
}

}  // namespace troupe::detail::process
