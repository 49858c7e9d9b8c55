// Text that JSON can hold: bytes that are not valid UTF-8 become U+FFFD.
#pragma once

#include <string>
#include <string_view>

namespace troupe::detail::pipeline {

// `text` with each maximal invalid UTF-8 subsequence (overlong forms,
// surrogates, code points past U+10FFFF, truncated sequences) replaced by
// U+FFFD; valid text comes back unchanged.
std::string valid_utf8(std::string_view text);

}  // namespace troupe::detail::pipeline
