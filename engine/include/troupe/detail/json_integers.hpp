// troupe/detail/json_integers.hpp
//
// Integer literals that no 64-bit integer holds. A JSON or YAML reader
// turns such a literal into a float and quietly loses its low digits; every
// place that reads user input (CLI arguments, jsonl lines, YAML scalars)
// refuses it instead, with one message.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace troupe::detail {

// Whether `literal` ([-+]digits, no '.' or exponent) is an integer from
// -2^63 to 2^64-1. Throws nothing; any other text is false.
bool integer_fits(std::string_view literal) noexcept;

struct WideInteger {
  std::size_t offset = 0;  // of its first byte in the text
  std::string literal;
};

// The first integer literal of `json` (text that parsed as JSON) outside
// -2^63..2^64-1, if any. Strings are skipped; a number with '.' or an
// exponent is a float and never reported.
std::optional<WideInteger> find_wide_integer(std::string_view json);

// "the integer L is outside -2^63..2^64-1, which no integer type holds; pass
// it as a string ("L"), or as a float written with a decimal point or an
// exponent (L.0) if losing its low digits is fine".
std::string wide_integer_message(std::string_view literal);

}  // namespace troupe::detail
