// The process pool's wire format against arbitrary bytes: what a buggy or
// compromised worker could send the host. Any input either decodes or
// throws FrameError; never a crash, an overflow or an allocation the bytes
// cannot back. A value that decodes re-encodes to the same value.
//
// Input: the first byte sets the size of the reads the stream arrives in
// (1..64 bytes, as a socket may split it); the rest is the stream.
#include <string>
#include <vector>

#include "frame_feed.hpp"
#include "fuzz_target.hpp"
#include "process/frame_codec.hpp"

namespace {

using troupe::Args;
using troupe::Kwargs;
using troupe::Value;
using troupe::detail::process::FrameError;
using troupe::detail::process::FrameView;
using troupe::detail::process::Message;
using troupe::detail::process::MsgpackReader;
using troupe::detail::process::MsgpackWriter;

constexpr std::size_t kMaxFrame = 1 << 16;

void expect_round_trip(const Value& value) {
  std::vector<std::uint8_t> bytes;
  MsgpackWriter writer(bytes);
  writer.value(value);
  // == alone would fail on NaN; strings are bytes here, not checked UTF-8.
  auto text = [](const Value& v) {
    return v.dump(-1, ' ', false, Value::error_handler_t::replace);
  };
  MsgpackReader reader(bytes.data(), bytes.data() + bytes.size());
  Value back;
  try {
    back = reader.value();
  } catch (const FrameError& e) {
    troupe_fuzz_fail("the writer's bytes for " + text(value) + " do not decode: " + e.what());
  }
  if (!reader.at_end() || (back != value && text(back) != text(value))) {
    troupe_fuzz_fail("value does not survive a round trip: " + text(value) + " came back as " + text(back));
  }
}

void check_frame(const FrameView& frame) {
  try {
    MsgpackReader reader(frame.body, frame.end);
    while (!reader.at_end()) {
      expect_round_trip(reader.value());
    }
  } catch (const FrameError&) {
  }
  try {  // the task/chunk decoding path: positional then keyword arguments
    MsgpackReader reader(frame.body, frame.end);
    Args args;
    reader.args_into(args);
    Kwargs kwargs;
    reader.kwargs_into(kwargs);
  } catch (const FrameError&) {
  }
}

std::vector<std::uint8_t> frame(Message type, auto&& write_body) {
  std::vector<std::uint8_t> out;
  const auto at = troupe::detail::process::begin_frame(out, type);
  MsgpackWriter writer(out);
  write_body(writer);
  troupe::detail::process::end_frame(out, at);
  return out;
}

std::string with_read_size(std::uint8_t read_size, const std::vector<std::vector<std::uint8_t>>& frames) {
  std::string input(1, static_cast<char>(read_size));
  for (const auto& f : frames) {
    input.append(reinterpret_cast<const char*>(f.data()), f.size());
  }
  return input;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  troupe::fuzz::feed_frames(data, size, kMaxFrame, [](const auto& view) { check_frame(view); });
  return 0;
}

std::vector<std::string> troupe_fuzz_seeds() {
  const Value nested = Value::parse(R"({"id": "d1", "text": "to be", "n": [1, -2, 3.5, true, null, {"k": []}]})");
  auto task = frame(Message::task, [&](MsgpackWriter& w) {
    w.uinteger(7);
    w.str("text.words");
    w.args(Args{nested, Value(42), Value("x")});
    w.kwargs(Kwargs{{"b", Value(3)}, {"flag", Value(false)}});
  });
  auto chunk = frame(Message::chunk, [&](MsgpackWriter& w) {
    w.uinteger(8);
    w.str("testing.double");
    w.uinteger(3);
    for (int i = 0; i < 3; ++i) {
      w.args(Args{Value(i)});
    }
  });
  auto result = frame(Message::result, [&](MsgpackWriter& w) {
    w.uinteger(7);
    w.uinteger(1 << 20);
    w.value(Value{{"bytes", Value::binary({1, 2, 3})}, {"big", 18446744073709551615ull}, {"neg", -9007199254740993LL}});
  });
  auto heartbeat = frame(Message::heartbeat, [&](MsgpackWriter& w) { w.uinteger(4096); });
  auto too_deep = frame(Message::result, [&](MsgpackWriter& w) {
    for (int i = 0; i < 600; ++i) {  // deeper than the decoder allows (the writer refuses to write it)
      w.array_header(1);
    }
    w.nil();
  });
  return {
      with_read_size(63, {task, chunk, result}),
      with_read_size(0, {task}),
      with_read_size(5, {chunk, heartbeat}),
      with_read_size(17, {result, heartbeat, task}),
      with_read_size(63, {too_deep}),
  };
}
