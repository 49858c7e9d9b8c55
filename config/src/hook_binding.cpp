// Bind checks of hook calls and job tasks against signatures, mirroring the worker's
// binding (troupe/sdk/adapter.hpp check_call_shape and its strict
// conversions) but collecting every problem instead of the first.
#include "hook_binding.hpp"

#include <cmath>
#include <limits>
#include <string_view>

#include "troupe/detail/spelling.hpp"

namespace troupe::config::detail {
namespace {

std::string quoted(const std::string& s) {
  return "'" + s + "'";
}

std::string short_value(const Value& value) {
  std::string text = value.dump(-1, ' ', false, Value::error_handler_t::replace);
  return text.size() > 40 ? text.substr(0, 37) + "..." : text;
}

// Splits "A, B" at the commas outside brackets.
std::vector<std::string> split_top_level(std::string_view list) {
  std::vector<std::string> parts;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i] == '[') {
      ++depth;
    } else if (list[i] == ']') {
      --depth;
    } else if (list[i] == ',' && depth == 0) {
      parts.emplace_back(list.substr(start, i - start));
      start = i + 2;  // ", "
    }
  }
  parts.emplace_back(list.substr(std::min(start, list.size())));
  return parts;
}

// "list[int]" -> "int" when `type` is `prefix[...]`, else empty.
std::string_view inner(std::string_view type, std::string_view prefix) {
  if (type.size() > prefix.size() + 2 && type.substr(0, prefix.size()) == prefix && type[prefix.size()] == '[' &&
      type.back() == ']') {
    return type.substr(prefix.size() + 1, type.size() - prefix.size() - 2);
  }
  return {};
}

bool fits_integer(const Value& v, bool is_unsigned) {
  if (v.is_number_unsigned()) {
    return true;
  }
  if (v.is_number_integer()) {
    return !is_unsigned || v.get<std::int64_t>() >= 0;
  }
  if (v.is_number_float()) {  // 3.0 reads as 3, as the worker's conversion allows
    const double raw = v.get<double>();
    return std::trunc(raw) == raw && std::isfinite(raw) && (!is_unsigned || raw >= 0);
  }
  return false;
}

bool fits_elements(std::string_view element, const Value& v) {
  for (const auto& item : v) {
    if (!fits_type(std::string(element), item)) {
      return false;
    }
  }
  return true;
}

// nullopt: the call names no hook of this kind (the problem is recorded).
const Signature* find_hook(const Call& call, const std::string& kind, const std::vector<Signature>& table,
                           std::vector<HookProblem>& problems) {
  std::vector<std::string> names;
  std::string other_kind;
  for (const auto& signature : table) {
    if (signature.qualified_name == call.task && signature.kind == kind) {
      return &signature;
    }
    if (signature.kind == kind) {
      names.push_back(signature.qualified_name);
    } else if (signature.qualified_name == call.task) {
      other_kind = signature.kind;
    }
  }
  std::string message = "no " + kind + " " + quoted(call.task) + " in the plugins";
  if (!other_kind.empty()) {
    message += " (" + quoted(call.task) + (other_kind == "initializer" ? " is an " : " is a ") + other_kind + ")";
  }
  const std::string suggestion = troupe::detail::did_you_mean(call.task, names);
  message += suggestion.empty() && names.empty() ? "; the plugins register no " + kind + "s" : suggestion;
  problems.push_back({"task", message});
  return nullptr;
}

void check_type(const Signature& sig, std::size_t index, const Value& value, const std::string& where,
                std::vector<HookProblem>& problems) {
  const ParamInfo& param = sig.params[index];
  if (!fits_type(param.type, value)) {
    problems.push_back({where, "parameter " + quoted(param.name) + " of " + sig.to_string() + " expects " + param.type +
                                   ", found " + short_value(value)});
  }
}

// `leading` positional parameters are filled before the call's args (a
// job's item); their values are not known here, so only their count binds.
void check_binding(const Call& call, const Signature& sig, std::size_t leading, std::vector<HookProblem>& problems) {
  const std::size_t arity = sig.params.size();
  if (leading > arity) {
    problems.push_back({"task", sig.to_string() + " takes no arguments, so it cannot take the item"});
    return;
  }
  for (std::size_t i = 0; i < call.args.size(); ++i) {
    const std::string where = "args[" + std::to_string(i) + "]";
    if (leading + i >= arity) {
      const std::string given = leading == 0 ? std::to_string(call.args.size()) + " were given"
                                             : "the item and " + std::to_string(call.args.size()) + " argument" +
                                                   (call.args.size() == 1 ? "" : "s") + " make " +
                                                   std::to_string(leading + call.args.size());
      problems.push_back({where, sig.to_string() + " takes " + std::to_string(arity) + " argument" +
                                     (arity == 1 ? "" : "s") + " but " + given});
      break;
    }
    check_type(sig, leading + i, call.args[i], where, problems);
  }
  for (const auto& [name, value] : call.kwargs) {
    const std::string where = "kwargs." + name;
    std::size_t found = arity;
    for (std::size_t i = 0; sig.named && i < arity; ++i) {
      found = sig.params[i].name == name ? i : found;
    }
    if (found == arity) {
      std::vector<std::string> names;
      for (const auto& param : sig.params) {
        names.push_back(param.name);
      }
      problems.push_back({where, "unexpected keyword argument " + quoted(name) + " for " + sig.to_string() +
                                     (sig.named ? troupe::detail::did_you_mean(name, names)
                                                : "; its parameters have no names, pass them by position (args)")});
    } else if (found < leading) {
      problems.push_back({where, "argument " + quoted(name) + " of " + sig.to_string() +
                                     " is the item (each item is passed first); it cannot be given by keyword"});
    } else if (found < leading + call.args.size()) {
      problems.push_back(
          {where, "argument " + quoted(name) + " of " + sig.to_string() + " is given both by position and by keyword"});
    } else {
      check_type(sig, found, value, where, problems);
    }
  }
  for (std::size_t i = leading + call.args.size(); i < arity; ++i) {
    const ParamInfo& param = sig.params[i];
    if (!(sig.named && call.kwargs.contains(param.name)) && !param.default_value) {
      problems.push_back({"", "missing argument " + quoted(param.name) + " (position " + std::to_string(i + 1) + ", " +
                                  param.type + ") of " + sig.to_string()});
    }
  }
}

}  // namespace

bool fits_type(const std::string& type, const Value& v) {
  const std::string_view t = type;
  if (t == "any") {
    return true;
  }
  if (t == "bool") {
    return v.is_boolean();
  }
  if (t == "int" || t == "uint") {
    return fits_integer(v, t == "uint");
  }
  if (t == "float") {
    return v.is_number();
  }
  if (t == "string") {
    return v.is_string();
  }
  if (t == "binary") {
    return v.is_binary();
  }
  if (!t.empty() && t.back() == '?') {
    return v.is_null() || fits_type(type.substr(0, type.size() - 1), v);
  }
  if (auto element = inner(t, "list"); !element.empty()) {
    return v.is_array() && fits_elements(element, v);
  }
  if (auto element = inner(t, "set"); !element.empty()) {
    return v.is_array() && fits_elements(element, v);
  }
  if (auto pair = inner(t, "dict"); !pair.empty()) {
    const auto parts = split_top_level(pair);
    if (parts.size() != 2 || parts[0] != "string") {
      return true;  // keys of other types: not judged
    }
    return v.is_object() && fits_elements(parts[1], v);
  }
  if (auto list = inner(t, "tuple"); !list.empty()) {
    const auto parts = split_top_level(list);
    if (!v.is_array() || v.size() != parts.size()) {
      return false;
    }
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (!fits_type(parts[i], v[i])) {
        return false;
      }
    }
    return true;
  }
  return true;  // a user struct: its conversion is the plugin's
}

std::vector<HookProblem> check_hook(const Call& call, const std::string& kind, const std::vector<Signature>& table) {
  std::vector<HookProblem> problems;
  if (const Signature* sig = find_hook(call, kind, table, problems)) {
    check_binding(call, *sig, 0, problems);
  }
  return problems;
}

std::vector<HookProblem> check_job_call(const Call& call, const std::vector<Signature>& table) {
  std::vector<HookProblem> problems;
  if (const Signature* sig = find_hook(call, "task", table, problems)) {
    check_binding(call, *sig, 1, problems);
  }
  return problems;
}

}  // namespace troupe::config::detail
