// The process pool's messages: each one survives encode -> frame -> decode,
// a malformed body is a FrameError, and descriptors travel as SCM_RIGHTS.
#include "process/protocol.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

namespace troupe::detail::process {
namespace {

using ::testing::HasSubstr;

// Encodes `m` as a frame, reads the frame back through a FrameBuffer and
// decodes it: what the other side of the channel sees.
template <class M>
M round_trip(const M& m) {
  std::vector<std::uint8_t> bytes;
  write_frame(bytes, m);
  FrameBuffer buffer(1 << 20);
  auto space = buffer.prepare(bytes.size());
  std::memcpy(space.data(), bytes.data(), bytes.size());
  buffer.commit(bytes.size());
  FrameView frame{};
  EXPECT_TRUE(buffer.next(frame));
  EXPECT_EQ(frame.type, M::type);
  EXPECT_NO_THROW(decode_any(frame));
  return read_frame<M>(frame);
}

Signature signature_with_defaults() {
  Signature s;
  s.qualified_name = "text.words";
  s.kind = "task";
  s.params = {{"doc", "object", std::nullopt}, {"min", "int", Value(2)}, {"sep", "string", Value(nullptr)}};
  s.result_type = "array";
  s.named = true;
  return s;
}

TEST(Protocol, HelloRoundTrips) {
  const Hello hello{
      3,       "pool",  {"/a/libx.so", "/b/liby.so"}, Call{"x.init", {1, "two"}, {{"k", true}}}, std::nullopt, 10,
      1 << 30, 64 << 20};
  const Hello back = round_trip(hello);
  EXPECT_EQ(back.worker_id, 3u);
  EXPECT_EQ(back.pool, "pool");
  EXPECT_EQ(back.plugins, hello.plugins);
  ASSERT_TRUE(back.initializer);
  EXPECT_EQ(back.initializer->task, "x.init");
  EXPECT_EQ(back.initializer->args, hello.initializer->args);
  EXPECT_EQ(back.initializer->kwargs, hello.initializer->kwargs);
  EXPECT_FALSE(back.finalizer);
  EXPECT_EQ(back.max_tasks, 10u);
  EXPECT_EQ(back.max_memory, 1u << 30);
  EXPECT_EQ(back.max_frame, 64u << 20);
}

TEST(Protocol, TaskRoundTrips) {
  const Task task{7, "text.words", 30'000'000'000, {Value{{"a", 1}}, -5, 2.5}, {{"flag", false}}};
  std::vector<std::uint8_t> bytes;
  write_frame(bytes, task);  // the decoded name is a view into these bytes
  const FrameView frame{Message::task, bytes.data() + frame_header_size, bytes.data() + bytes.size()};
  const Task back = read_frame<Task>(frame);
  EXPECT_EQ(back.id, 7u);
  EXPECT_EQ(back.task, "text.words");
  EXPECT_EQ(back.timeout_ns, 30'000'000'000u);
  EXPECT_EQ(back.args, task.args);
  EXPECT_EQ(back.kwargs, task.kwargs);
}

TEST(Protocol, ChunkAndItsItemsRoundTrip) {
  std::vector<std::uint8_t> bytes;
  const auto at = begin_frame(bytes, Message::chunk);
  MsgpackWriter writer(bytes);
  encode(writer, Chunk{9, "testing.double", 250'000'000, 3});
  for (int i = 0; i < 3; ++i) {
    encode_chunk_item(writer, Args{Value(i), Value("x")});
  }
  end_frame(bytes, at);
  const FrameView frame{Message::chunk, bytes.data() + frame_header_size, bytes.data() + bytes.size()};
  EXPECT_NO_THROW(decode_any(frame));
  MsgpackReader reader(frame.body, frame.end);
  Chunk chunk;
  decode(reader, chunk);
  EXPECT_EQ(chunk.id, 9u);
  EXPECT_EQ(chunk.task, "testing.double");
  EXPECT_EQ(chunk.timeout_ns, 250'000'000u);
  ASSERT_EQ(chunk.count, 3u);
  Args args;
  for (int i = 0; i < 3; ++i) {
    decode_chunk_item(reader, args);
    EXPECT_EQ(args, (Args{Value(i), Value("x")}));
  }
  EXPECT_TRUE(reader.at_end());
}

TEST(Protocol, ChunkPartWithEveryItemStatusRoundTrips) {
  std::vector<std::uint8_t> bytes;
  const auto at = begin_frame(bytes, Message::chunk_part);
  MsgpackWriter writer(bytes);
  encode(writer, ChunkPart{4, 10, 0});
  const auto count_at = chunk_part_count_offset(bytes);
  encode_item_ok(writer, Value{{"v", 1}});
  encode_item_error(writer, Value{{"type", "E"}});
  encode_item_cancelled(writer);
  writer.patch_u32(count_at, 3);  // the worker counts items as it goes
  encode(writer, ChunkPartTail{true, 123});
  end_frame(bytes, at);
  const FrameView frame{Message::chunk_part, bytes.data() + frame_header_size, bytes.data() + bytes.size()};
  EXPECT_NO_THROW(decode_any(frame));
  MsgpackReader reader(frame.body, frame.end);
  ChunkPart part;
  decode(reader, part);
  EXPECT_EQ(part.id, 4u);
  EXPECT_EQ(part.first, 10u);
  ASSERT_EQ(part.count, 3u);
  Value value;
  Value record;
  EXPECT_EQ(decode_item(reader, value, record), ItemStatus::ok);
  EXPECT_EQ(value, (Value{{"v", 1}}));
  EXPECT_EQ(decode_item(reader, value, record), ItemStatus::error);
  EXPECT_EQ(record, (Value{{"type", "E"}}));
  EXPECT_EQ(decode_item(reader, value, record), ItemStatus::cancelled);
  ChunkPartTail tail;
  decode(reader, tail);
  EXPECT_TRUE(tail.last);
  EXPECT_EQ(tail.rss, 123u);
  EXPECT_TRUE(reader.at_end());
}

TEST(Protocol, ReadyCarriesTheTaskTableWithSignatures) {
  Signature plain;
  plain.qualified_name = "testing.double";
  plain.kind = "task";
  plain.params = {{"x", "int", std::nullopt}};
  plain.result_type = "int";
  const Ready back = round_trip(Ready{1234, 5 << 20, {signature_with_defaults(), plain}});
  EXPECT_EQ(back.pid, 1234u);
  EXPECT_EQ(back.rss, 5u << 20);
  ASSERT_EQ(back.tasks.size(), 2u);
  EXPECT_EQ(back.tasks[0].to_string(), signature_with_defaults().to_string());
  EXPECT_TRUE(back.tasks[0].named);
  ASSERT_TRUE(back.tasks[0].params[2].default_value);  // a null default is still a default
  EXPECT_TRUE(back.tasks[0].params[2].default_value->is_null());
  EXPECT_FALSE(back.tasks[0].params[0].default_value);
  EXPECT_EQ(back.tasks[1].to_string(), plain.to_string());
  EXPECT_FALSE(back.tasks[1].named);
}

TEST(Protocol, SmallMessagesRoundTrip) {
  EXPECT_EQ(round_trip(Revoke{{1, 2, 1ull << 40}}).ids, (std::vector<std::uint64_t>{1, 2, 1ull << 40}));
  EXPECT_EQ(round_trip(Descriptors{{5}}).ids, (std::vector<std::uint64_t>{5}));
  round_trip(Shutdown{});
  EXPECT_EQ(round_trip(InitFailed{Value{{"type", "X"}}}).error, (Value{{"type", "X"}}));
  const Result result = round_trip(Result{8, 99, Value::array({1, "a"})});
  EXPECT_EQ(result.id, 8u);
  EXPECT_EQ(result.rss, 99u);
  EXPECT_EQ(result.value, Value::array({1, "a"}));
  const Failure failure = round_trip(Failure{8, 98, Value{{"message", "m"}}});
  EXPECT_EQ(failure.id, 8u);
  EXPECT_EQ(failure.rss, 98u);
  EXPECT_EQ(failure.error, (Value{{"message", "m"}}));
  EXPECT_EQ(round_trip(Heartbeat{4096}).rss, 4096u);
  const Retiring retiring = round_trip(Retiring{RetireReason::max_memory, 77});
  EXPECT_EQ(retiring.reason, RetireReason::max_memory);
  EXPECT_EQ(retiring.rss, 77u);
  EXPECT_EQ(round_trip(Retiring{RetireReason::max_tasks, 1}).reason, RetireReason::max_tasks);
  EXPECT_FALSE(round_trip(Bye{}).finalizer_error);
  EXPECT_EQ(round_trip(Bye{Value{{"type", "F"}}}).finalizer_error, (Value{{"type", "F"}}));
  EXPECT_EQ(round_trip(Revoked{31}).id, 31u);
}

FrameView view_of(Message type, const std::vector<std::uint8_t>& body) {
  return FrameView{type, body.data(), body.data() + body.size()};
}

TEST(Protocol, MalformedBodiesAreFrameErrors) {
  std::vector<std::uint8_t> body;
  MsgpackWriter writer(body);
  writer.uinteger(9);  // a retiring reason past the enum
  writer.uinteger(1);
  EXPECT_THAT([&] { read_frame<Retiring>(view_of(Message::retiring, body)); },
              ::testing::ThrowsMessage<FrameError>(HasSubstr("unknown reason 9")));
  body.clear();
  writer.uinteger(1);
  writer.uinteger(0);
  writer.uinteger(std::uint64_t{1} << 32);  // a chunk part count past u32
  EXPECT_THROW(decode_any(view_of(Message::chunk_part, body)), FrameError);
  body.clear();
  writer.uinteger(1);
  writer.uinteger(0);
  writer.uinteger(0);  // trailing bytes after a heartbeat's one field
  EXPECT_THAT([&] { read_frame<Heartbeat>(view_of(Message::heartbeat, body)); },
              ::testing::ThrowsMessage<FrameError>(HasSubstr("trailing bytes")));
  body.clear();
  writer.uinteger(3);  // a result cut short
  EXPECT_THROW(decode_any(view_of(Message::result, body)), FrameError);
  EXPECT_THROW(decode_any(view_of(static_cast<Message>(99), body)), FrameError);
  EXPECT_THROW(read_frame<Result>(view_of(Message::error, body)), FrameError);  // the wrong type
}

TEST(Protocol, DescriptorsTravelWithTheirFrame) {
  int channel[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel), 0);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  std::vector<std::uint8_t> bytes;
  write_frame(bytes, Descriptors{{42}});
  ASSERT_EQ(send_with_fds(channel[0], bytes.data(), bytes.size(), {pipe_fds[1]}), static_cast<long>(bytes.size()));
  ::close(pipe_fds[1]);  // the receiver's copy keeps the pipe open

  std::vector<std::uint8_t> received(bytes.size());
  std::vector<int> fds;
  ASSERT_EQ(recv_with_fds(channel[1], received.data(), received.size(), 0, fds), static_cast<long>(bytes.size()));
  EXPECT_EQ(received, bytes);
  ASSERT_EQ(fds.size(), 1u);
  EXPECT_EQ(::fcntl(fds[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  ASSERT_EQ(::write(fds[0], "ok", 2), 2);
  char text[2];
  ASSERT_EQ(::read(pipe_fds[0], text, 2), 2);
  EXPECT_EQ(std::string(text, 2), "ok");
  for (int fd : {fds[0], pipe_fds[0], channel[0], channel[1]}) {
    ::close(fd);
  }
}

}  // namespace
}  // namespace troupe::detail::process
