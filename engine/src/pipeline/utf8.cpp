#include "pipeline/utf8.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace troupe::detail::pipeline {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// The length of the valid UTF-8 sequence at text[i], or 0 (Unicode's
// table 3-7 of well-formed byte sequences).
std::size_t sequence_length(std::string_view text, std::size_t i) noexcept {
  const auto byte = [&](std::size_t at) {
    return static_cast<unsigned char>(text[at]);
  };
  const unsigned char lead = byte(i);
  if (lead < 0x80) {
    return 1;
  }
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    low = lead == 0xE0 ? 0xA0 : 0x80;
    high = lead == 0xED ? 0x9F : 0xBF;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    low = lead == 0xF0 ? 0x90 : 0x80;
    high = lead == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 0;
  }
  if (i + length > text.size()) {
    return 0;
  }
  if (byte(i + 1) < low || byte(i + 1) > high) {
    return 0;
  }
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) {
      return 0;
    }
  }
  return length;
}

}  // namespace

std::string valid_utf8(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  std::size_t clean_from = 0;
  while (i < text.size()) {
    const std::size_t length = sequence_length(text, i);
    if (length != 0) {
      i += length;
      continue;
    }
    if (out.empty()) {
      out.reserve(text.size() + 2);
    }
    out.append(text.substr(clean_from, i - clean_from));
    out.append(kReplacement);
    // One replacement for a lead byte and the continuation bytes after it.
    ++i;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) {
      ++i;
    }
    clean_from = i;
  }
  if (clean_from == 0) {
    return std::string(text);
  }
  out.append(text.substr(clean_from));
  return out;
}

}  // namespace troupe::detail::pipeline
