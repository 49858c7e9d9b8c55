// troupe/config/plugin_pin.hpp
//
// SHA-256 pins for plugin files: a configuration may name the exact bytes
// it trusts, and a file that differs is refused before it is loaded.
//
// Guarantees: nothing here loads or runs the plugin; every failure is a
// troupe::PluginError naming the file.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace troupe::config {

// The file's SHA-256 as 64 lowercase hex digits.
std::string sha256_of_file(const std::filesystem::path& path);

// Throws PluginError when the file's SHA-256 is not `expected` (hex, either
// case), saying both digests.
void check_plugin_pin(const std::filesystem::path& path, std::string_view expected);

}  // namespace troupe::config
