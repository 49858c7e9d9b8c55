// InterruptScope: SIGINT and SIGTERM, while a scope lives, only write a byte
// to a pipe (all a signal handler may safely do); the scope's watcher
// thread reads it and calls on_interrupt(count) outside the handler.
#include "troupe/interrupt.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <utility>

#include "common/log.hpp"
#include "troupe/errors.hpp"

namespace troupe {

namespace {

constexpr std::array<int, 2> kSignals{SIGINT, SIGTERM};
constexpr char kSignalByte = 's';

std::atomic<bool> g_scope_live{false};
// The live scope's pipe, for the handler; -1 when none.
std::atomic<int> g_signal_fd{-1};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler reads g_signal_fd");

extern "C" void on_interrupt_signal(int /*signo*/) {
  const int saved = errno;
  const int fd = g_signal_fd.load(std::memory_order_acquire);
  if (fd >= 0) {
    // A full pipe (tens of thousands of unread signals) drops this one.
    [[maybe_unused]] const ssize_t n = ::write(fd, &kSignalByte, 1);
  }
  errno = saved;
}

[[noreturn]] void throw_system(const std::string& what) {
  throw Error("InterruptScope: " + what + " failed: " + std::strerror(errno));
}

}  // namespace

struct InterruptScope::State {
  std::function<void(int)> on_interrupt;
  std::array<int, 2> pipe{-1, -1};
  std::array<struct sigaction, kSignals.size()> previous{};
  std::size_t installed = 0;  // how many of kSignals have our handler
  std::atomic<int> count{0};
  std::thread watcher;

  void watch() {
    for (;;) {
      char byte = 0;
      const ssize_t n = ::read(pipe[0], &byte, 1);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        return;  // the scope closed the write end: every signal before it was read
      }
      const int seen = count.fetch_add(1, std::memory_order_relaxed) + 1;
      try {
        on_interrupt(seen);
      } catch (...) {
        detail::log(LogLevel::error, "InterruptScope: the interrupt callback threw (ignored): " +
                                         describe_exception(std::current_exception()));
      }
    }
  }

  // Puts back what was there before, in reverse order; never throws.
  void restore() noexcept {
    while (installed > 0) {
      --installed;
      ::sigaction(kSignals[installed], &previous[installed], nullptr);
    }
    g_signal_fd.store(-1, std::memory_order_relaxed);
  }

  // Closes the write end, lets the watcher read what is left, and joins it.
  void stop() noexcept {
    if (pipe[1] >= 0) {
      ::close(pipe[1]);
      pipe[1] = -1;
    }
    if (watcher.joinable()) {
      watcher.join();
    }
    if (pipe[0] >= 0) {
      ::close(pipe[0]);
      pipe[0] = -1;
    }
  }
};

InterruptScope::InterruptScope(std::function<void(int count)> on_interrupt) {
  if (!on_interrupt) {
    throw ArgumentError("InterruptScope: the callback is empty; pass a function that takes the interrupt count");
  }
  bool expected = false;
  if (!g_scope_live.compare_exchange_strong(expected, true)) {
    throw UsageError(
        "InterruptScope: another scope is live in this process (one at a time: SIGINT and SIGTERM have one "
        "handler); end it before making a new one");
  }
  auto state = std::make_unique<State>();
  state->on_interrupt = std::move(on_interrupt);
  try {
    if (::pipe2(state->pipe.data(), O_CLOEXEC) != 0) {
      throw_system("pipe2");
    }
    // The handler must never block: an unread pipe drops signals instead.
    if (::fcntl(state->pipe[1], F_SETFL, O_NONBLOCK) != 0) {
      throw_system("fcntl(O_NONBLOCK)");
    }
    g_signal_fd.store(state->pipe[1], std::memory_order_release);  // the pipe happens before its use
    state->watcher = std::thread([s = state.get()] { s->watch(); });
    struct sigaction action {};
    action.sa_handler = on_interrupt_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (const int signo : kSignals) {
      if (::sigaction(signo, &action, &state->previous[state->installed]) != 0) {
        throw_system(signo == SIGINT ? "sigaction(SIGINT)" : "sigaction(SIGTERM)");
      }
      ++state->installed;
    }
  } catch (...) {
    state->restore();
    state->stop();
    g_scope_live.store(false);
    throw;
  }
  state_ = std::move(state);
}

InterruptScope::~InterruptScope() {
  // Handlers first: after this no signal reaches the pipe, so every byte
  // still in it is a signal the callback sees before stop() returns.
  state_->restore();
  state_->stop();
  g_scope_live.store(false);
}

int InterruptScope::count() const noexcept {
  return state_->count.load(std::memory_order_relaxed);
}

}  // namespace troupe
