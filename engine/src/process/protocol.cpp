#include "process/protocol.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace troupe::detail::process {

namespace {

void encode_call(MsgpackWriter& w, const std::optional<Call>& call) {
  if (!call) {
    w.nil();
    return;
  }
  w.array_header(3);
  w.str(call->task);
  w.args(call->args);
  w.kwargs(call->kwargs);
}

void decode_call(MsgpackReader& r, std::optional<Call>& call) {
  if (r.next_is_nil()) {
    r.nil();
    call.reset();
    return;
  }
  if (r.array_header() != 3) {
    throw FrameError("a call is [task, args, kwargs]");
  }
  call.emplace();
  call->task = std::string(r.str());
  r.args_into(call->args);
  r.kwargs_into(call->kwargs);
}

void encode_ids(MsgpackWriter& w, const std::vector<std::uint64_t>& ids) {
  w.array_header(ids.size());
  for (const auto id : ids) {
    w.uinteger(id);
  }
}

void decode_ids(MsgpackReader& r, std::vector<std::uint64_t>& ids) {
  const std::size_t n = r.array_header();  // checked against the bytes left
  ids.clear();
  for (std::size_t i = 0; i < n; ++i) {
    ids.push_back(r.uinteger());
  }
}

void encode_signature(MsgpackWriter& w, const Signature& s) {
  w.array_header(5);
  w.str(s.qualified_name);
  w.str(s.kind);
  w.array_header(s.params.size());
  for (const auto& p : s.params) {
    w.array_header(3);
    w.str(p.name);
    w.str(p.type);
    if (p.default_value) {
      w.array_header(1);  // a default that is itself null stays distinct from none
      w.value(*p.default_value);
    } else {
      w.nil();
    }
  }
  w.str(s.result_type);
  w.boolean(s.named);
}

void decode_signature(MsgpackReader& r, Signature& s) {
  if (r.array_header() != 5) {
    throw FrameError("a signature is [name, kind, params, result type, named]");
  }
  s.qualified_name = std::string(r.str());
  s.kind = std::string(r.str());
  const std::size_t n = r.array_header();
  s.params.clear();
  for (std::size_t i = 0; i < n; ++i) {
    if (r.array_header() != 3) {
      throw FrameError("a parameter is [name, type, default]");
    }
    ParamInfo p;
    p.name = std::string(r.str());
    p.type = std::string(r.str());
    if (r.next_is_nil()) {
      r.nil();
    } else {
      if (r.array_header() != 1) {
        throw FrameError("a parameter's default is [value] or nil");
      }
      p.default_value = r.value();
    }
    s.params.push_back(std::move(p));
  }
  s.result_type = std::string(r.str());
  s.named = r.boolean();
}

}  // namespace

void encode(MsgpackWriter& w, const Hello& m) {
  w.uinteger(m.worker_id);
  w.str(m.pool);
  w.array_header(m.plugins.size());
  for (const auto& p : m.plugins) {
    w.str(p);
  }
  encode_call(w, m.initializer);
  encode_call(w, m.finalizer);
  w.uinteger(m.max_tasks);
  w.uinteger(m.max_memory);
  w.uinteger(m.max_frame);
}

void decode(MsgpackReader& r, Hello& m) {
  m.worker_id = r.uinteger();
  m.pool = std::string(r.str());
  const std::size_t n = r.array_header();
  m.plugins.clear();
  for (std::size_t i = 0; i < n; ++i) {
    m.plugins.emplace_back(r.str());
  }
  decode_call(r, m.initializer);
  decode_call(r, m.finalizer);
  m.max_tasks = r.uinteger();
  m.max_memory = r.uinteger();
  m.max_frame = r.uinteger();
}

void encode(MsgpackWriter& w, const Task& m) {
  w.uinteger(m.id);
  w.str(m.task);
  w.uinteger(m.timeout_ns);
  w.args(m.args);
  w.kwargs(m.kwargs);
}

void decode(MsgpackReader& r, Task& m) {
  decode_task_head(r, m);
  decode_task_arguments(r, m);
}

void decode_task_head(MsgpackReader& r, Task& m) {
  m.id = r.uinteger();
  m.task = r.str();
  m.timeout_ns = r.uinteger();
}

void decode_task_arguments(MsgpackReader& r, Task& m) {
  r.args_into(m.args);
  r.kwargs_into(m.kwargs);
}

void encode(MsgpackWriter& w, const Chunk& m) {
  w.uinteger(m.id);
  w.str(m.task);
  w.uinteger(m.timeout_ns);
  w.uinteger(m.count);
}

void decode(MsgpackReader& r, Chunk& m) {
  m.id = r.uinteger();
  m.task = r.str();
  m.timeout_ns = r.uinteger();
  m.count = r.uinteger();
}

void encode(MsgpackWriter&, const Shutdown&) {}
void decode(MsgpackReader&, Shutdown&) {}

void encode(MsgpackWriter& w, const Revoke& m) {
  encode_ids(w, m.ids);
}
void decode(MsgpackReader& r, Revoke& m) {
  decode_ids(r, m.ids);
}

void encode(MsgpackWriter& w, const Descriptors& m) {
  encode_ids(w, m.ids);
}
void decode(MsgpackReader& r, Descriptors& m) {
  decode_ids(r, m.ids);
}

void encode(MsgpackWriter& w, const Ready& m) {
  w.uinteger(m.pid);
  w.uinteger(m.rss);
  w.array_header(m.tasks.size());
  for (const auto& s : m.tasks) {
    encode_signature(w, s);
  }
}

void decode(MsgpackReader& r, Ready& m) {
  m.pid = r.uinteger();
  m.rss = r.uinteger();
  const std::size_t n = r.array_header();
  m.tasks.clear();
  for (std::size_t i = 0; i < n; ++i) {
    decode_signature(r, m.tasks.emplace_back());
  }
}

void encode(MsgpackWriter& w, const InitFailed& m) {
  w.value(m.error);
}
void decode(MsgpackReader& r, InitFailed& m) {
  r.value_into(m.error);
}

void encode(MsgpackWriter& w, const Result& m) {
  w.uinteger(m.id);
  w.uinteger(m.rss);
  w.value(m.value);
}
void decode(MsgpackReader& r, Result& m) {
  m.id = r.uinteger();
  m.rss = r.uinteger();
  r.value_into(m.value);
}

void encode(MsgpackWriter& w, const Failure& m) {
  w.uinteger(m.id);
  w.uinteger(m.rss);
  w.value(m.error);
}
void decode(MsgpackReader& r, Failure& m) {
  m.id = r.uinteger();
  m.rss = r.uinteger();
  r.value_into(m.error);
}

void encode(MsgpackWriter& w, const ChunkPart& m) {
  w.uinteger(m.id);
  w.uinteger(m.first);
  w.patch_u32(w.u32_placeholder(), m.count);
}
void decode(MsgpackReader& r, ChunkPart& m) {
  m.id = r.uinteger();
  m.first = r.uinteger();
  const std::uint64_t count = r.uinteger();
  if (count > UINT32_MAX) {
    throw FrameError("a chunk part counts more than 2^32 items");
  }
  m.count = static_cast<std::uint32_t>(count);
}

void encode(MsgpackWriter& w, const ChunkPartTail& m) {
  w.boolean(m.last);
  w.uinteger(m.rss);
}
void decode(MsgpackReader& r, ChunkPartTail& m) {
  m.last = r.boolean();
  m.rss = r.uinteger();
}

void encode(MsgpackWriter& w, const Heartbeat& m) {
  w.uinteger(m.rss);
}
void decode(MsgpackReader& r, Heartbeat& m) {
  m.rss = r.uinteger();
}

void encode(MsgpackWriter& w, const Retiring& m) {
  w.uinteger(static_cast<std::uint64_t>(m.reason));
  w.uinteger(m.rss);
}
void decode(MsgpackReader& r, Retiring& m) {
  const std::uint64_t reason = r.uinteger();
  if (reason > static_cast<std::uint64_t>(RetireReason::max_memory)) {
    throw FrameError("a retiring frame with an unknown reason " + std::to_string(reason));
  }
  m.reason = static_cast<RetireReason>(reason);
  m.rss = r.uinteger();
}

void encode(MsgpackWriter& w, const Bye& m) {
  if (m.finalizer_error) {
    w.value(*m.finalizer_error);
  } else {
    w.nil();
  }
}
void decode(MsgpackReader& r, Bye& m) {
  if (r.next_is_nil()) {
    r.nil();
    m.finalizer_error.reset();
  } else {
    m.finalizer_error = r.value();
  }
}

void encode(MsgpackWriter& w, const Revoked& m) {
  w.uinteger(m.id);
}
void decode(MsgpackReader& r, Revoked& m) {
  m.id = r.uinteger();
}

namespace {

template <class M>
void decode_whole(const FrameView& frame) {
  (void)read_frame<M>(frame);
}

void decode_chunk_frame(const FrameView& frame) {
  MsgpackReader r(frame.body, frame.end);
  Chunk chunk;
  decode(r, chunk);
  Args args;
  for (std::uint64_t i = 0; i < chunk.count; ++i) {
    decode_chunk_item(r, args);  // throws at the end of the bytes, whatever count claims
  }
  if (!r.at_end()) {
    throw FrameError("trailing bytes after a chunk's items");
  }
}

void decode_chunk_part_frame(const FrameView& frame) {
  MsgpackReader r(frame.body, frame.end);
  ChunkPart part;
  decode(r, part);
  Value value;
  Value record;
  for (std::uint32_t i = 0; i < part.count; ++i) {
    decode_item(r, value, record);
  }
  ChunkPartTail tail;
  decode(r, tail);
  if (!r.at_end()) {
    throw FrameError("trailing bytes after a chunk part");
  }
}

}  // namespace

void decode_any(const FrameView& frame) {
  switch (frame.type) {
    case Message::hello:
      return decode_whole<Hello>(frame);
    case Message::task:
      return decode_whole<Task>(frame);
    case Message::chunk:
      return decode_chunk_frame(frame);
    case Message::shutdown:
      return decode_whole<Shutdown>(frame);
    case Message::revoke:
      return decode_whole<Revoke>(frame);
    case Message::descriptors:
      return decode_whole<Descriptors>(frame);
    case Message::ready:
      return decode_whole<Ready>(frame);
    case Message::init_failed:
      return decode_whole<InitFailed>(frame);
    case Message::result:
      return decode_whole<Result>(frame);
    case Message::error:
      return decode_whole<Failure>(frame);
    case Message::chunk_part:
      return decode_chunk_part_frame(frame);
    case Message::heartbeat:
      return decode_whole<Heartbeat>(frame);
    case Message::retiring:
      return decode_whole<Retiring>(frame);
    case Message::bye:
      return decode_whole<Bye>(frame);
    case Message::revoked:
      return decode_whole<Revoked>(frame);
  }
  throw FrameError("unknown message type " + std::to_string(static_cast<int>(frame.type)));
}

// ---- SCM_RIGHTS ----------------------------------------------------------------

namespace {
constexpr std::size_t max_fds_per_message = 64;  // well under the kernel's SCM_MAX_FD (253)
}

long send_with_fds(int socket, const std::uint8_t* data, std::size_t size, const std::vector<int>& fds) {
  if (fds.size() > max_fds_per_message) {
    errno = E2BIG;
    return -1;
  }
  iovec iov{const_cast<std::uint8_t*>(data), size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds_per_message)];
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return ::sendmsg(socket, &msg, MSG_NOSIGNAL);
}

long recv_with_fds(int socket, std::uint8_t* data, std::size_t size, int flags, std::vector<int>& fds) {
  iovec iov{data, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds_per_message)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(socket, &msg, flags | MSG_CMSG_CLOEXEC);
  if (n < 0) {
    return n;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const std::size_t at = fds.size();
      fds.resize(at + count);
      std::memcpy(fds.data() + at, CMSG_DATA(c), sizeof(int) * count);
    }
  }
  return n;
}

}  // namespace troupe::detail::process
