// The process pool's event loop primitives: one epoll set and an eventfd
// that other threads use to wake it. Descriptors are registered with a
// 64-bit tag the caller chooses; the reactor knows nothing of workers,
// frames or the protocol.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <span>

namespace troupe::detail::process {

class Reactor {
 public:
  Reactor();  // throws troupe::Error when the epoll set or eventfd cannot be made
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  void watch(int fd, std::uint32_t events, std::uint64_t tag);
  void rewatch(int fd, std::uint32_t events, std::uint64_t tag);
  void unwatch(int fd);

  // From any thread. wake() writes the eventfd only while the loop sleeps
  // (or is about to); wake_always() writes it regardless.
  void wake();
  void wake_always();

  // The loop thread: about_to_sleep(), check for work that raced in (then
  // awake() and go round), else wait().
  void about_to_sleep() { sleeping_.store(true, std::memory_order_seq_cst); }
  void awake() { sleeping_.store(false, std::memory_order_seq_cst); }
  // Up to timeout_ms (-1: no limit); the eventfd's events are drained and
  // left out. The span lives until the next wait().
  std::span<const epoll_event> wait(int timeout_ms);

 private:
  void close_fds();

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> sleeping_{false};
  epoll_event events_[64];
};

}  // namespace troupe::detail::process
