// The process pool's messages, defined once: a struct per message and one
// encode/decode pair that the host and troupe-worker both use, so no layout
// is written twice. Fields are positional MessagePack items in the order of
// the struct's members; docs/protocol.md has the table.
//
// Hot paths stay allocation-free: decoding a task or chunk frame reuses the
// caller's Args/Kwargs storage and leaves names as views into the frame; a
// chunk's items and a chunk part's outcomes are streamed one by one with
// their own encode/decode functions rather than gathered into vectors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "process/frame_codec.hpp"
#include "troupe/sdk/call.hpp"
#include "troupe/sdk/descriptor.hpp"
#include "troupe/sdk/value.hpp"

namespace troupe::detail::process {

// ---- host -> worker -----------------------------------------------------------

struct Hello {
  static constexpr Message type = Message::hello;
  std::uint64_t worker_id = 0;
  std::string pool;
  std::vector<std::string> plugins;
  std::optional<Call> initializer;
  std::optional<Call> finalizer;
  std::uint64_t max_tasks = 0;   // 0: no limit (jitter already applied)
  std::uint64_t max_memory = 0;  // bytes; 0: no limit
  std::uint64_t max_frame = 0;
};

// `task` is a view into the frame it was decoded from (or the caller's
// string). `timeout_ns`: the task's timeout (each item's, for a chunk), its
// own or the pool's task_timeout; 0: none. The worker stamps each item's
// deadline on the shared page, where the host's timer reads it.
struct Task {
  static constexpr Message type = Message::task;
  std::uint64_t id = 0;
  std::string_view task;
  std::uint64_t timeout_ns = 0;
  Args args;
  Kwargs kwargs;
};

// Followed in the same frame by `count` items (encode_chunk_item).
struct Chunk {
  static constexpr Message type = Message::chunk;
  std::uint64_t id = 0;
  std::string_view task;
  std::uint64_t timeout_ns = 0;  // per item, as Task's
  std::uint64_t count = 0;       // 0: the pool's ping (no task is looked up)
};

// Run the finalizer, answer bye, exit.
struct Shutdown {
  static constexpr Message type = Message::shutdown;
};

// Frames sent but not started: the worker answers `revoked` for each one
// when it reaches it instead of running it. Ids it already ran are ignored.
struct Revoke {
  static constexpr Message type = Message::revoke;
  std::vector<std::uint64_t> ids;
};

// File descriptors for the worker's table, one per id, passed with the
// frame's bytes as SCM_RIGHTS (send_frame_with_fds). An id given again
// replaces (and closes) the descriptor it had.
struct Descriptors {
  static constexpr Message type = Message::descriptors;
  std::vector<std::uint64_t> ids;
};

// ---- worker -> host -----------------------------------------------------------

// The worker's task table: every task, initializer and finalizer of its
// plugins with its signature (Signature::kind tells them apart).
struct Ready {
  static constexpr Message type = Message::ready;
  std::uint64_t pid = 0;
  std::uint64_t rss = 0;
  std::vector<Signature> tasks;
};

struct InitFailed {
  static constexpr Message type = Message::init_failed;
  Value error;  // error record
};

struct Result {
  static constexpr Message type = Message::result;
  std::uint64_t id = 0;
  std::uint64_t rss = 0;
  Value value;
};

// A task that failed, or a chunk that could not run at all (unknown task).
struct Failure {
  static constexpr Message type = Message::error;
  std::uint64_t id = 0;
  std::uint64_t rss = 0;
  Value error;  // error record
};

// Outcomes of items [first, first + count) of a chunk, streamed: the head,
// `count` items (encode_item_*), then the tail. `count` is always written
// in the 5-byte uint32 form and ends the head, so the worker can patch it
// (patch_u32 at chunk_part_count_offset) once the part closes.
struct ChunkPart {
  static constexpr Message type = Message::chunk_part;
  std::uint64_t id = 0;
  std::uint64_t first = 0;
  std::uint32_t count = 0;
};
inline std::size_t chunk_part_count_offset(const std::vector<std::uint8_t>& head_written) {
  return head_written.size() - 4;
}
struct ChunkPartTail {
  bool last = false;
  std::uint64_t rss = 0;
};

// Sent every ~100 ms while a frame runs.
struct Heartbeat {
  static constexpr Message type = Message::heartbeat;
  std::uint64_t rss = 0;
};

enum class RetireReason : std::uint8_t { max_tasks = 0, max_memory = 1 };

// The worker takes no more frames; those it still gets are dropped unanswered.
struct Retiring {
  static constexpr Message type = Message::retiring;
  RetireReason reason = RetireReason::max_tasks;
  std::uint64_t rss = 0;
};

struct Bye {
  static constexpr Message type = Message::bye;
  std::optional<Value> finalizer_error;  // error record; none: the finalizer ran (or there was none)
};

// A revoked frame, answered in its place in the stream.
struct Revoked {
  static constexpr Message type = Message::revoked;
  std::uint64_t id = 0;
};

// ---- the one encode/decode pair per message --------------------------------------
// decode() throws FrameError on a malformed or truncated body.

void encode(MsgpackWriter& w, const Hello& m);
void decode(MsgpackReader& r, Hello& m);
void encode(MsgpackWriter& w, const Task& m);
void decode(MsgpackReader& r, Task& m);
// decode(Task) in two steps, for the worker: the id and name first, so that
// arguments it cannot read fail that task alone.
void decode_task_head(MsgpackReader& r, Task& m);
void decode_task_arguments(MsgpackReader& r, Task& m);
void encode(MsgpackWriter& w, const Chunk& m);
void decode(MsgpackReader& r, Chunk& m);
void encode(MsgpackWriter& w, const Shutdown& m);
void decode(MsgpackReader& r, Shutdown& m);
void encode(MsgpackWriter& w, const Revoke& m);
void decode(MsgpackReader& r, Revoke& m);
void encode(MsgpackWriter& w, const Descriptors& m);
void decode(MsgpackReader& r, Descriptors& m);
void encode(MsgpackWriter& w, const Ready& m);
void decode(MsgpackReader& r, Ready& m);
void encode(MsgpackWriter& w, const InitFailed& m);
void decode(MsgpackReader& r, InitFailed& m);
void encode(MsgpackWriter& w, const Result& m);
void decode(MsgpackReader& r, Result& m);
void encode(MsgpackWriter& w, const Failure& m);
void decode(MsgpackReader& r, Failure& m);
void encode(MsgpackWriter& w, const ChunkPart& m);
void decode(MsgpackReader& r, ChunkPart& m);
void encode(MsgpackWriter& w, const ChunkPartTail& m);
void decode(MsgpackReader& r, ChunkPartTail& m);
void encode(MsgpackWriter& w, const Heartbeat& m);
void decode(MsgpackReader& r, Heartbeat& m);
void encode(MsgpackWriter& w, const Retiring& m);
void decode(MsgpackReader& r, Retiring& m);
void encode(MsgpackWriter& w, const Bye& m);
void decode(MsgpackReader& r, Bye& m);
void encode(MsgpackWriter& w, const Revoked& m);
void decode(MsgpackReader& r, Revoked& m);

// One item of a chunk frame: its positional arguments.
inline void encode_chunk_item(MsgpackWriter& w, const Args& args) {
  w.args(args);
}
inline void decode_chunk_item(MsgpackReader& r, Args& args) {
  r.args_into(args);
}

// One item of a chunk part: an ItemStatus (one byte), then the value (ok),
// the error record (error) or nothing (cancelled). Inline: the host decodes
// every item of every map on its one reactor thread.
inline void encode_item_ok(MsgpackWriter& w, const Value& value) {
  w.fixint(static_cast<std::uint8_t>(ItemStatus::ok));
  w.value(value);
}
inline void encode_item_error(MsgpackWriter& w, const Value& record) {
  w.fixint(static_cast<std::uint8_t>(ItemStatus::error));
  w.value(record);
}
inline void encode_item_cancelled(MsgpackWriter& w) {
  w.fixint(static_cast<std::uint8_t>(ItemStatus::cancelled));
}
// Reads the status; for ok the value goes into `value`, for error the record into `record`.
inline ItemStatus decode_item(MsgpackReader& r, Value& value, Value& record) {
  const std::uint64_t status = r.small_uinteger();
  if (status == static_cast<std::uint64_t>(ItemStatus::ok)) {
    r.value_into(value);
    return ItemStatus::ok;
  }
  if (status == static_cast<std::uint64_t>(ItemStatus::error)) {
    r.value_into(record);
    return ItemStatus::error;
  }
  if (status == static_cast<std::uint64_t>(ItemStatus::cancelled)) {
    return ItemStatus::cancelled;
  }
  throw FrameError("a chunk item with an unknown status " + std::to_string(status));
}

// A whole frame holding `m`; returns the frame's total size.
template <class M>
std::size_t write_frame(std::vector<std::uint8_t>& out, const M& m) {
  const auto at = begin_frame(out, M::type);
  MsgpackWriter writer(out);
  encode(writer, m);
  return end_frame(out, at);
}

// Decodes a frame's body as `M`, which must be its whole body.
template <class M>
M read_frame(const FrameView& frame) {
  if (frame.type != M::type) {
    throw FrameError("expected message type " + std::to_string(static_cast<int>(M::type)) + ", got " +
                     std::to_string(static_cast<int>(frame.type)));
  }
  MsgpackReader reader(frame.body, frame.end);
  M m;
  decode(reader, m);
  if (!reader.at_end()) {
    throw FrameError("trailing bytes after message type " + std::to_string(static_cast<int>(M::type)));
  }
  return m;
}

// Decodes any frame fully (chunk items and part outcomes included), as the
// host or worker would: the fuzz target's entry. Throws FrameError.
void decode_any(const FrameView& frame);

// ---- descriptors over the channel (SCM_RIGHTS) -------------------------------------

// Sends `frame` on the blocking or non-blocking socket `socket` with `fds`
// attached to its first byte. Returns bytes sent (the rest goes as plain
// bytes), or -1 with errno.
long send_with_fds(int socket, const std::uint8_t* data, std::size_t size, const std::vector<int>& fds);

// recv() that also collects descriptors passed with the bytes (appended to
// `fds`, O_CLOEXEC). Same return as recv().
long recv_with_fds(int socket, std::uint8_t* data, std::size_t size, int flags, std::vector<int>& fds);

}  // namespace troupe::detail::process
