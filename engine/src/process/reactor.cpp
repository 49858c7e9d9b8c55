#include "process/reactor.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "troupe/sdk/errors.hpp"

namespace troupe::detail::process {

namespace {
constexpr std::uint64_t wake_tag = ~std::uint64_t{0};
}

Reactor::Reactor() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    const int error = errno;
    close_fds();
    throw Error(std::string("ProcessPool: cannot create its epoll set or eventfd: ") + std::strerror(error));
  }
  watch(wake_fd_, EPOLLIN, wake_tag);
}

Reactor::~Reactor() {
  close_fds();
}

void Reactor::close_fds() {
  if (epoll_fd_ >= 0) {
    ::close(epoll_fd_);
    epoll_fd_ = -1;
  }
  if (wake_fd_ >= 0) {
    ::close(wake_fd_);
    wake_fd_ = -1;
  }
}

void Reactor::watch(int fd, std::uint32_t events, std::uint64_t tag) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
}

void Reactor::rewatch(int fd, std::uint32_t events, std::uint64_t tag) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
}

void Reactor::unwatch(int fd) {
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

void Reactor::wake() {
  if (sleeping_.load(std::memory_order_seq_cst) && sleeping_.exchange(false, std::memory_order_seq_cst)) {
    wake_always();
  }
}

void Reactor::wake_always() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
}

std::span<const epoll_event> Reactor::wait(int timeout_ms) {
  const int n = ::epoll_wait(epoll_fd_, events_, 64, timeout_ms);
  sleeping_.store(false, std::memory_order_seq_cst);
  std::size_t kept = 0;
  for (int i = 0; i < n; ++i) {
    if (events_[i].data.u64 == wake_tag) {
      std::uint64_t count = 0;
      [[maybe_unused]] const auto r = ::read(wake_fd_, &count, sizeof count);
      continue;
    }
    events_[kept++] = events_[i];
  }
  return {events_, kept};
}

}  // namespace troupe::detail::process
