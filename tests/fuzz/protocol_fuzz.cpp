// The process pool's messages against arbitrary bytes: every frame either
// decodes as its message type (chunk items and part outcomes included) or
// throws FrameError, as the host and worker decode them. A message that
// decodes re-encodes to bytes that decode to the same bytes again.
//
// Input: the first byte sets the size of the reads the stream arrives in
// (1..64 bytes); the rest is the stream.
#include <string>
#include <vector>

#include "frame_feed.hpp"
#include "fuzz_target.hpp"
#include "process/protocol.hpp"

namespace {

namespace tp = troupe::detail::process;
using tp::FrameError;
using tp::FrameView;
using tp::Message;

constexpr std::size_t kMaxFrame = 1 << 16;

// decode -> encode -> decode -> encode gives the same bytes twice.
template <class M>
void expect_stable(const FrameView& frame) {
  M first;
  try {
    first = tp::read_frame<M>(frame);
  } catch (const FrameError&) {
    return;
  }
  std::vector<std::uint8_t> once;
  tp::write_frame(once, first);
  const FrameView again{M::type, once.data() + tp::frame_header_size, once.data() + once.size()};
  std::vector<std::uint8_t> twice;
  try {
    tp::write_frame(twice, tp::read_frame<M>(again));
  } catch (const FrameError& e) {
    troupe_fuzz_fail(std::string("a re-encoded message does not decode: ") + e.what());
  }
  if (once != twice) {
    troupe_fuzz_fail("message type " + std::to_string(static_cast<int>(M::type)) +
                     " is not stable across a round trip");
  }
}

void check_frame(const FrameView& frame) {
  try {
    tp::decode_any(frame);
  } catch (const FrameError&) {
  }
  switch (frame.type) {
    case Message::hello:
      return expect_stable<tp::Hello>(frame);
    case Message::ready:
      return expect_stable<tp::Ready>(frame);
    case Message::revoke:
      return expect_stable<tp::Revoke>(frame);
    case Message::retiring:
      return expect_stable<tp::Retiring>(frame);
    case Message::bye:
      return expect_stable<tp::Bye>(frame);
    default:
      return;
  }
}

std::string stream(std::uint8_t read_size, const std::vector<std::vector<std::uint8_t>>& frames) {
  std::string input(1, static_cast<char>(read_size));
  for (const auto& f : frames) {
    input.append(reinterpret_cast<const char*>(f.data()), f.size());
  }
  return input;
}

template <class M>
std::vector<std::uint8_t> frame_of(const M& m) {
  std::vector<std::uint8_t> out;
  tp::write_frame(out, m);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  troupe::fuzz::feed_frames(data, size, kMaxFrame, [](const auto& view) { check_frame(view); });
  return 0;
}

std::vector<std::string> troupe_fuzz_seeds() {
  troupe::Signature signature;
  signature.qualified_name = "testing.double";
  signature.kind = "task";
  signature.params = {{"x", "int", std::nullopt}, {"y", "int", troupe::Value(3)}};
  signature.result_type = "int";
  const auto hello =
      frame_of(tp::Hello{1, "p", {"/lib.so"}, troupe::Call{"t.init", {1}, {}}, std::nullopt, 5, 0, 1024});
  const auto ready = frame_of(tp::Ready{99, 4096, {signature}});
  const auto task = frame_of(tp::Task{7, "testing.double", 5'000'000, {troupe::Value(2)}, {{"k", troupe::Value("v")}}});
  std::vector<std::uint8_t> chunk;
  {
    const auto at = tp::begin_frame(chunk, Message::chunk);
    tp::MsgpackWriter writer(chunk);
    tp::encode(writer, tp::Chunk{8, "testing.double", 0, 2});
    tp::encode_chunk_item(writer, {troupe::Value(1)});
    tp::encode_chunk_item(writer, {troupe::Value(2)});
    tp::end_frame(chunk, at);
  }
  std::vector<std::uint8_t> part;
  {
    const auto at = tp::begin_frame(part, Message::chunk_part);
    tp::MsgpackWriter writer(part);
    tp::encode(writer, tp::ChunkPart{8, 0, 3});
    tp::encode_item_ok(writer, troupe::Value(2));
    tp::encode_item_error(writer, troupe::Value{{"type", "E"}});
    tp::encode_item_cancelled(writer);
    tp::encode(writer, tp::ChunkPartTail{true, 4096});
    tp::end_frame(part, at);
  }
  const auto revoke = frame_of(tp::Revoke{{7, 8}});
  const auto retiring = frame_of(tp::Retiring{tp::RetireReason::max_memory, 1 << 20});
  const auto bye = frame_of(tp::Bye{troupe::Value{{"type", "F"}}});
  const auto revoked = frame_of(tp::Revoked{7});
  return {
      stream(63, {hello, ready, task}),
      stream(0, {chunk, part}),
      stream(5, {revoke, retiring, bye, revoked}),
      stream(17, {part, task, chunk, ready}),
  };
}
