#include "process/frame_codec.hpp"

#include <bit>
#include <cstdio>

namespace troupe::detail::process {

void MsgpackWriter::put_be(std::uint64_t v, int bytes) {
  const std::size_t at = out_->size();
  out_->resize(at + static_cast<std::size_t>(bytes));
  for (int i = bytes - 1; i >= 0; --i) {
    (*out_)[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v);
    v >>= 8;
  }
}

void MsgpackWriter::integer(std::int64_t v) {
  if (v >= -32 && v <= 127) {
    put(static_cast<std::uint8_t>(static_cast<std::int8_t>(v)));
  } else if (v >= INT8_MIN && v <= INT8_MAX) {
    put(0xd0);
    put_be(static_cast<std::uint64_t>(v), 1);
  } else if (v >= INT16_MIN && v <= INT16_MAX) {
    put(0xd1);
    put_be(static_cast<std::uint64_t>(v), 2);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    put(0xd2);
    put_be(static_cast<std::uint64_t>(v), 4);
  } else {
    put(0xd3);
    put_be(static_cast<std::uint64_t>(v), 8);
  }
}

void MsgpackWriter::uinteger(std::uint64_t v) {
  if (v <= UINT8_MAX) {
    put(0xcc);
    put_be(v, 1);
  } else if (v <= UINT16_MAX) {
    put(0xcd);
    put_be(v, 2);
  } else if (v <= UINT32_MAX) {
    put(0xce);
    put_be(v, 4);
  } else {
    put(0xcf);
    put_be(v, 8);
  }
}

void MsgpackWriter::float64(double v) {
  put(0xcb);
  put_be(std::bit_cast<std::uint64_t>(v), 8);
}

void MsgpackWriter::str(std::string_view s) {
  const std::size_t n = s.size();
  if (n <= 31) {
    put(static_cast<std::uint8_t>(0xa0 | n));
  } else if (n <= UINT8_MAX) {
    put(0xd9);
    put_be(n, 1);
  } else if (n <= UINT16_MAX) {
    put(0xda);
    put_be(n, 2);
  } else {
    put(0xdb);
    put_be(n, 4);
  }
  out_->insert(out_->end(), s.begin(), s.end());
}

void MsgpackWriter::bin(std::span<const std::uint8_t> bytes) {
  const std::size_t n = bytes.size();
  if (n <= UINT8_MAX) {
    put(0xc4);
    put_be(n, 1);
  } else if (n <= UINT16_MAX) {
    put(0xc5);
    put_be(n, 2);
  } else {
    put(0xc6);
    put_be(n, 4);
  }
  out_->insert(out_->end(), bytes.begin(), bytes.end());
}

void MsgpackWriter::array_header(std::size_t n) {
  if (n <= 15) {
    put(static_cast<std::uint8_t>(0x90 | n));
  } else if (n <= UINT16_MAX) {
    put(0xdc);
    put_be(n, 2);
  } else {
    put(0xdd);
    put_be(n, 4);
  }
}

void MsgpackWriter::map_header(std::size_t n) {
  if (n <= 15) {
    put(static_cast<std::uint8_t>(0x80 | n));
  } else if (n <= UINT16_MAX) {
    put(0xde);
    put_be(n, 2);
  } else {
    put(0xdf);
    put_be(n, 4);
  }
}

std::size_t MsgpackWriter::u32_placeholder() {
  put(0xce);
  const std::size_t at = out_->size();
  put_be(0, 4);
  return at;
}

void MsgpackWriter::patch_u32(std::size_t offset, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) {
    (*out_)[offset + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v);
    v >>= 8;
  }
}

void MsgpackWriter::value(const Value& v) {
  value_at(v, 0);
}

namespace {

[[noreturn]] void too_deep() {
  throw FrameError("a value nests deeper than the " + std::to_string(max_nesting) +
                   " levels a process-pool frame carries");
}

}  // namespace

void MsgpackWriter::value_at(const Value& v, int depth) {
  if (depth > max_nesting) {
    too_deep();
  }
  switch (v.type()) {
    case Value::value_t::null:
    case Value::value_t::discarded:
      nil();
      return;
    case Value::value_t::boolean:
      boolean(v.get<bool>());
      return;
    case Value::value_t::number_integer:
      integer(v.get<std::int64_t>());
      return;
    case Value::value_t::number_unsigned:
      uinteger(v.get<std::uint64_t>());
      return;
    case Value::value_t::number_float:
      float64(v.get<double>());
      return;
    case Value::value_t::string:
      str(v.get_ref<const std::string&>());
      return;
    case Value::value_t::binary: {
      const auto& b = v.get_binary();
      bin(std::span<const std::uint8_t>(b.data(), b.size()));
      return;
    }
    case Value::value_t::array: {
      const auto& items = v.get_ref<const Value::array_t&>();
      array_header(items.size());
      for (const auto& item : items) {
        value_at(item, depth + 1);
      }
      return;
    }
    case Value::value_t::object: {
      const auto& entries = v.get_ref<const Value::object_t&>();
      map_header(entries.size());
      for (const auto& [key, item] : entries) {
        str(key);
        value_at(item, depth + 1);
      }
      return;
    }
  }
  throw FrameError("a Value of an unknown kind cannot be encoded");
}

// Arguments are level 1, as MsgpackReader::args_into reads them.
void MsgpackWriter::args(const Args& a) {
  array_header(a.size());
  for (const auto& item : a) {
    value_at(item, 1);
  }
}

void MsgpackWriter::kwargs(const Kwargs& k) {
  map_header(k.size());
  for (const auto& [key, item] : k) {
    str(key);
    value_at(item, 1);
  }
}

void MsgpackReader::need(std::size_t n) const {
  if (static_cast<std::size_t>(end_ - p_) < n) {
    throw FrameError("truncated MessagePack item in a process-pool frame");
  }
}

std::uint8_t MsgpackReader::byte() {
  need(1);
  return *p_++;
}

std::uint64_t MsgpackReader::be(int bytes) {
  need(static_cast<std::size_t>(bytes));
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v = (v << 8) | *p_++;
  }
  return v;
}

void MsgpackReader::nil() {
  if (byte() != 0xc0) {
    throw FrameError("expected nil in a process-pool frame");
  }
}

bool MsgpackReader::boolean() {
  const std::uint8_t b = byte();
  if (b == 0xc2 || b == 0xc3) {
    return b == 0xc3;
  }
  throw FrameError("expected a boolean in a process-pool frame");
}

std::uint64_t MsgpackReader::uinteger() {
  const std::uint8_t b = byte();
  if (b <= 0x7f) {
    return b;
  }
  switch (b) {
    case 0xcc:
      return be(1);
    case 0xcd:
      return be(2);
    case 0xce:
      return be(4);
    case 0xcf:
      return be(8);
    default:
      throw FrameError("expected an unsigned integer in a process-pool frame");
  }
}

std::int64_t MsgpackReader::integer() {
  need(1);
  const std::uint8_t b = *p_;
  if (b >= 0xe0) {
    ++p_;
    return static_cast<std::int8_t>(b);
  }
  switch (b) {
    case 0xd0:
      ++p_;
      return static_cast<std::int8_t>(be(1));
    case 0xd1:
      ++p_;
      return static_cast<std::int16_t>(be(2));
    case 0xd2:
      ++p_;
      return static_cast<std::int32_t>(be(4));
    case 0xd3:
      ++p_;
      return static_cast<std::int64_t>(be(8));
    default:
      return static_cast<std::int64_t>(uinteger());
  }
}

std::string_view MsgpackReader::str() {
  const std::uint8_t b = byte();
  std::size_t n = 0;
  if ((b & 0xe0) == 0xa0) {
    n = b & 0x1f;
  } else if (b == 0xd9) {
    n = be(1);
  } else if (b == 0xda) {
    n = be(2);
  } else if (b == 0xdb) {
    n = be(4);
  } else {
    throw FrameError("expected a string in a process-pool frame");
  }
  need(n);
  std::string_view s(reinterpret_cast<const char*>(p_), n);
  p_ += n;
  return s;
}

// A count is checked against the bytes left before anyone sizes a
// container by it: every item takes at least `min_item_bytes` (one for an
// array item, two for a map entry), so a corrupt header cannot make the
// host allocate what the frame cannot hold.
std::size_t MsgpackReader::counted_header(const ContainerFormat& format) {
  const std::uint8_t b = byte();
  std::size_t n = 0;
  if ((b & 0xf0) == format.fix_tag) {
    n = b & 0x0f;
  } else if (b == format.tag16) {
    n = be(2);
  } else if (b == format.tag32) {
    n = be(4);
  } else {
    throw FrameError(std::string("expected ") + format.a_kind + " in a process-pool frame");
  }
  const auto left = static_cast<std::size_t>(end_ - p_);
  if (n > left / format.min_item_bytes) {
    throw FrameError(std::string("a process-pool frame announces ") + format.a_kind + " of " + std::to_string(n) + " " +
                     format.items + " in " + std::to_string(left) + " remaining bytes");
  }
  return n;
}

std::size_t MsgpackReader::array_header() {
  return counted_header({0x90, 0xdc, 0xdd, 1, "an array", "items"});
}

std::size_t MsgpackReader::map_header() {
  return counted_header({0x80, 0xde, 0xdf, 2, "a map", "entries"});
}

Value MsgpackReader::value() {
  Value v;
  value_into(v, 0);
  return v;
}

void MsgpackReader::value_into(Value& out) {
  value_into(out, 0);
}

void MsgpackReader::value_into(Value& out, int depth) {
  if (depth > max_nesting) {
    too_deep();
  }
  need(1);
  const std::uint8_t b = *p_;
  if (b <= 0x7f || b >= 0xe0 || (b >= 0xd0 && b <= 0xd3)) {
    out = integer();
    return;
  }
  if (b >= 0xcc && b <= 0xcf) {
    out = uinteger();
    return;
  }
  if ((b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb)) {
    const std::string_view s = str();
    if (out.is_string()) {
      out.get_ref<std::string&>().assign(s);
    } else {
      out = std::string(s);
    }
    return;
  }
  if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd) {
    const std::size_t n = array_header();
    if (!out.is_array()) {
      out = Value::array();
    }
    fill_array(out.get_ref<Value::array_t&>(), n, depth + 1);
    return;
  }
  if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf) {
    const std::size_t n = map_header();
    out = Value::object();
    auto& object = out.get_ref<Value::object_t&>();
    for (std::size_t i = 0; i < n; ++i) {
      std::string key(str());
      value_into(object[std::move(key)], depth + 1);
    }
    return;
  }
  other_into(out, b);
}

// nil, booleans, floats and binary: the kinds without a range of type bytes.
void MsgpackReader::other_into(Value& out, std::uint8_t b) {
  switch (b) {
    case 0xc0:
      ++p_;
      out = nullptr;
      return;
    case 0xc2:
    case 0xc3:
      out = boolean();
      return;
    case 0xca: {
      ++p_;
      out = static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(be(4))));
      return;
    }
    case 0xcb:
      ++p_;
      out = std::bit_cast<double>(be(8));
      return;
    case 0xc4:
    case 0xc5:
    case 0xc6: {
      ++p_;
      const std::size_t n = be(b == 0xc4 ? 1 : b == 0xc5 ? 2 : 4);
      need(n);
      out = Value::binary(std::vector<std::uint8_t>(p_, p_ + n));
      p_ += n;
      return;
    }
    default:
      throw FrameError("unsupported MessagePack type byte in a process-pool frame");
  }
}

// Reuses the elements already there, then grows one item at a time: sizing
// the array by its count up front would let nested headers, each within
// the frame's bytes, multiply into an allocation the frame cannot back.
void MsgpackReader::fill_array(std::vector<Value>& out, std::size_t n, int depth) {
  if (out.size() > n) {
    out.resize(n);
  }
  for (auto& item : out) {
    value_into(item, depth);
  }
  while (out.size() < n) {
    value_into(out.emplace_back(), depth);
  }
}

void MsgpackReader::args_into(Args& out) {
  fill_array(out, array_header(), 1);
}

void MsgpackReader::kwargs_into(Kwargs& out) {
  const std::size_t n = map_header();
  out.clear();
  for (std::size_t i = 0; i < n; ++i) {
    std::string key(str());
    value_into(out[std::move(key)], 1);
  }
}

std::span<std::uint8_t> FrameBuffer::prepare(std::size_t min) {
  if (begin_ == end_) {
    begin_ = end_ = 0;
  }
  if (data_.size() - end_ < min) {
    if (begin_ > 0) {
      std::memmove(data_.data(), data_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (data_.size() - end_ < min) {
      data_.resize(end_ + min);
    }
  }
  return {data_.data() + end_, data_.size() - end_};
}

bool FrameBuffer::next(FrameView& frame) {
  const std::size_t available = end_ - begin_;
  if (available < frame_header_size) {
    return false;
  }
  const std::uint8_t* header = data_.data() + begin_;
  const std::uint32_t length = frame_length(header);
  if (length < 1 || length > max_frame_) {
    throw FrameError("a process-pool frame of " + std::to_string(length) + " bytes is over the limit of " +
                     std::to_string(max_frame_) + " bytes (or empty): the channel is corrupt");
  }
  if (available < 4 + static_cast<std::size_t>(length)) {
    // Grow once to the whole frame so the next read can complete it.
    if (data_.size() - begin_ < 4 + static_cast<std::size_t>(length)) {
      prepare(4 + static_cast<std::size_t>(length) - available);
    }
    return false;
  }
  frame.type = static_cast<Message>(header[4]);
  frame.body = header + frame_header_size;
  frame.end = header + 4 + length;
  begin_ += 4 + static_cast<std::size_t>(length);
  return true;
}

std::string format_bytes(std::uint64_t bytes) {
  char text[64];
  const double b = static_cast<double>(bytes);
  if (bytes >= (1ull << 30)) {
    std::snprintf(text, sizeof text, "%.1f GiB", b / (1ull << 30));
  } else if (bytes >= (1ull << 20)) {
    std::snprintf(text, sizeof text, "%.1f MiB", b / (1ull << 20));
  } else if (bytes >= 1024) {
    std::snprintf(text, sizeof text, "%.1f KiB", b / 1024);
  } else {
    std::snprintf(text, sizeof text, "%llu bytes", static_cast<unsigned long long>(bytes));
  }
  return text;
}

}  // namespace troupe::detail::process
