// SHA-256 (FIPS 180-4), streaming, for the text plugin's file hashing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace troupe_text {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  // Lowercase hex digest; the object is spent afterwards.
  std::string hex_digest();

 private:
  void compress(const std::uint8_t* block);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view data);

}  // namespace troupe_text
