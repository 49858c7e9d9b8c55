// troupe-worker driven frame by frame over its channel, as a host would:
// what it does with frames a well-behaved host never sends.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "process/protocol.hpp"
#include "process/spawn.hpp"
#include "process/worker_page.hpp"
#include "support/paths.hpp"

namespace troupe::detail::process {
namespace {

using ::testing::HasSubstr;

// One worker with the testing plugin, past its hello; frames in and out.
class RawWorker {
 public:
  RawWorker() : spawned_(spawn_worker(test::binary_path("troupe-worker"), {})) {
    Hello hello;
    hello.pool = "raw";
    hello.plugins = {test::plugin_path("testing").string()};
    hello.max_frame = default_max_frame;
    std::vector<std::uint8_t> bytes;
    write_frame(bytes, hello);
    send(bytes);
    EXPECT_EQ(next().type, Message::ready);
  }
  ~RawWorker() {
    ::close(spawned_.channel);  // EOF: the worker exits
    int status = 0;
    ::waitpid(spawned_.pid, &status, 0);
    ::close(spawned_.pidfd);
    ::munmap(spawned_.page, worker_page_size);
  }
  RawWorker(const RawWorker&) = delete;
  RawWorker& operator=(const RawWorker&) = delete;

  void send(const std::vector<std::uint8_t>& bytes) {
    std::size_t at = 0;
    while (at < bytes.size()) {
      pollfd p{spawned_.channel, POLLOUT, 0};
      ASSERT_EQ(::poll(&p, 1, 20'000), 1) << "the worker stopped reading";
      const ssize_t n = ::send(spawned_.channel, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
      ASSERT_GT(n, 0);
      at += static_cast<std::size_t>(n);
    }
  }

  // The next frame from the worker (heartbeats skipped); a 20 s bound, so a
  // worker that died or hangs fails the test instead of hanging it.
  FrameView next() {
    FrameView frame{};
    for (;;) {
      while (buffer_.next(frame)) {
        if (frame.type != Message::heartbeat) {
          return frame;
        }
      }
      pollfd p{spawned_.channel, POLLIN, 0};
      if (::poll(&p, 1, 20'000) != 1) {
        ADD_FAILURE() << "no frame from the worker within 20 s";
        return FrameView{Message::heartbeat, nullptr, nullptr};
      }
      auto space = buffer_.prepare();
      const ssize_t n = ::recv(spawned_.channel, space.data(), space.size(), 0);
      if (n <= 0) {
        ADD_FAILURE() << "the worker closed its channel (it died)";
        return FrameView{Message::heartbeat, nullptr, nullptr};
      }
      buffer_.commit(static_cast<std::size_t>(n));
    }
  }

 private:
  SpawnedWorker spawned_;
  FrameBuffer buffer_{default_max_frame + 16};
};

// Arguments nested deeper than the codec reads, written the way a host's
// encoder would refuse to: `levels` array headers around a nil.
std::vector<std::uint8_t> deep_task(std::uint64_t id, const char* task, int levels) {
  std::vector<std::uint8_t> bytes;
  const auto at = begin_frame(bytes, Message::task);
  MsgpackWriter writer(bytes);
  writer.uinteger(id);
  writer.str(task);
  writer.uinteger(0);  // no timeout
  writer.array_header(1);
  for (int i = 0; i < levels; ++i) {
    writer.array_header(1);
  }
  writer.nil();
  writer.map_header(0);
  end_frame(bytes, at);
  return bytes;
}

TEST(WorkerProcess, ArgumentsTooDeepToReadFailTheirTaskNotTheWorker) {
  RawWorker worker;
  worker.send(deep_task(1, "testing.echo", 600));
  const FrameView failure = worker.next();
  ASSERT_EQ(failure.type, Message::error);
  const Failure message = read_frame<Failure>(failure);
  EXPECT_EQ(message.id, 1u);
  EXPECT_EQ(message.error.at("type"), "troupe::ArgumentError");
  EXPECT_THAT(message.error.at("message").get<std::string>(),
              HasSubstr("the arguments of testing.echo cannot be read in the worker"));
  EXPECT_THAT(message.error.at("message").get<std::string>(), HasSubstr("deeper than the 512 levels"));

  std::vector<std::uint8_t> next;
  write_frame(next, Task{2, "testing.double", 0, Args{21}, Kwargs{}});
  worker.send(next);
  const FrameView result = worker.next();
  ASSERT_EQ(result.type, Message::result);
  EXPECT_EQ(read_frame<Result>(result).value, 42);
}

}  // namespace
}  // namespace troupe::detail::process
