// Implementation tests for the process pool's wire format and worker start.
#include "process/frame_codec.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "process/spawn.hpp"
#include "process/worker_page.hpp"
#include "support/paths.hpp"

namespace troupe::detail::process {
namespace {

Value round_trip(const Value& v) {
  std::vector<std::uint8_t> bytes;
  MsgpackWriter(bytes).value(v);
  MsgpackReader reader(bytes.data(), bytes.data() + bytes.size());
  Value out = reader.value();
  EXPECT_TRUE(reader.at_end());
  return out;
}

TEST(FrameCodec, ValuesRoundTripWithTheirKinds) {
  const std::vector<Value> values = {
      nullptr,
      true,
      false,
      0,
      -1,
      -33,
      127,
      128,
      -129,
      std::numeric_limits<std::int64_t>::min(),
      std::numeric_limits<std::int64_t>::max(),
      std::uint64_t{0},
      std::numeric_limits<std::uint64_t>::max(),
      1.5,
      -0.25,
      "",
      std::string(40, 'x'),
      std::string(70000, 'y'),
      Value::array(),
      Value{1, "two", 3.0, nullptr},
      Value{{"a", 1}, {"b", Value{{"c", Value::array({1, 2})}}}},
      Value::binary({1, 2, 3, 255}),
  };
  for (const auto& v : values) {
    const Value back = round_trip(v);
    EXPECT_EQ(back, v) << v.dump();
    EXPECT_EQ(back.type(), v.type()) << v.dump();
  }
}

TEST(FrameCodec, ArgsDecodeIntoReusedStorage) {
  std::vector<std::uint8_t> bytes;
  MsgpackWriter writer(bytes);
  writer.args(Args{1, "a"});
  writer.args(Args{2});
  MsgpackReader reader(bytes.data(), bytes.data() + bytes.size());
  Args args;
  reader.args_into(args);
  EXPECT_EQ(args, (Args{1, "a"}));
  reader.args_into(args);
  EXPECT_EQ(args, (Args{2}));
}

TEST(FrameCodec, TruncatedItemIsAFrameError) {
  std::vector<std::uint8_t> bytes;
  MsgpackWriter(bytes).value(Value{{"key", std::string(100, 'v')}});
  bytes.resize(bytes.size() - 10);
  MsgpackReader reader(bytes.data(), bytes.data() + bytes.size());
  EXPECT_THROW(reader.value(), FrameError);
}

// A corrupt count must not size a container: found by tests/fuzz (the host
// tried to allocate 2^32 - 1 values for a 5-byte item).
TEST(FrameCodec, ArrayCountBeyondTheFrameIsAFrameError) {
  const std::vector<std::uint8_t> bytes = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
  MsgpackReader reader(bytes.data(), bytes.data() + bytes.size());
  try {
    reader.value();
    ADD_FAILURE() << "no FrameError";
  } catch (const FrameError& e) {
    EXPECT_STREQ(e.what(), "a process-pool frame announces an array of 4294967295 items in 1 remaining bytes");
  }
  MsgpackReader args_reader(bytes.data(), bytes.data() + bytes.size());
  Args args;
  EXPECT_THROW(args_reader.args_into(args), FrameError);
}

TEST(FrameCodec, MapCountBeyondTheFrameIsRefusedBeforeReadingEntries) {
  // 3 entries announced, room for 2 (a map entry takes at least 2 bytes).
  const std::vector<std::uint8_t> bytes = {0x83, 0xa1, 'a', 0x01, 0xa1};
  MsgpackReader reader(bytes.data(), bytes.data() + bytes.size());
  try {
    reader.value();
    ADD_FAILURE() << "no FrameError";
  } catch (const FrameError& e) {
    EXPECT_STREQ(e.what(), "a process-pool frame announces a map of 3 entries in 4 remaining bytes");
  }
  MsgpackReader kwargs_reader(bytes.data(), bytes.data() + bytes.size());
  Kwargs kwargs;
  EXPECT_THROW(kwargs_reader.kwargs_into(kwargs), FrameError);
  const std::vector<std::uint8_t> fits = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0xc0};
  MsgpackReader fits_reader(fits.data(), fits.data() + fits.size());
  EXPECT_EQ(fits_reader.value(), (Value{{"a", 1}, {"b", nullptr}}));
}

std::size_t peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<std::size_t>(usage.ru_maxrss);
}

// 100 nested arrays, each announcing as many items as the 64 KiB left
// behind it: every count is within the frame, so only growing arrays as
// items arrive (never sizing them by their counts) keeps the decoder from
// allocating 100 x 64K values. It allocates about one level's worth.
TEST(FrameCodec, NestedArrayCountsCannotMultiplyIntoAHugeAllocation) {
  constexpr std::size_t kSize = 64 * 1024;
  constexpr std::size_t kLevels = 100;
  std::vector<std::uint8_t> bytes(kSize, 0xc0);  // nil items fill what the headers leave
  for (std::size_t level = 0; level < kLevels; ++level) {
    const auto count = static_cast<std::uint32_t>(kSize - 5 * (level + 1));
    std::uint8_t* header = bytes.data() + 5 * level;
    header[0] = 0xdd;
    header[1] = static_cast<std::uint8_t>(count >> 24);
    header[2] = static_cast<std::uint8_t>(count >> 16);
    header[3] = static_cast<std::uint8_t>(count >> 8);
    header[4] = static_cast<std::uint8_t>(count);
  }
  const std::size_t before = peak_rss_kib();
  MsgpackReader reader(bytes.data(), bytes.data() + bytes.size());
  EXPECT_THROW(reader.value(), FrameError);  // the innermost array takes every byte: its parents run short
  EXPECT_LT(peak_rss_kib() - before, 32u * 1024) << "the decoder allocated by count, not by bytes read";
}

TEST(FrameCodec, FramesSplitAcrossReadsReassemble) {
  std::vector<std::uint8_t> stream;
  for (int i = 0; i < 3; ++i) {
    const auto at = begin_frame(stream, Message::task);
    MsgpackWriter(stream).uinteger(static_cast<std::uint64_t>(i));
    MsgpackWriter(stream).str(std::string(1000, 'p'));
    end_frame(stream, at);
  }
  FrameBuffer buffer(1 << 20);
  std::vector<std::uint64_t> ids;
  for (std::size_t offset = 0; offset < stream.size(); offset += 7) {
    const std::size_t n = std::min<std::size_t>(7, stream.size() - offset);
    auto space = buffer.prepare(n);
    std::copy_n(stream.data() + offset, n, space.data());
    buffer.commit(n);
    FrameView frame{};
    while (buffer.next(frame)) {
      EXPECT_EQ(frame.type, Message::task);
      MsgpackReader reader(frame.body, frame.end);
      ids.push_back(reader.uinteger());
      EXPECT_EQ(reader.str().size(), 1000u);
    }
  }
  EXPECT_EQ(ids, (std::vector<std::uint64_t>{0, 1, 2}));
}

TEST(FrameCodec, FrameOverTheLimitIsAFrameError) {
  std::vector<std::uint8_t> stream;
  const auto at = begin_frame(stream, Message::result);
  MsgpackWriter(stream).str(std::string(5000, 'z'));
  end_frame(stream, at);
  FrameBuffer buffer(1024);
  auto space = buffer.prepare(stream.size());
  std::copy(stream.begin(), stream.end(), space.begin());
  buffer.commit(stream.size());
  FrameView frame{};
  EXPECT_THROW(buffer.next(frame), FrameError);
}

TEST(WorkerProcess, ExitsWhenItsChannelCloses) {
  const auto spawned = spawn_worker(test::binary_path("troupe-worker"), {});
  ::close(spawned.channel);  // EOF before hello: the host is gone
  int status = 0;
  ASSERT_EQ(::waitpid(spawned.pid, &status, 0), spawned.pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ::close(spawned.pidfd);
  ::munmap(spawned.page, worker_page_size);
}

TEST(WorkerProcess, RefusesToRunOutsideAPool) {
  const std::string command = test::binary_path("troupe-worker").string() + " 2>/dev/null";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
}  // namespace troupe::detail::process
