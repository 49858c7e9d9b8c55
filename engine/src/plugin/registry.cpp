#include "troupe/registry.hpp"

#include <map>
#include <mutex>
#include <shared_mutex>

#include "troupe/detail/spelling.hpp"

namespace troupe {

struct Registry::State {
  mutable std::shared_mutex mutex;
  std::map<std::string, const Plugin*, std::less<>> by_name;
};

Registry::Registry() : state_(std::make_unique<State>()) {}
Registry::~Registry() = default;

const Plugin& Registry::load(const std::filesystem::path& path) {
  const Plugin& plugin = load_plugin(path);
  add(plugin);
  return plugin;
}

void Registry::add(const Plugin& plugin) {
  std::unique_lock lock(state_->mutex);
  auto [it, inserted] = state_->by_name.emplace(plugin.name(), &plugin);
  if (!inserted && it->second != &plugin) {
    throw PluginError("plugin name '" + plugin.name() + "' of '" + plugin.path().string() + "' is already used by '" +
                      it->second->path().string() +
                      "' in this registry; load only one of them or rename one (TROUPE_PLUGIN(name, ...)).");
  }
}

namespace {

template <typename Info, typename Find, typename List>
const Info& lookup(const std::map<std::string, const Plugin*, std::less<>>& by_name, std::string_view qualified,
                   const char* kind, Find find, List list) {
  const auto dot = qualified.find('.');
  if (dot != std::string_view::npos) {
    if (auto it = by_name.find(qualified.substr(0, dot)); it != by_name.end()) {
      if (const Info* info = find(*it->second, qualified.substr(dot + 1))) {
        return *info;
      }
    }
  }
  std::vector<std::string> candidates;
  for (const auto& [name, plugin] : by_name) {
    for (const auto& info : list(*plugin)) {
      candidates.push_back(name + "." + info.name);
    }
  }
  std::string message = "no " + std::string(kind) + " named '" + std::string(qualified) + "'";
  if (dot == std::string_view::npos) {
    message += " (names are qualified: plugin." + std::string(kind) + ")";
  } else if (by_name.find(qualified.substr(0, dot)) == by_name.end()) {
    message += " (no plugin '" + std::string(qualified.substr(0, dot)) + "' is loaded)";
  }
  message += detail::did_you_mean(qualified, candidates);
  if (by_name.empty()) {
    message += "; no plugins are loaded";
  }
  throw UnknownTaskError(message);
}

}  // namespace

const TaskInfo& Registry::task(std::string_view qualified_name) const {
  std::shared_lock lock(state_->mutex);
  return lookup<TaskInfo>(
      state_->by_name, qualified_name, "task", [](const Plugin& p, std::string_view n) { return p.find_task(n); },
      [](const Plugin& p) -> const auto& { return p.descriptor().tasks; });
}

const HookInfo& Registry::initializer(std::string_view qualified_name) const {
  std::shared_lock lock(state_->mutex);
  return lookup<HookInfo>(
      state_->by_name, qualified_name, "initializer",
      [](const Plugin& p, std::string_view n) { return p.find_initializer(n); },
      [](const Plugin& p) -> const auto& { return p.descriptor().initializers; });
}

const HookInfo& Registry::finalizer(std::string_view qualified_name) const {
  std::shared_lock lock(state_->mutex);
  return lookup<HookInfo>(
      state_->by_name, qualified_name, "finalizer",
      [](const Plugin& p, std::string_view n) { return p.find_finalizer(n); },
      [](const Plugin& p) -> const auto& { return p.descriptor().finalizers; });
}

const Plugin* Registry::find_plugin(std::string_view name) const {
  std::shared_lock lock(state_->mutex);
  auto it = state_->by_name.find(name);
  return it == state_->by_name.end() ? nullptr : it->second;
}

std::vector<const Plugin*> Registry::plugins() const {
  std::shared_lock lock(state_->mutex);
  std::vector<const Plugin*> out;
  for (const auto& [name, plugin] : state_->by_name) {
    out.push_back(plugin);
  }
  return out;
}

}  // namespace troupe
