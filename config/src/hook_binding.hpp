// Whether a pool's initializer or finalizer call, or a job's task, fits what
// the plugins registered: the name exists as a hook (or task) of that kind, and the arguments
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

// A job's task: `call.task` names a task of `table`, and it takes an item
// (its first positional argument, whose type is not known here) followed by
// call.args and call.kwargs.
std::vector<HookProblem> check_job_call(const Call& call, const std::vector<Signature>& table);

// Whether `value` can be converted to the parameter type `type` (as
// troupe/sdk/type_name.hpp writes types); true for types it cannot judge
// (user structs), so only sure mismatches are reported.
bool fits_type(const std::string& type, const Value& value);

}  // namespace troupe::config::detail
