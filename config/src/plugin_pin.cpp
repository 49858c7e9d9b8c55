// SHA-256 through OpenSSL's EVP interface: a well-kept implementation,
// rather than one more hand-written hash.
#include "troupe/config/plugin_pin.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <memory>

#include "troupe/sdk/errors.hpp"

namespace troupe::config {

std::string sha256_of_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw PluginError("cannot read plugin file " + path.string() + " to check its sha256 pin");
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    throw PluginError("cannot compute SHA-256 (OpenSSL EVP failed) for " + path.string());
  }
  std::array<char, 1 << 16> buffer{};
  while (in) {
    in.read(buffer.data(), buffer.size());
    if (in.gcount() > 0) {
      EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(in.gcount()));
    }
  }
  if (in.bad()) {
    throw PluginError("error reading plugin file " + path.string() + " to check its sha256 pin");
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest.data(), &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

void check_plugin_pin(const std::filesystem::path& path, std::string_view expected) {
  std::string want(expected);
  std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return std::tolower(c); });
  const std::string actual = sha256_of_file(path);
  if (actual != want) {
    throw PluginError("plugin file " + path.string() + " does not match its sha256 pin: expected " + want +
                      ", the file has " + actual + "; if the new file is trusted, update the pin");
  }
}

}  // namespace troupe::config
