// Futex waits, error reporting and the small out-of-line parts of Future.
#include "troupe/detail/future_core.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>
#include <string>

#include "common/log.hpp"
#include "troupe/future.hpp"

namespace troupe {

const char* to_string(FutureState state) noexcept {
  switch (state) {
    case FutureState::pending:
      return "pending";
    case FutureState::running:
      return "running";
    case FutureState::done:
      return "done";
    case FutureState::failed:
      return "failed";
    case FutureState::cancelled:
      return "cancelled";
  }
  return "unknown";
}

namespace detail {

namespace {

long futex(const std::atomic<std::uint32_t>& word, int op, std::uint32_t value, const timespec* timeout) noexcept {
  // The futex word is the atomic's storage; std::atomic<uint32_t> is a plain 4-byte object.
  auto* address = const_cast<std::uint32_t*>(reinterpret_cast<const std::uint32_t*>(&word));
  return syscall(SYS_futex, address, op, value, timeout, nullptr, 0);
}

}  // namespace

void futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline) noexcept {
  if (!deadline) {
    futex(word, FUTEX_WAIT_PRIVATE, expected, nullptr);
    return;
  }
  const auto left = *deadline - now_ns();
  if (left <= 0) {
    return;
  }
  timespec relative{};
  relative.tv_sec = static_cast<time_t>(left / 1'000'000'000);
  relative.tv_nsec = static_cast<long>(left % 1'000'000'000);
  futex(word, FUTEX_WAIT_PRIVATE, expected, &relative);
}

void futex_wake_all(const std::atomic<std::uint32_t>& word) noexcept {
  futex(word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
}

void futex_wake_one(const std::atomic<std::uint32_t>& word) noexcept {
  futex(word, FUTEX_WAKE_PRIVATE, 1, nullptr);
}

void report_callback_error(std::exception_ptr error) noexcept {
  if (!log_enabled(LogLevel::warn)) {
    return;
  }
  try {
    log(LogLevel::warn, "a future's done callback threw (ignored): " + describe_exception(error));
  } catch (...) {
    log(LogLevel::warn, "a future's done callback threw (ignored)");
  }
}

RunningTask& running_task() noexcept {
  thread_local RunningTask running;
  return running;
}

WaitHelper*& current_wait_helper() noexcept {
  thread_local WaitHelper* helper = nullptr;
  return helper;
}

void throw_no_state() {
  throw UsageError("this future has no state (default-constructed or moved from)");
}

void throw_timeout(std::uint64_t id) {
  throw TimeoutError("future " + std::to_string(id) + " did not complete within the timeout");
}

void throw_cancelled(const std::exception_ptr& cause, std::uint64_t id) {
  if (cause) {
    std::rethrow_exception(cause);
  }
  throw CancelledError("future " + std::to_string(id) + " was cancelled before it ran");
}

}  // namespace detail
}  // namespace troupe
