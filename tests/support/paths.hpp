// Where the build put the things tests load and run.
#pragma once

#include <filesystem>
#include <string>

namespace troupe::test {

// A bundled plugin: plugin_path("text") -> .../plugins/libtroupe_text.so
inline std::filesystem::path plugin_path(const std::string& name) {
  return std::filesystem::path(TROUPE_PLUGIN_DIR) / ("libtroupe_" + name + ".so");
}

// A test fixture plugin: fixture_path("wrong_abi") -> .../test-plugins/libfixture_wrong_abi.so
inline std::filesystem::path fixture_path(const std::string& name) {
  return std::filesystem::path(TROUPE_TEST_PLUGIN_DIR) / ("libfixture_" + name + ".so");
}

inline std::filesystem::path binary_path(const std::string& name) {
  return std::filesystem::path(TROUPE_BIN_DIR) / name;
}

}  // namespace troupe::test
