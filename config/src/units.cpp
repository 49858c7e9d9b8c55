#include "troupe/config/units.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

namespace troupe::config {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

// Splits "1.5ms" into 1.5 and "ms".
std::pair<double, std::string_view> split_number(std::string_view text, const char* what, const char* examples) {
  std::string_view s = trim(text);
  std::size_t end = 0;
  while (end < s.size() && (std::isdigit(static_cast<unsigned char>(s[end])) || s[end] == '.')) {
    ++end;
  }
  double number = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + end, number);
  if (end == 0 || ec != std::errc() || ptr != s.data() + end || !std::isfinite(number)) {
    throw ConfigValueError("expected a " + std::string(what) + " such as " + examples + ", got '" + std::string(text) +
                           "'");
  }
  return {number, trim(s.substr(end))};
}

}  // namespace

std::chrono::nanoseconds parse_duration(std::string_view text) {
  constexpr const char* kExamples = "250ms, 30s, 5m or 1h";
  auto [number, unit] = split_number(text, "duration", kExamples);
  double scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1e9;
  } else if (unit == "ms") {
    scale = 1e6;
  } else if (unit == "us" || unit == "µs") {
    scale = 1e3;
  } else if (unit == "ns") {
    scale = 1;
  } else if (unit == "m" || unit == "min") {
    scale = 60e9;
  } else if (unit == "h") {
    scale = 3600e9;
  } else {
    throw ConfigValueError("unknown duration unit '" + std::string(unit) + "' in '" + std::string(text) +
                           "'; use ns, us, ms, s, m or h (" + kExamples + ")");
  }
  const double ns = std::round(number * scale);
  if (ns >= 0x1p63) {
    throw ConfigValueError("duration '" + std::string(text) + "' is too long");
  }
  return std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
}

std::uint64_t parse_size(std::string_view text) {
  constexpr const char* kExamples = "512MiB, 2GiB or 4096";
  auto [number, unit] = split_number(text, "size", kExamples);
  double scale = 0;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else if (unit == "KiB" || unit == "K") {
    scale = 1024.0;
  } else if (unit == "MiB" || unit == "M") {
    scale = 1024.0 * 1024;
  } else if (unit == "GiB" || unit == "G") {
    scale = 1024.0 * 1024 * 1024;
  } else if (unit == "TiB" || unit == "T") {
    scale = 1024.0 * 1024 * 1024 * 1024;
  } else if (unit == "kB" || unit == "KB") {
    scale = 1e3;
  } else if (unit == "MB") {
    scale = 1e6;
  } else if (unit == "GB") {
    scale = 1e9;
  } else if (unit == "TB") {
    scale = 1e12;
  } else {
    throw ConfigValueError("unknown size unit '" + std::string(unit) + "' in '" + std::string(text) +
                           "'; use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB (" + kExamples + ")");
  }
  const double bytes = number * scale;
  if (bytes >= 0x1p64) {
    throw ConfigValueError("size '" + std::string(text) + "' is too large");
  }
  if (std::trunc(bytes) != bytes) {
    throw ConfigValueError("size '" + std::string(text) + "' is not a whole number of bytes");
  }
  return static_cast<std::uint64_t>(bytes);
}

}  // namespace troupe::config
