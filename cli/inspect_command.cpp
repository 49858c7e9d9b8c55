#include <iostream>
#include <string>
#include <type_traits>
#include <vector>

#include "commands.hpp"
#include "troupe/registry.hpp"

namespace troupe::cli {
namespace {

Value describe_params(const Signature& sig) {
  Value params = Value::array();
  for (const auto& param : sig.params) {
    Value p = {{"name", param.name}, {"type", param.type}};
    if (param.default_value) {
      p["default"] = *param.default_value;
    }
    params.push_back(std::move(p));
  }
  return params;
}

template <typename Info>
Value describe_all(const std::vector<Info>& infos) {
  Value out = Value::array();
  for (const auto& info : infos) {
    Value entry = {{"name", info.signature.qualified_name},
                   {"signature", info.signature.to_string()},
                   {"doc", info.doc},
                   {"params", describe_params(info.signature)}};
    if constexpr (std::is_same_v<Info, TaskInfo>) {
      entry["result"] = info.signature.result_type;
    }
    if (!info.group.empty()) {
      entry["group"] = info.group;
    }
    out.push_back(std::move(entry));
  }
  return out;
}

template <typename Info>
void print_section(const char* title, const std::vector<Info>& infos) {
  std::cout << title << " (" << infos.size() << "):\n";
  if (infos.empty()) {
    std::cout << "  (none)\n";
  }
  for (const auto& info : infos) {
    std::cout << "  " << info.signature.to_string() << '\n';
    if (!info.group.empty()) {
      std::cout << (std::is_same_v<Info, TaskInfo> ? "      method of " : "      worker class ") << info.group << '\n';
    }
    if (!info.doc.empty()) {
      std::cout << "      " << info.doc << '\n';
    }
  }
}

// The names of the tasks that are methods of worker class `group`.
std::vector<std::string> methods_of(const PluginDescriptor& d, const std::string& group) {
  std::vector<std::string> names;
  for (const auto& task : d.tasks) {
    if (task.group == group) {
      names.push_back(task.signature.qualified_name);
    }
  }
  return names;
}

// A worker class is its initializer (the constructor) and the methods in its group.
Value describe_classes(const PluginDescriptor& d) {
  Value out = Value::array();
  for (const auto& init : d.initializers) {
    if (init.group.empty()) {
      continue;
    }
    out.push_back({{"name", init.signature.qualified_name},
                   {"class", init.group},
                   {"constructor", init.signature.to_string()},
                   {"doc", init.doc},
                   {"params", describe_params(init.signature)},
                   {"methods", methods_of(d, init.group)}});
  }
  return out;
}

void print_classes(const PluginDescriptor& d) {
  std::size_t count = 0;
  for (const auto& init : d.initializers) {
    count += init.group.empty() ? 0 : 1;
  }
  std::cout << "worker classes (" << count << "):\n";
  if (count == 0) {
    std::cout << "  (none)\n";
  }
  for (const auto& init : d.initializers) {
    if (init.group.empty()) {
      continue;
    }
    std::cout << "  " << init.signature.to_string() << '\n';
    const auto methods = methods_of(d, init.group);
    std::cout << "      methods:";
    for (const auto& method : methods) {
      std::cout << ' ' << method;
    }
    std::cout << (methods.empty() ? " (none)\n" : "\n");
    if (!init.doc.empty()) {
      std::cout << "      " << init.doc << '\n';
    }
  }
}

}  // namespace

int run_inspect(const InspectOptions& options) {
  try {
    const Plugin& plugin = load_plugin(options.plugin);
    const PluginDescriptor& d = plugin.descriptor();
    if (options.json) {
      Value out = {{"name", plugin.name()},
                   {"version", plugin.version()},
                   {"path", plugin.path().string()},
                   {"sdk_version", plugin.sdk_version()},
                   {"abi_version", plugin.abi_version()},
                   {"build_key", plugin.build_key()},
                   {"tasks", describe_all(d.tasks)},
                   {"initializers", describe_all(d.initializers)},
                   {"finalizers", describe_all(d.finalizers)},
                   {"classes", describe_classes(d)}};
      std::cout << out.dump(2, ' ', false, Value::error_handler_t::replace) << '\n';
      return kOk;
    }
    std::cout << "plugin " << plugin.name() << ' ' << plugin.version() << '\n'
              << "  file:       " << plugin.path().string() << '\n'
              << "  sdk:        " << plugin.sdk_version() << " (abi " << plugin.abi_version() << ")\n"
              << "  build key:  " << plugin.build_key() << '\n';
    print_section("tasks", d.tasks);
    print_section("initializers", d.initializers);
    print_section("finalizers", d.finalizers);
    print_classes(d);
    return kOk;
  } catch (const Error& e) {
    print_error(e.what());
    return kUsageError;
  }
}

}  // namespace troupe::cli
