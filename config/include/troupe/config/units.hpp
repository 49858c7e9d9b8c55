// troupe/config/units.hpp
//
// The units a config file writes: durations (250ms, 30s, 5m, 1h, 1.5s) and
// sizes (512MiB, 2GB, 4096). Errors are troupe::ConfigValueError with a
// message that says what was expected; the YAML layer adds file:line:col.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "troupe/sdk/errors.hpp"

namespace troupe::config {

class ConfigValueError : public Error {
 public:
  using Error::Error;
};

// "250ms", "30s", "5m", "1h", "1.5s", "0"; a bare number is seconds.
std::chrono::nanoseconds parse_duration(std::string_view text);

// "512MiB", "2GiB", "64KiB", "1GB", "1000kB", "4096" (bytes).
std::uint64_t parse_size(std::string_view text);

}  // namespace troupe::config
