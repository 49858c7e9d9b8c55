// Whether a pool's initializer or finalizer call fits what the plugins
// registered: the name exists as a hook of that kind, and the arguments
// bind to its signature as the worker would bind them (arity, keyword
// names, types where the signature names a type a config value can have).
// Runs no plugin code: it reads signatures only.
#pragma once

#include <string>
#include <vector>

#include "troupe/sdk/call.hpp"
#include "troupe/sdk/descriptor.hpp"

namespace troupe::config::detail {

struct HookProblem {
  std::string where;  // below the hook's key path: "task", "args[2]", "kwargs.name", or "" for the hook
  std::string message;
};

// `kind` is "initializer" or "finalizer"; `table` every signature the
// plugins' worker reported (tasks and hooks).
std::vector<HookProblem> check_hook(const Call& call, const std::string& kind, const std::vector<Signature>& table);

// Whether `value` can be converted to the parameter type `type` (as
// troupe/sdk/type_name.hpp writes types); true for types it cannot judge
// (user structs), so only sure mismatches are reported.
bool fits_type(const std::string& type, const Value& value);

}  // namespace troupe::config::detail
