// spawn_worker and the worker's side of the protocol, without a pool: a
// worker started with an inherited descriptor answers hello with its task
// table, a task it runs finds the descriptor open, and descriptors passed
// after start land in its table.
#include "process/spawn.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "process/protocol.hpp"
#include "process/worker_page.hpp"
#include "support/paths.hpp"

namespace troupe::detail::process {
namespace {

// The next frame from the worker, waiting up to 20 s for it.
template <class M>
M next_frame(int channel, FrameBuffer& in) {
  FrameView frame{};
  while (!in.next(frame)) {
    pollfd p{channel, POLLIN, 0};
    if (::poll(&p, 1, 20'000) != 1) {
      throw std::runtime_error("no frame from the worker within 20 s");
    }
    auto space = in.prepare();
    const ssize_t n = ::recv(channel, space.data(), space.size(), 0);
    if (n <= 0) {
      throw std::runtime_error("the worker closed its channel");
    }
    in.commit(static_cast<std::size_t>(n));
  }
  return read_frame<M>(frame);
}

void send_frame(int channel, const std::vector<std::uint8_t>& bytes) {
  std::size_t at = 0;
  while (at < bytes.size()) {
    pollfd p{channel, POLLOUT, 0};
    ASSERT_EQ(::poll(&p, 1, 20'000), 1);
    const ssize_t n = ::send(channel, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    at += static_cast<std::size_t>(n);
  }
}

template <class M>
void send_message(int channel, const M& m) {
  std::vector<std::uint8_t> bytes;
  write_frame(bytes, m);
  send_frame(channel, bytes);
}

TEST(Spawn, WorkerKeepsInheritedAndPassedDescriptors) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  const SpawnedWorker worker =
      spawn_worker(test::binary_path("troupe-worker"), {}, {InheritedFd{7, pipe_fds[1]}, InheritedFd{9, pipe_fds[1]}});
  ::close(pipe_fds[1]);  // the worker holds its own copies
  FrameBuffer in(1 << 20);

  send_message(
      worker.channel,
      Hello{0, "spawn-test", {test::plugin_path("testing").string()}, std::nullopt, std::nullopt, 0, 0, 1 << 20});
  const Ready ready = next_frame<Ready>(worker.channel, in);
  EXPECT_EQ(ready.pid, static_cast<std::uint64_t>(worker.pid));
  bool listed = false;
  for (const auto& signature : ready.tasks) {
    listed = listed || signature.qualified_name == "testing.write_fd";
  }
  EXPECT_TRUE(listed);

  send_message(worker.channel, Task{1, "testing.write_fd", 0, {first_inherited_fd + 1, "hello"}, {}});  // id 9
  const Result result = next_frame<Result>(worker.channel, in);
  EXPECT_EQ(result.id, 1u);
  EXPECT_EQ(result.value, 5);
  char text[5];
  ASSERT_EQ(::read(pipe_fds[0], text, 5), 5);
  EXPECT_EQ(std::string(text, 5), "hello");

  // Descriptors after start: one more open in the worker per new id; the
  // same id again replaces (and closes) the one it had.
  const auto open_fds = [&] {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(worker.pid) + "/fd")) {
      ++n;
    }
    return n;
  };
  const std::size_t before = open_fds();
  int extra[2];
  ASSERT_EQ(::pipe2(extra, O_CLOEXEC), 0);
  for (int round = 0; round < 2; ++round) {
    std::vector<std::uint8_t> bytes;
    write_frame(bytes, Descriptors{{11}});
    ASSERT_EQ(send_with_fds(worker.channel, bytes.data(), bytes.size(), {extra[1]}), static_cast<long>(bytes.size()));
    send_message(worker.channel, Task{2 + static_cast<std::uint64_t>(round), "testing.double", 0, {1}, {}});
    EXPECT_EQ(next_frame<Result>(worker.channel, in).value, 2);  // frames run in order: the descriptors were taken
    EXPECT_EQ(open_fds(), before + 1);
  }
  ::close(extra[0]);
  ::close(extra[1]);

  send_message(worker.channel, Shutdown{});
  EXPECT_FALSE(next_frame<Bye>(worker.channel, in).finalizer_error);
  int status = 0;
  ASSERT_EQ(::waitpid(worker.pid, &status, 0), worker.pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ::close(worker.channel);
  ::close(worker.pidfd);
  ::close(pipe_fds[0]);
  ::munmap(worker.page, worker_page_size);
}

}  // namespace
}  // namespace troupe::detail::process
