#include "troupe/detail/json_integers.hpp"

#include <charconv>
#include <cstdint>

#include "common/json_strings.hpp"

namespace troupe::detail {
namespace {

bool digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

// A number token's characters; JSON has no other use for them outside strings.
bool number_char(char c) noexcept {
  return digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

}  // namespace

bool integer_fits(std::string_view literal) noexcept {
  const char* first = literal.data();
  const char* last = literal.data() + literal.size();
  if (first != last && *first == '+') {
    ++first;
  }
  if (first == last) {
    return false;
  }
  std::int64_t i = 0;
  if (const auto [end, error] = std::from_chars(first, last, i); error == std::errc() && end == last) {
    return true;
  }
  std::uint64_t u = 0;
  const auto [end, error] = std::from_chars(first, last, u);
  return *first != '-' && error == std::errc() && end == last;
}

std::optional<WideInteger> find_wide_integer(std::string_view json) {
  JsonStringTracker strings;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (strings.in_string(c)) {
      continue;
    }
    // A number holds no quote, so the characters skipped below change nothing for `strings`.
    if (!digit(c) && c != '-') {
      continue;
    }
    std::size_t end = i;
    std::size_t digits = 0;
    bool integer = true;
    while (end < json.size() && number_char(json[end])) {
      digits += digit(json[end]) ? 1 : 0;
      integer = integer && (digit(json[end]) || json[end] == '-');
      ++end;
    }
    // Up to 18 digits always fit: the common case needs no conversion.
    if (integer && digits > 18 && !integer_fits(json.substr(i, end - i))) {
      return WideInteger{i, std::string(json.substr(i, end - i))};
    }
    i = end - 1;
  }
  return std::nullopt;
}

std::string wide_integer_message(std::string_view literal) {
  // A literal of hundreds of digits is shown cut, and the advice then gives its own examples.
  constexpr std::size_t kShown = 30;
  if (literal.size() > kShown) {
    return "the integer " + std::string(literal.substr(0, kShown)) + "... (" + std::to_string(literal.size()) +
           " characters) is outside -2^63..2^64-1, which no integer type holds; pass it as a string (in quotes), "
           "or as a float written with a decimal point or an exponent (e.g. 1.5e40) if losing its low digits is "
           "fine";
  }
  const std::string digits(literal);
  return "the integer " + digits + " is outside -2^63..2^64-1, which no integer type holds; pass it as a string (\"" +
         digits + "\"), or as a float written with a decimal point or an exponent (" + digits +
         ".0) if losing its low digits is fine";
}

}  // namespace troupe::detail
