// Loads plugin libraries into the process-wide cache, checking the plain C
// header (ABI version, build key) before any C++ object crosses.
#define BOOST_DLL_USE_STD_FS
#include <boost/dll/import.hpp>
#include <boost/dll/shared_library.hpp>

#include <dlfcn.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <vector>

#include "plugin/plugin_file.hpp"
#include "troupe/registry.hpp"
#include "troupe/sdk/abi.hpp"
#include "troupe/sdk/config.hpp"
#include "troupe/sdk/names.hpp"

namespace troupe {
namespace {

namespace fs = std::filesystem;

struct LoadedLibrary {
  boost::dll::shared_library library;
  std::unique_ptr<Plugin> plugin;
};

// Process-wide, intentionally never destroyed: plugin code must stay mapped
// until the very end, after every static destructor that may hold plugin
// objects (as LLVM's permanent libraries and GStreamer's resident modules).
struct PluginCache {
  std::mutex mutex;
  // By device and inode: a hard link or another path to a loaded file is that plugin.
  std::map<detail::FileId, LoadedLibrary> by_file;
  // Libraries whose code ran (entry point, registration) but which were
  // then refused: kept mapped, since registration may have left callbacks
  // or threads behind.
  std::vector<boost::dll::shared_library> refused_after_running;
};

PluginCache& cache() {
  static auto* instance = new PluginCache();
  return *instance;
}

std::string quoted(const fs::path& path) {
  return "'" + path.string() + "'";
}

// The first ';'-separated field where two build keys differ.
std::string first_difference(const std::string& got, const std::string& expected) {
  auto split = [](const std::string& key) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= key.size()) {
      auto end = key.find(';', start);
      if (end == std::string::npos) {
        end = key.size();
      }
      parts.push_back(key.substr(start, end - start));
      start = end + 1;
    }
    return parts;
  };
  auto a = split(got);
  auto b = split(expected);
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    std::string x = i < a.size() ? a[i] : "(nothing)";
    std::string y = i < b.size() ? b[i] : "(nothing)";
    if (x != y) {
      return "'" + x + "' where the engine has '" + y + "'";
    }
  }
  return "none";
}

// ASCII only, whatever the host's locale says about other bytes.
bool is_c_identifier(const std::string& name) {
  const auto letter = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  if (name.empty() || !letter(name.front())) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [&](char c) { return letter(c) || (c >= '0' && c <= '9'); });
}

// The plugin's entry point: an exception from it is the plugin's fault, named as such.
template <typename Entry>
const troupe_plugin_header* call_entry(const fs::path& path, const Entry& entry) {
  try {
    return entry();
  } catch (const std::exception& e) {
    throw PluginError("plugin file " + quoted(path) + ": its entry point '" + kPluginEntrySymbol +
                      "' threw: " + e.what() + ". Define the entry point with TROUPE_PLUGIN(name, \"version\").");
  } catch (...) {
    throw PluginError("plugin file " + quoted(path) + ": its entry point '" + kPluginEntrySymbol +
                      "' threw a non-standard exception. Define the entry point with TROUPE_PLUGIN(name, "
                      "\"version\").");
  }
}

std::unique_ptr<Plugin> read_plugin(const fs::path& path, boost::dll::shared_library& library, bool& code_ran) {
  if (!library.has(kPluginEntrySymbol)) {
    throw PluginError("plugin file " + quoted(path) + " is a shared library but not a troupe plugin: it exports no '" +
                      kPluginEntrySymbol +
                      "'. Build it with troupe_add_plugin() and define TROUPE_PLUGIN(name, \"version\") "
                      "in one of its sources.");
  }
  auto entry = boost::dll::import_alias<troupe_plugin_entry_fn>(library, kPluginEntrySymbol);
  code_ran = true;
  const troupe_plugin_header* header = call_entry(path, entry);
  if (header == nullptr) {
    throw PluginError("plugin file " + quoted(path) + " returned no header from '" + kPluginEntrySymbol +
                      "'; it is not a valid troupe plugin. Rebuild it with troupe_add_plugin().");
  }
  const std::string raw_name = header->plugin_name != nullptr ? header->plugin_name : "?";
  // For messages until the name is known to be an identifier (then both are the same).
  const std::string name = detail::escaped_name(raw_name);
  if (header->abi_version != TROUPE_SDK_ABI_VERSION) {
    const bool older = header->abi_version < TROUPE_SDK_ABI_VERSION;
    throw PluginError("Wrong SDK ABI version on plugin '" + name + "' in " + quoted(path) + ". Got version " +
                      std::to_string(header->abi_version) + ", supported version is " +
                      std::to_string(TROUPE_SDK_ABI_VERSION) + " (the plugin was built against " +
                      (older ? "an older" : "a newer") + " troupe SDK). Rebuild the plugin against troupe " +
                      TROUPE_VERSION_STRING + " (find_package(troupe) + troupe_add_plugin())" +
                      (older ? "." : ", or run it with the newer engine it was built for."));
  }
  if (header->struct_size < sizeof(troupe_plugin_header) || header->describe == nullptr) {
    throw PluginError("plugin '" + name + "' in " + quoted(path) +
                      " has a truncated entry header; it is not a valid troupe plugin. Rebuild it with "
                      "troupe_add_plugin().");
  }
  const std::string build_key = header->build_key != nullptr ? header->build_key : "";
  if (build_key != TROUPE_BUILD_KEY) {
    throw PluginError("plugin '" + name + "' in " + quoted(path) + " was built for '" + build_key +
                      "' but this troupe engine is '" + TROUPE_BUILD_KEY +
                      "' (first difference: " + first_difference(build_key, TROUPE_BUILD_KEY) +
                      "). C++ objects cannot cross between them; rebuild the plugin with the engine's compiler "
                      "and standard library.");
  }
  if (!is_c_identifier(raw_name)) {
    throw PluginError("plugin in " + quoted(path) + " is named '" + name +
                      "', which is not a C identifier ([A-Za-z_][A-Za-z0-9_]*); its tasks could not be named "
                      "'plugin.task'. Rename it in TROUPE_PLUGIN(name, ...).");
  }
  // From here on, C++ crosses the boundary.
  PluginDescriptor descriptor;
  descriptor.name = name;
  descriptor.version = header->plugin_version != nullptr ? header->plugin_version : "";
  try {
    header->describe(&descriptor);
  } catch (const std::exception& e) {
    throw PluginError("plugin '" + name + "' in " + quoted(path) + " failed to register: " + e.what() +
                      ". Fix its TROUPE_PLUGIN body.");
  } catch (...) {
    throw PluginError("plugin '" + name + "' in " + quoted(path) +
                      " failed to register: a non-standard exception was thrown. Fix its TROUPE_PLUGIN body.");
  }
  return std::make_unique<Plugin>(path, header->sdk_version != nullptr ? header->sdk_version : "", build_key,
                                  header->abi_version, std::move(descriptor));
}

}  // namespace

const char* engine_build_key() noexcept {
  return TROUPE_BUILD_KEY;
}

Plugin::Plugin(std::filesystem::path path, std::string sdk_version, std::string build_key, unsigned abi_version,
               PluginDescriptor descriptor)
    : path_(std::move(path)),
      sdk_version_(std::move(sdk_version)),
      build_key_(std::move(build_key)),
      abi_version_(abi_version),
      descriptor_(std::move(descriptor)) {}

namespace {
template <typename Info>
const Info* find_by_name(const std::vector<Info>& infos, std::string_view name) noexcept {
  for (const auto& info : infos) {
    if (info.name == name) {
      return &info;
    }
  }
  return nullptr;
}
}  // namespace

const TaskInfo* Plugin::find_task(std::string_view name) const noexcept {
  return find_by_name(descriptor_.tasks, name);
}
const HookInfo* Plugin::find_initializer(std::string_view name) const noexcept {
  return find_by_name(descriptor_.initializers, name);
}
const HookInfo* Plugin::find_finalizer(std::string_view name) const noexcept {
  return find_by_name(descriptor_.finalizers, name);
}

const Plugin& load_plugin(const std::filesystem::path& path) {
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  if (ec) {
    throw PluginError("plugin file " + quoted(path) + " cannot be accessed: " + ec.message() +
                      "; check the permissions of the file and its directories.");
  }
  if (!exists) {
    throw PluginError("plugin file " + quoted(path) + " does not exist" +
                      (path.is_relative() ? " (relative to the current directory " + quoted(fs::current_path(ec)) + ")"
                                          : std::string()) +
                      "; check the path, or build the plugin first.");
  }
  if (fs::is_directory(path, ec)) {
    throw PluginError("plugin path " + quoted(path) + " is a directory; give the plugin's .so file.");
  }
  const fs::path canonical = fs::canonical(path, ec);
  if (ec) {
    throw PluginError("plugin file " + quoted(path) + " cannot be resolved: " + ec.message());
  }

  detail::PluginFile file(canonical, path);
  PluginCache& plugins = cache();
  std::lock_guard lock(plugins.mutex);
  if (auto it = plugins.by_file.find(file.id()); it != plugins.by_file.end()) {
    return *it->second.plugin;
  }
  file.check_elf();
  boost::dll::shared_library library;
  boost::dll::fs::error_code load_error;
  ::dlerror();  // clear: Boost 1.74 reports a failed dlopen as bad_file_descriptor, dlerror() has the reason
  library.load(canonical, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, load_error);
  if (load_error || !library.is_loaded()) {
    const char* reason = ::dlerror();
    throw PluginError("plugin file " + quoted(path) +
                      " could not be loaded: " + (reason != nullptr ? std::string(reason) : load_error.message()) +
                      ". Check that the libraries it needs are installed and it was linked completely (ldd -r " +
                      path.string() + ").");
  }
  bool code_ran = false;
  std::unique_ptr<Plugin> plugin;
  try {
    plugin = read_plugin(canonical, library, code_ran);
  } catch (...) {
    if (code_ran) {
      plugins.refused_after_running.push_back(std::move(library));
    }
    throw;
  }
  auto [it, inserted] = plugins.by_file.emplace(file.id(), LoadedLibrary{std::move(library), std::move(plugin)});
  return *it->second.plugin;
}

}  // namespace troupe
