// troupe/registry.hpp
//
// Loads plugins and resolves `plugin.task` names to their entry points.
//
// Guarantees: a plugin's SDK ABI version and build key are checked before
// any C++ object of it is touched; every failure is a troupe::PluginError
// naming the file and what to do. Loaded libraries stay resident for the
// life of the process, so nothing a plugin made can outlive its code, and
// loading the same file twice (from any Registry) returns the same Plugin.
// Thread safety: every member may be called from any thread.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/sdk/descriptor.hpp"
#include "troupe/sdk/errors.hpp"

namespace troupe {

// A loaded plugin. Owned by the process-wide plugin cache; never unloaded.
class Plugin {
 public:
  Plugin(std::filesystem::path path, std::string sdk_version, std::string build_key, unsigned abi_version,
         PluginDescriptor descriptor);
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  const std::string& name() const noexcept { return descriptor_.name; }
  const std::string& version() const noexcept { return descriptor_.version; }
  const std::string& sdk_version() const noexcept { return sdk_version_; }
  const std::string& build_key() const noexcept { return build_key_; }
  unsigned abi_version() const noexcept { return abi_version_; }
  const PluginDescriptor& descriptor() const noexcept { return descriptor_; }

  // By unqualified name; nullptr when absent.
  const TaskInfo* find_task(std::string_view name) const noexcept;
  const HookInfo* find_initializer(std::string_view name) const noexcept;
  const HookInfo* find_finalizer(std::string_view name) const noexcept;

 private:
  std::filesystem::path path_;
  std::string sdk_version_;
  std::string build_key_;
  unsigned abi_version_;
  PluginDescriptor descriptor_;
};

// Loads `path` (or returns it if this process already loaded that file).
// Throws troupe::PluginError.
const Plugin& load_plugin(const std::filesystem::path& path);

// The engine's own build key, which plugins must match.
const char* engine_build_key() noexcept;

// A set of plugins with unique names, and name lookup across them.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Loads a plugin and adds it. Loading the same file again returns the
  // same Plugin; another file with an already used plugin name throws.
  const Plugin& load(const std::filesystem::path& path);

  // Adds an already loaded plugin (duplicate-name rules as for load()).
  void add(const Plugin& plugin);

  // `plugin.task` lookups; troupe::UnknownTaskError with the closest names.
  const TaskInfo& task(std::string_view qualified_name) const;
  const HookInfo& initializer(std::string_view qualified_name) const;
  const HookInfo& finalizer(std::string_view qualified_name) const;

  const Plugin* find_plugin(std::string_view name) const;
  std::vector<const Plugin*> plugins() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace troupe
