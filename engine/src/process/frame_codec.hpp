// The process pool's wire format: length-prefixed frames whose bodies are
// sequences of MessagePack items, written and read without building a
// Value tree where the caller does not need one (a map chunk's items are
// written straight from their Args and read back into one reused Args).
//
// Frame: u32 little-endian length of what follows, u8 message type, body.
// Integers keep their nlohmann kind across the wire: number_unsigned uses
// MessagePack's uint formats, number_integer fixint and the int formats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/sdk/call.hpp"
#include "troupe/sdk/errors.hpp"
#include "troupe/sdk/value.hpp"

namespace troupe::detail::process {

// Message types (layouts: process/protocol.hpp). Host -> worker below 10,
// worker -> host from 10.
enum class Message : std::uint8_t {
  hello = 1,
  task = 2,
  chunk = 3,
  shutdown = 4,
  revoke = 5,
  descriptors = 6,
  ready = 10,
  init_failed = 11,
  result = 12,
  error = 13,
  chunk_part = 14,
  heartbeat = 15,
  retiring = 16,
  bye = 17,
  revoked = 18,
};

// How one item of a chunk part ended.
enum class ItemStatus : std::uint8_t { ok = 0, error = 1, cancelled = 2 };

inline constexpr std::size_t frame_header_size = 5;
// A frame body never exceeds this many bytes minus the header; the pool's max_frame.
inline constexpr std::uint32_t default_max_frame = 64u << 20;
// How deep values may nest (a task's arguments are level 1), the same for
// writing and reading: the host refuses before sending what a worker could
// not read, and a worker what the host could not.
inline constexpr int max_nesting = 512;

// A malformed frame or MessagePack item.
class FrameError : public Error {
 public:
  using Error::Error;
};

// Appends MessagePack to a byte vector. A value nested deeper than
// max_nesting is a FrameError (what was written of it stays in the buffer).
class MsgpackWriter {
 public:
  explicit MsgpackWriter(std::vector<std::uint8_t>& out) noexcept : out_(&out) {}

  void nil() { put(0xc0); }
  // A positive fixint: one byte for v < 128 (uinteger() keeps the uint
  // formats, two bytes even for 0). For small enums on hot paths.
  void fixint(std::uint8_t v) { put(v & 0x7f); }
  void boolean(bool b) { put(b ? 0xc3 : 0xc2); }
  void integer(std::int64_t v);
  void uinteger(std::uint64_t v);
  void float64(double v);
  void str(std::string_view s);
  void bin(std::span<const std::uint8_t> bytes);
  void array_header(std::size_t n);
  void map_header(std::size_t n);
  // A u32 that can be patched later at the returned offset (patch_u32).
  std::size_t u32_placeholder();
  void patch_u32(std::size_t offset, std::uint32_t v);
  void value(const Value& v);
  void args(const Args& a);
  void kwargs(const Kwargs& k);

  std::vector<std::uint8_t>& buffer() noexcept { return *out_; }

 private:
  void put(std::uint8_t b) { out_->push_back(b); }
  void put_be(std::uint64_t v, int bytes);
  void value_at(const Value& v, int depth);
  std::vector<std::uint8_t>* out_;
};

// Reads MessagePack from a byte range; throws FrameError past the end or on
// a malformed item.
class MsgpackReader {
 public:
  MsgpackReader(const std::uint8_t* begin, const std::uint8_t* end) noexcept : p_(begin), end_(end) {}

  bool at_end() const noexcept { return p_ == end_; }
  bool next_is_nil() const { return p_ < end_ && *p_ == 0xc0; }
  void nil();
  bool boolean();
  std::uint64_t uinteger();
  // uinteger() with the positive fixint (what fixint() writes) read inline.
  std::uint64_t small_uinteger() { return p_ < end_ && *p_ <= 0x7f ? *p_++ : uinteger(); }
  std::int64_t integer();
  std::string_view str();
  std::size_t array_header();
  std::size_t map_header();
  Value value();
  // Decodes into `out`, reusing its storage where the kinds match.
  void value_into(Value& out);
  void args_into(Args& out);
  void kwargs_into(Kwargs& out);
  const std::uint8_t* position() const noexcept { return p_; }

 private:
  std::uint8_t byte();
  std::uint64_t be(int bytes);
  void need(std::size_t n) const;
  struct ContainerFormat {
    std::uint8_t fix_tag, tag16, tag32;  // fixarray/fixmap (high nibble), 16- and 32-bit count forms
    std::size_t min_item_bytes;
    const char* a_kind;  // "an array"
    const char* items;   // "items"
  };
  std::size_t counted_header(const ContainerFormat& format);
  void value_into(Value& out, int depth);
  void other_into(Value& out, std::uint8_t b);
  void fill_array(std::vector<Value>& out, std::size_t n, int depth);
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

// Starts a frame at the end of `out`: reserves the header. Returns its offset.
inline std::size_t begin_frame(std::vector<std::uint8_t>& out, Message type) {
  const std::size_t offset = out.size();
  out.resize(offset + frame_header_size);
  out[offset + 4] = static_cast<std::uint8_t>(type);
  return offset;
}

// Fills the length of the frame started at `offset`; returns the frame's total size.
inline std::size_t end_frame(std::vector<std::uint8_t>& out, std::size_t offset) {
  const auto length = static_cast<std::uint32_t>(out.size() - offset - 4);
  std::uint8_t bytes[4] = {static_cast<std::uint8_t>(length), static_cast<std::uint8_t>(length >> 8),
                           static_cast<std::uint8_t>(length >> 16), static_cast<std::uint8_t>(length >> 24)};
  std::memcpy(out.data() + offset, bytes, 4);
  return out.size() - offset;
}

// The length field of a frame header (type byte + body).
inline std::uint32_t frame_length(const std::uint8_t* header) noexcept {
  return static_cast<std::uint32_t>(header[0]) | static_cast<std::uint32_t>(header[1]) << 8 |
         static_cast<std::uint32_t>(header[2]) << 16 | static_cast<std::uint32_t>(header[3]) << 24;
}

// A complete frame inside a receive buffer.
struct FrameView {
  Message type;
  const std::uint8_t* body;
  const std::uint8_t* end;
};

// Incoming bytes, split into frames. Frames over `max_frame` are a FrameError.
class FrameBuffer {
 public:
  explicit FrameBuffer(std::size_t max_frame) : max_frame_(max_frame) {}

  // Space to read into (at least `min` bytes); then commit(n).
  std::span<std::uint8_t> prepare(std::size_t min = 64 * 1024);
  void commit(std::size_t n) noexcept { end_ += n; }
  // The next complete frame, or false. The view stays valid until the next prepare().
  bool next(FrameView& frame);
  bool empty() const noexcept { return begin_ == end_; }
  // Calls f(const FrameView&) for each complete frame buffered, from the one
  // next() returns on, without consuming any (the worker's look-ahead for
  // revoke frames). Stops at an incomplete or malformed frame.
  template <class F>
  void peek(F&& f) const {
    std::size_t at = begin_;
    while (end_ - at >= frame_header_size) {
      const std::uint8_t* header = data_.data() + at;
      const std::uint32_t length = frame_length(header);
      if (length < 1 || length > max_frame_ || end_ - at < 4 + static_cast<std::size_t>(length)) {
        return;
      }
      f(FrameView{static_cast<Message>(header[4]), header + frame_header_size, header + 4 + length});
      at += 4 + static_cast<std::size_t>(length);
    }
  }
  void set_max_frame(std::size_t max_frame) noexcept { max_frame_ = max_frame; }

 private:
  std::vector<std::uint8_t> data_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t max_frame_;
};

// "1.5 MiB"
std::string format_bytes(std::uint64_t bytes);

}  // namespace troupe::detail::process
