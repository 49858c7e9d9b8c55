// troupe/sdk/adapter.hpp
//
// Turns a typed C++ callable into a TaskFn / HookFn that binds positional and
// keyword Values to its parameters, converting each strictly and throwing
// troupe::ArgumentError naming the callable and the parameter on a mismatch.
// Implementation detail of PluginBuilder; plugin authors never use it.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "troupe/sdk/arg.hpp"
#include "troupe/sdk/call.hpp"
#include "troupe/sdk/descriptor.hpp"
#include "troupe/sdk/errors.hpp"
#include "troupe/sdk/task_context.hpp"
#include "troupe/sdk/type_name.hpp"
#include "troupe/sdk/worker.hpp"

namespace troupe::detail {

// ---- callable traits -------------------------------------------------------

template <typename F>
struct CallableTraits : CallableTraits<decltype(&std::remove_cvref_t<F>::operator())> {};

template <typename R, typename... A>
struct CallableTraits<R(A...)> {
  using Result = R;
  using ArgsTuple = std::tuple<A...>;
};
template <typename R, typename... A>
struct CallableTraits<R (*)(A...)> : CallableTraits<R(A...)> {};
template <typename R, typename... A>
struct CallableTraits<R (*)(A...) noexcept> : CallableTraits<R(A...)> {};
template <typename R, typename... A>
struct CallableTraits<R(A...) noexcept> : CallableTraits<R(A...)> {};
// Task callables run concurrently on many workers and are called const:
// per-worker state belongs in troupe::Worker, not in a mutable lambda.
template <typename C, typename R, typename... A>
struct CallableTraits<R (C::*)(A...)> : CallableTraits<R(A...)> {
  static_assert(sizeof(C) == 0,
                "troupe: a task's call operator must be const (no mutable lambdas): tasks run concurrently; "
                "keep per-worker state in troupe::Worker");
};
template <typename C, typename R, typename... A>
struct CallableTraits<R (C::*)(A...) const> : CallableTraits<R(A...)> {};
template <typename C, typename R, typename... A>
struct CallableTraits<R (C::*)(A...) noexcept> : CallableTraits<R (C::*)(A...)> {};
template <typename C, typename R, typename... A>
struct CallableTraits<R (C::*)(A...) const noexcept> : CallableTraits<R(A...)> {};

template <typename Tuple>
struct DropFirst;
template <>
struct DropFirst<std::tuple<>> {
  using type = std::tuple<>;
};
template <typename First, typename... Rest>
struct DropFirst<std::tuple<First, Rest...>> {
  using type = std::tuple<Rest...>;
};

// ---- error text ------------------------------------------------------------

inline std::string short_dump(const Value& value) {
  std::string text = value.is_binary() ? "<" + std::to_string(value.get_binary().size()) + " bytes>"
                                       : value.dump(-1, ' ', false, Value::error_handler_t::replace);
  if (text.size() > 60) {
    text = text.substr(0, 57) + "...";
  }
  return text;
}

inline std::string json_kind(const Value& value) {
  switch (value.type()) {
    case Value::value_t::null:
      return "null";
    case Value::value_t::boolean:
      return "bool";
    case Value::value_t::number_integer:
    case Value::value_t::number_unsigned:
      return "int";
    case Value::value_t::number_float:
      return "float";
    case Value::value_t::string:
      return "string";
    case Value::value_t::array:
      return "list";
    case Value::value_t::object:
      return "object";
    case Value::value_t::binary:
      return "binary";
    case Value::value_t::discarded:
      return "discarded";
  }
  return "value";
}

// nlohmann's messages start with "[json.exception.type_error.302] ".
inline std::string strip_json_prefix(std::string message) {
  if (!message.empty() && message.front() == '[') {
    if (auto end = message.find("] "); end != std::string::npos) {
      message.erase(0, end + 2);
    }
  }
  return message;
}

inline std::string join_param_names(const Signature& sig) {
  std::string out;
  for (std::size_t i = 0; i < sig.params.size(); ++i) {
    out += (i ? ", " : "") + sig.params[i].name;
  }
  return out;
}

[[noreturn]] inline void throw_param_mismatch(const Signature& sig, std::size_t index, const Value& given,
                                              const std::string& detail = {}) {
  const ParamInfo& param = sig.params[index];
  std::string message = sig.kind + " '" + sig.qualified_name + "': parameter '" + param.name + "' (position " +
                        std::to_string(index + 1) + ") expects " + param.type + ", got " + json_kind(given) + " " +
                        short_dump(given);
  if (!detail.empty()) {
    message += " (" + detail + ")";
  }
  throw ArgumentError(message);
}

// ---- strict conversion -----------------------------------------------------

// Thrown by StrictConverter, caught by convert_param, which turns it into an
// ArgumentError naming the callable and the parameter.
struct ConversionFailure {
  std::string path;      // "" at the top level, else "[1]", "[\"key\"]", ...
  std::string expected;  // type name
  std::string given;     // "string \"x\""
  std::string detail;    // "out of range", nlohmann's message, ...
};

[[noreturn]] inline void conversion_failure(const std::string& path, const std::string& expected, const Value& given,
                                            std::string detail = {}) {
  throw ConversionFailure{path, expected, json_kind(given) + " " + short_dump(given), std::move(detail)};
}

// Converts a Value to T strictly, all the way down: containers, optionals,
// pairs and tuples check each element; user structs use their from_json.
template <typename T, typename Enable = void>
struct StrictConverter {
  static T from(const Value& v, const std::string& path) {
    try {
      return v.get<T>();
    } catch (const nlohmann::json::exception& e) {
      conversion_failure(path, type_name<T>(), v, strip_json_prefix(e.what()));
    }
  }
};

template <>
struct StrictConverter<Value> {
  static Value from(const Value& v, const std::string&) { return v; }
};

template <>
struct StrictConverter<bool> {
  static bool from(const Value& v, const std::string& path) {
    if (!v.is_boolean()) {
      conversion_failure(path, "bool", v);
    }
    return v.get<bool>();
  }
};

template <typename T>
struct StrictConverter<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static T from(const Value& v, const std::string& path) {
    if (v.is_number_unsigned()) {
      const auto raw = v.get<std::uint64_t>();
      if (raw > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
        conversion_failure(path, type_name<T>(), v, "out of range");
      }
      return static_cast<T>(raw);
    }
    if (v.is_number_integer()) {
      const auto raw = v.get<std::int64_t>();
      if constexpr (std::is_unsigned_v<T>) {
        if (raw < 0) {
          conversion_failure(path, type_name<T>(), v, "must not be negative");
        }
        if (static_cast<std::uint64_t>(raw) > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
          conversion_failure(path, type_name<T>(), v, "out of range");
        }
      } else if (raw < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
                 raw > static_cast<std::int64_t>(std::numeric_limits<T>::max())) {
        conversion_failure(path, type_name<T>(), v, "out of range");
      }
      return static_cast<T>(raw);
    }
    if (v.is_number_float()) {
      // JSON producers often write 3.0 for 3; accept exact integers in range only.
      // The bounds are powers of two, exact in double, so the cast is defined.
      const double raw = v.get<double>();
      const double upper = std::ldexp(1.0, std::numeric_limits<T>::digits);
      const double lower = std::is_signed_v<T> ? -upper : 0.0;
      if (std::trunc(raw) != raw || raw < lower || raw >= upper) {
        conversion_failure(path, type_name<T>(), v, "not an integer in range");
      }
      return static_cast<T>(raw);
    }
    conversion_failure(path, type_name<T>(), v);
  }
};

template <typename T>
struct StrictConverter<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static T from(const Value& v, const std::string& path) {
    if (!v.is_number()) {
      conversion_failure(path, "float", v);
    }
    // Converting a finite double past T's range is undefined behaviour, not infinity.
    const double raw = v.get<double>();
    if (std::isfinite(raw) && std::fabs(raw) > static_cast<double>(std::numeric_limits<T>::max())) {
      conversion_failure(path, type_name<T>(), v, "out of range");
    }
    return static_cast<T>(raw);
  }
};

template <>
struct StrictConverter<std::string> {
  static std::string from(const Value& v, const std::string& path) {
    if (!v.is_string()) {
      conversion_failure(path, "string", v);
    }
    return v.get<std::string>();
  }
};

template <typename Container, typename Element>
Container convert_sequence(const Value& v, const std::string& path) {
  if (!v.is_array()) {
    conversion_failure(path, type_name<Container>(), v);
  }
  Container out;
  std::size_t i = 0;
  for (const auto& element : v) {
    out.insert(out.end(), StrictConverter<Element>::from(element, path + "[" + std::to_string(i++) + "]"));
  }
  return out;
}

template <typename T, typename A>
struct StrictConverter<std::vector<T, A>> {
  static std::vector<T, A> from(const Value& v, const std::string& path) {
    return convert_sequence<std::vector<T, A>, T>(v, path);
  }
};
template <typename T, typename A>
struct StrictConverter<std::list<T, A>> {
  static std::list<T, A> from(const Value& v, const std::string& path) {
    return convert_sequence<std::list<T, A>, T>(v, path);
  }
};
template <typename T, typename C, typename A>
struct StrictConverter<std::set<T, C, A>> {
  static std::set<T, C, A> from(const Value& v, const std::string& path) {
    return convert_sequence<std::set<T, C, A>, T>(v, path);
  }
};
template <typename T, typename H, typename E, typename A>
struct StrictConverter<std::unordered_set<T, H, E, A>> {
  static std::unordered_set<T, H, E, A> from(const Value& v, const std::string& path) {
    return convert_sequence<std::unordered_set<T, H, E, A>, T>(v, path);
  }
};

template <typename Map, typename Mapped>
Map convert_mapping(const Value& v, const std::string& path) {
  if (!v.is_object()) {
    conversion_failure(path, type_name<Map>(), v);
  }
  Map out;
  for (const auto& [key, element] : v.items()) {
    out.emplace(key, StrictConverter<Mapped>::from(element, path + "[\"" + key + "\"]"));
  }
  return out;
}

template <typename V, typename C, typename A>
struct StrictConverter<std::map<std::string, V, C, A>> {
  static std::map<std::string, V, C, A> from(const Value& v, const std::string& path) {
    return convert_mapping<std::map<std::string, V, C, A>, V>(v, path);
  }
};
template <typename V, typename H, typename E, typename A>
struct StrictConverter<std::unordered_map<std::string, V, H, E, A>> {
  static std::unordered_map<std::string, V, H, E, A> from(const Value& v, const std::string& path) {
    return convert_mapping<std::unordered_map<std::string, V, H, E, A>, V>(v, path);
  }
};

template <typename T>
struct StrictConverter<std::optional<T>> {
  static std::optional<T> from(const Value& v, const std::string& path) {
    if (v.is_null()) {
      return std::nullopt;
    }
    return StrictConverter<T>::from(v, path);
  }
};

template <typename... Ts>
struct StrictConverter<std::tuple<Ts...>> {
  static std::tuple<Ts...> from(const Value& v, const std::string& path) {
    if (!v.is_array() || v.size() != sizeof...(Ts)) {
      conversion_failure(path, type_name<std::tuple<Ts...>>(), v,
                         "needs a list of exactly " + std::to_string(sizeof...(Ts)) + " elements");
    }
    return from(v, path, std::index_sequence_for<Ts...>{});
  }
  template <std::size_t... I>
  static std::tuple<Ts...> from(const Value& v, const std::string& path, std::index_sequence<I...>) {
    return std::tuple<Ts...>{StrictConverter<Ts>::from(v[I], path + "[" + std::to_string(I) + "]")...};
  }
};

template <typename A, typename B>
struct StrictConverter<std::pair<A, B>> {
  static std::pair<A, B> from(const Value& v, const std::string& path) {
    auto [a, b] = StrictConverter<std::tuple<A, B>>::from(v, path);
    return std::pair<A, B>(std::move(a), std::move(b));
  }
};

[[noreturn]] inline void throw_conversion_failure(const Signature& sig, std::size_t index, const Value& given,
                                                  const ConversionFailure& failure) {
  if (failure.path.empty()) {
    throw_param_mismatch(sig, index, given, failure.detail);
  }
  std::string detail = "at " + failure.path + ": expected " + failure.expected + ", got " + failure.given;
  if (!failure.detail.empty()) {
    detail += ", " + failure.detail;
  }
  throw_param_mismatch(sig, index, given, detail);
}

// The parameter's value: a view for `const Value&` and `std::string_view`
// (valid during the call), a strictly converted T otherwise.
template <typename T>
decltype(auto) convert_param(const Signature& sig, std::size_t index, const Value& v) {
  if constexpr (std::is_same_v<T, Value>) {
    return (v);
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    if (!v.is_string()) {
      throw_param_mismatch(sig, index, v);
    }
    return std::string_view(v.get_ref<const std::string&>());
  } else {
    try {
      return StrictConverter<T>::from(v, std::string());
    } catch (const ConversionFailure& failure) {
      throw_conversion_failure(sig, index, v, failure);
    }
  }
}

// ---- binding ---------------------------------------------------------------

// Checks arity and keywords before any conversion, so errors name the
// first real problem.
inline void check_call_shape(const Signature& sig, const Args& args, const Kwargs& kwargs) {
  const std::size_t arity = sig.params.size();
  if (args.size() > arity) {
    throw ArgumentError(sig.kind + " '" + sig.qualified_name + "' takes " + std::to_string(arity) + " argument" +
                        (arity == 1 ? "" : "s") + " (" + join_param_names(sig) + ") but " +
                        std::to_string(args.size()) + " were given");
  }
  for (const auto& [name, value] : kwargs) {
    std::size_t found = arity;
    if (sig.named) {
      for (std::size_t i = 0; i < arity; ++i) {
        if (sig.params[i].name == name) {
          found = i;
          break;
        }
      }
    }
    if (found == arity) {
      std::string message = sig.kind + " '" + sig.qualified_name + "': unexpected keyword argument '" + name + "'";
      message += sig.named ? "; its parameters are " + join_param_names(sig)
                           : "; its parameters have no names (register them with troupe::arg(\"name\"))";
      throw ArgumentError(message);
    }
    if (found < args.size()) {
      throw ArgumentError(sig.kind + " '" + sig.qualified_name + "': argument '" + name +
                          "' given both by position and by keyword");
    }
  }
  for (std::size_t i = args.size(); i < arity; ++i) {
    const ParamInfo& param = sig.params[i];
    if (!(sig.named && kwargs.find(param.name) != kwargs.end()) && !param.default_value) {
      throw ArgumentError(sig.kind + " '" + sig.qualified_name + "': missing argument '" + param.name + "' (position " +
                          std::to_string(i + 1) + ", " + param.type + ")");
    }
  }
}

inline const Value& select_argument(const Signature& sig, std::size_t index, const Args& args, const Kwargs& kwargs) {
  if (index < args.size()) {
    return args[index];
  }
  const ParamInfo& param = sig.params[index];
  if (sig.named) {
    if (auto it = kwargs.find(param.name); it != kwargs.end()) {
      return it->second;
    }
  }
  return *param.default_value;  // check_call_shape guaranteed one
}

template <typename T>
using Stored = std::conditional_t<std::is_same_v<std::remove_cvref_t<T>, Value>, const Value&, std::remove_cvref_t<T>>;

template <typename T>
constexpr void check_parameter_type() {
  static_assert(!std::is_lvalue_reference_v<T> || std::is_const_v<std::remove_reference_t<T>>,
                "troupe: task parameters must be taken by value or by const reference");
  static_assert(!std::is_pointer_v<std::remove_cvref_t<T>>,
                "troupe: task parameters cannot be raw pointers; take a value or const reference");
}

template <typename ParamTuple>
struct ParamListTraits;
template <typename... P>
struct ParamListTraits<std::tuple<P...>> {
  static constexpr std::size_t size = sizeof...(P);
  static std::vector<ParamInfo> describe(const std::vector<ArgSpec>& specs) {
    (check_parameter_type<P>(), ...);
    std::vector<std::string> types{type_name<P>()...};
    std::vector<ParamInfo> params;
    params.reserve(types.size());
    for (std::size_t i = 0; i < types.size(); ++i) {
      if (specs.empty()) {
        params.push_back(ParamInfo{"arg" + std::to_string(i), types[i], std::nullopt});
      } else {
        params.push_back(ParamInfo{specs[i].name, types[i], specs[i].default_value});
      }
    }
    return params;
  }
  template <std::size_t... I>
  static std::tuple<Stored<P>...> bind(const Signature& sig, const Args& args, const Kwargs& kwargs,
                                       std::index_sequence<I...>) {
    // Braced initialisation evaluates left to right: errors name the first bad parameter.
    return std::tuple<Stored<P>...>{
        convert_param<std::remove_cvref_t<P>>(sig, I, select_argument(sig, I, args, kwargs))...};
  }
  static std::tuple<Stored<P>...> bind(const Signature& sig, const Args& args, const Kwargs& kwargs) {
    return bind(sig, args, kwargs, std::index_sequence_for<P...>{});
  }
  // A default that does not fit its parameter is the plugin's mistake, not
  // every caller's: refuse it at registration.
  static void check_defaults(const Signature& sig) { check_defaults(sig, std::index_sequence_for<P...>{}); }
  template <std::size_t... I>
  static void check_defaults(const Signature& sig, std::index_sequence<I...>) {
    (check_default<I, P>(sig), ...);
  }
  template <std::size_t I, typename Param>
  static void check_default(const Signature& sig) {
    const ParamInfo& param = sig.params[I];
    if (!param.default_value) {
      return;
    }
    try {
      (void)convert_param<std::remove_cvref_t<Param>>(sig, I, *param.default_value);
    } catch (const ArgumentError&) {
      throw PluginError(sig.kind + " '" + sig.qualified_name + "': default value " + short_dump(*param.default_value) +
                        " of parameter '" + param.name + "' does not fit its type " + param.type);
    }
  }
};

// Validates the troupe::arg() list against the parameter count and fills
// the signature. Throws troupe::PluginError on a registration mistake.
inline void apply_specs(Signature& sig, const std::vector<ArgSpec>& specs, std::size_t arity) {
  if (!specs.empty() && specs.size() != arity) {
    throw PluginError(sig.kind + " '" + sig.qualified_name + "': " + std::to_string(specs.size()) +
                      " troupe::arg() names given for " + std::to_string(arity) + " parameters");
  }
  sig.named = !specs.empty();
  bool seen_default = false;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (specs[j].name == specs[i].name) {
        throw PluginError(sig.kind + " '" + sig.qualified_name + "': parameter name '" + specs[i].name +
                          "' used twice");
      }
    }
    if (specs[i].default_value) {
      seen_default = true;
    } else if (seen_default) {
      throw PluginError(sig.kind + " '" + sig.qualified_name + "': parameter '" + specs[i].name +
                        "' without a default follows one with a default");
    }
  }
}

template <typename Context, typename Fn>
struct AdaptedCallable {
  static_assert(
      !std::is_class_v<Fn> || requires { &Fn::operator(); },
      "troupe: generic lambdas cannot be registered; spell out the parameter types");
  using Traits = CallableTraits<Fn>;
  using AllParams = typename Traits::ArgsTuple;
  static constexpr bool kTakesContext = [] {
    if constexpr (std::tuple_size_v<AllParams> == 0) {
      return false;
    } else {
      return std::is_same_v<std::tuple_element_t<0, AllParams>, Context&>;
    }
  }();
  using ValueParams = std::conditional_t<kTakesContext, typename DropFirst<AllParams>::type, AllParams>;
  using Result = typename Traits::Result;
};

// Builds the signature and the type-erased invoker for a task.
template <typename Fn>
TaskFn make_task_invoker(Fn fn, Signature& sig, const std::vector<ArgSpec>& specs) {
  using A = AdaptedCallable<TaskContext, std::decay_t<Fn>>;
  using Params = ParamListTraits<typename A::ValueParams>;
  apply_specs(sig, specs, Params::size);
  sig.params = Params::describe(specs);
  Params::check_defaults(sig);
  sig.result_type = type_name<typename A::Result>();
  auto shared_sig = std::make_shared<const Signature>(sig);
  return [fn = std::move(fn), shared_sig](TaskContext& ctx, const Args& args, const Kwargs& kwargs) -> Value {
    check_call_shape(*shared_sig, args, kwargs);
    auto bound = Params::bind(*shared_sig, args, kwargs);
    auto call = [&](auto&&... values) -> decltype(auto) {
      if constexpr (A::kTakesContext) {
        return std::invoke(fn, ctx, std::forward<decltype(values)>(values)...);
      } else {
        (void)ctx;
        return std::invoke(fn, std::forward<decltype(values)>(values)...);
      }
    };
    if constexpr (std::is_void_v<typename A::Result>) {
      std::apply(call, std::move(bound));
      return Value();
    } else {
      return Value(std::apply(call, std::move(bound)));
    }
  };
}

// Builds the signature and the type-erased invoker for an initializer or finalizer.
template <typename Fn>
HookFn make_hook_invoker(Fn fn, Signature& sig, const std::vector<ArgSpec>& specs) {
  using A = AdaptedCallable<Worker, std::decay_t<Fn>>;
  using Params = ParamListTraits<typename A::ValueParams>;
  apply_specs(sig, specs, Params::size);
  sig.params = Params::describe(specs);
  Params::check_defaults(sig);
  sig.result_type = "none";
  auto shared_sig = std::make_shared<const Signature>(sig);
  return [fn = std::move(fn), shared_sig](Worker& worker, const Args& args, const Kwargs& kwargs) {
    check_call_shape(*shared_sig, args, kwargs);
    auto bound = Params::bind(*shared_sig, args, kwargs);
    std::apply(
        [&](auto&&... values) {
          if constexpr (A::kTakesContext) {
            std::invoke(fn, worker, std::forward<decltype(values)>(values)...);
          } else {
            (void)worker;
            std::invoke(fn, std::forward<decltype(values)>(values)...);
          }
        },
        std::move(bound));
  };
}

}  // namespace troupe::detail
