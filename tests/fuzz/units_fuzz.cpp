// Config units (durations, sizes) against arbitrary text: a value parses or
// is refused with ConfigValueError, never anything else. Parsed durations
// are never negative, and a parsed size prints and parses back to itself.
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_target.hpp"
#include "troupe/config/units.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto ns = troupe::config::parse_duration(text);
    if (ns.count() < 0) {
      troupe_fuzz_fail("duration '" + std::string(text) + "' parsed as negative");
    }
  } catch (const troupe::config::ConfigValueError&) {
  }
  try {
    const auto bytes = troupe::config::parse_size(text);
    if (bytes < (1ull << 53) && troupe::config::parse_size(std::to_string(bytes)) != bytes) {
      troupe_fuzz_fail("size '" + std::string(text) + "' does not print and parse back");
    }
  } catch (const troupe::config::ConfigValueError&) {
  }
  return 0;
}

std::vector<std::string> troupe_fuzz_seeds() {
  return {"250ms",  "30s",  "5m",    "1h",  "1.5s",   "0",    "10us", "3ns",   "2 min",  " 7 ",
          "512MiB", "2GiB", "64KiB", "1GB", "1000kB", "4096", "1.5K", "16TiB", "3.25MB", "0B"};
}
