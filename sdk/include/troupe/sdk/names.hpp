// troupe/sdk/names.hpp
//
// The rules for the names of tasks, initializers and finalizers, checked
// when a plugin registers them (names reach terminals, logs, JSON and YAML).
//
// Guarantees: an accepted name is non-empty valid UTF-8 without a dot, and
// every character in it is visible: no whitespace (ASCII or Unicode), no
// control character (C0, DEL, C1) and no invisible formatting or bidi
// control (zero-width spaces, direction overrides, the BOM). A refused
// name is reported with its bad bytes escaped (`\x09`, `\u200b`).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace troupe::detail {

// The next code point of `s` at `i` (advanced past it), or -1 when the bytes
// there are not UTF-8 (truncated, overlong, a surrogate, past U+10FFFF);
// then `i` moves one byte on.
inline std::int32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto byte = [&](std::size_t k) {
    return static_cast<unsigned char>(s[k]);
  };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  std::int32_t cp = 0;
  std::int32_t min = 0;
  if (lead < 0x80) {
    ++i;
    return lead;
  } else if ((lead & 0xE0) == 0xC0) {
    length = 2;
    cp = lead & 0x1F;
    min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    cp = lead & 0x0F;
    min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    cp = lead & 0x07;
    min = 0x10000;
  } else {
    ++i;
    return -1;
  }
  if (s.size() - i < length) {
    ++i;
    return -1;
  }
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return -1;
    }
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return -1;
  }
  i += length;
  return cp;
}

// Whitespace, control characters and invisible formatting characters.
inline bool is_invisible(std::int32_t cp) {
  if (cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) {
    return true;  // C0, space, DEL, C1, no-break space, soft hyphen
  }
  if (cp == 0x1680 || cp == 0x180E || (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F)) {
    return true;  // Unicode spaces, zero-width characters, direction marks and embeddings
  }
  if ((cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB)) {
    return true;  // word joiners, bidi isolates, ideographic space, BOM, annotation controls
  }
  return cp == 0xFFFE || cp == 0xFFFF;
}

// `name` with every invisible character or undecodable byte escaped, for messages.
inline std::string escaped_name(std::string_view name) {
  std::string out;
  char buffer[16];
  for (std::size_t i = 0; i < name.size();) {
    const std::size_t start = i;
    const std::int32_t cp = next_code_point(name, i);
    if (cp < 0) {
      std::snprintf(buffer, sizeof buffer, "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(name[start])));
      out += buffer;
    } else if (is_invisible(cp) || cp == '\\') {
      std::snprintf(buffer, sizeof buffer, cp < 0x80 ? "\\x%02x" : "\\u%04x", static_cast<unsigned>(cp));
      out += buffer;
    } else {
      out.append(name.substr(start, i - start));
    }
  }
  return out;
}

// What is wrong with a task, initializer or finalizer name; empty when nothing is.
inline std::string name_problem(std::string_view name) {
  if (name.empty()) {
    return "is empty";
  }
  if (name.find('.') != std::string_view::npos) {
    return "contains a dot (names are qualified as plugin.name)";
  }
  for (std::size_t i = 0; i < name.size();) {
    const std::size_t at = i;
    const std::int32_t cp = next_code_point(name, i);
    if (cp < 0) {
      return "is not valid UTF-8 (at byte " + std::to_string(at) + ")";
    }
    if (is_invisible(cp)) {
      return "contains whitespace, a control character or an invisible character (at byte " + std::to_string(at) + ")";
    }
  }
  return {};
}

}  // namespace troupe::detail
