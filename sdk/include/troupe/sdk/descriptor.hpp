// troupe/sdk/descriptor.hpp
//
// What a plugin registers: its tasks, initializers and finalizers, each with
// a documented signature and a type-erased entry point that binds dynamic
// arguments to the typed C++ parameters.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "troupe/sdk/call.hpp"
#include "troupe/sdk/task_context.hpp"
#include "troupe/sdk/value.hpp"
#include "troupe/sdk/worker.hpp"

namespace troupe {

struct ParamInfo {
  std::string name;
  std::string type;
  std::optional<Value> default_value;
};

// Signature of a registered callable, shared by tasks and worker hooks.
struct Signature {
  std::string qualified_name;  // plugin.task
  std::string kind;            // "task", "initializer" or "finalizer"
  std::vector<ParamInfo> params;
  std::string result_type;
  bool named = false;  // parameters were named with troupe::arg(), so keywords work

  // `name(a: int, b: string = "x") -> int`
  std::string to_string() const {
    std::string out = qualified_name + "(";
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (i != 0) {
        out += ", ";
      }
      out += params[i].name + ": " + params[i].type;
      if (params[i].default_value) {
        out += " = " + params[i].default_value->dump(-1, ' ', false, Value::error_handler_t::replace);
      }
    }
    out += ")";
    if (kind == "task") {
      out += " -> " + result_type;
    }
    return out;
  }
};

using TaskFn = std::function<Value(TaskContext&, const Args&, const Kwargs&)>;
using HookFn = std::function<void(Worker&, const Args&, const Kwargs&)>;

struct TaskInfo {
  std::string name;  // unqualified
  std::string doc;
  // The worker class a method task belongs to (`.method()` of a
  // worker_class<T>); empty for plain tasks. Tasks keep their plain names.
  std::string group;
  Signature signature;
  TaskFn invoke;
};

struct HookInfo {
  std::string name;  // unqualified
  std::string doc;
  // The worker class this hook builds (initializer: the constructor) or
  // destroys (finalizer) for worker_class<T>; empty for plain hooks.
  std::string group;
  Signature signature;
  HookFn invoke;
};

struct PluginDescriptor {
  std::string name;
  std::string version;
  std::vector<TaskInfo> tasks;
  std::vector<HookInfo> initializers;
  std::vector<HookInfo> finalizers;
};

}  // namespace troupe
