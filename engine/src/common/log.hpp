// The library's side of troupe/log.hpp: what engine code calls to log.
// Never throws, so it is safe in destructors, noexcept paths and right
// before std::terminate.
#pragma once

#include <string_view>

#include "troupe/log.hpp"

namespace troupe::detail {

// Whether a message at `level` would go anywhere (skip building it if not).
bool log_enabled(LogLevel level) noexcept;
// Logs `message` at `level`; a critical message is flushed at once.
void log(LogLevel level, std::string_view message) noexcept;

}  // namespace troupe::detail
