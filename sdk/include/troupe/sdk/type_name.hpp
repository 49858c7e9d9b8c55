// troupe/sdk/type_name.hpp
//
// Readable parameter and result type names for signatures and errors:
// int, float, bool, string, list[int], dict[string, float], int?, tuple[...],
// binary, any, and the demangled name of user structs.
#pragma once

#include <cxxabi.h>
#include <cstdlib>
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

#include "troupe/sdk/value.hpp"

namespace troupe::detail {

inline std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(mangled);
}

// A type's name as people read it: demangled, without the
// std::_Nested_exception<> wrapper std::throw_with_nested adds, and without
// the "(anonymous namespace)::" plugins keep their types in.
inline std::string readable_type_name(const char* mangled) {
  std::string name = demangle(mangled);
  constexpr std::string_view kNested = "std::_Nested_exception<";
  if (name.rfind(kNested, 0) == 0 && name.back() == '>') {
    name = name.substr(kNested.size(), name.size() - kNested.size() - 1);
  }
  constexpr std::string_view kAnonymous = "(anonymous namespace)::";
  for (auto pos = name.find(kAnonymous); pos != std::string::npos; pos = name.find(kAnonymous)) {
    name.erase(pos, kAnonymous.size());
  }
  return name;
}

template <typename T>
struct TypeName {
  static std::string get() { return readable_type_name(typeid(T).name()); }
};

template <typename T>
std::string type_name() {
  return TypeName<std::remove_cv_t<std::remove_reference_t<T>>>::get();
}

template <>
struct TypeName<void> {
  static std::string get() { return "none"; }
};
template <>
struct TypeName<bool> {
  static std::string get() { return "bool"; }
};
template <>
struct TypeName<std::string> {
  static std::string get() { return "string"; }
};
template <>
struct TypeName<std::string_view> {
  static std::string get() { return "string"; }
};
template <>
struct TypeName<Value> {
  static std::string get() { return "any"; }
};
template <>
struct TypeName<Binary> {
  static std::string get() { return "binary"; }
};

template <typename T>
requires(std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>) struct TypeName<T> {
  static std::string get() { return std::is_signed_v<T> ? "int" : "uint"; }
};
template <typename T>
requires std::is_floating_point_v<T>
struct TypeName<T> {
  static std::string get() { return "float"; }
};

template <typename T, typename A>
struct TypeName<std::vector<T, A>> {
  static std::string get() { return "list[" + type_name<T>() + "]"; }
};
template <typename T, typename A>
struct TypeName<std::list<T, A>> {
  static std::string get() { return "list[" + type_name<T>() + "]"; }
};
template <typename T, typename C, typename A>
struct TypeName<std::set<T, C, A>> {
  static std::string get() { return "set[" + type_name<T>() + "]"; }
};
template <typename T, typename H, typename E, typename A>
struct TypeName<std::unordered_set<T, H, E, A>> {
  static std::string get() { return "set[" + type_name<T>() + "]"; }
};
template <typename K, typename V, typename C, typename A>
struct TypeName<std::map<K, V, C, A>> {
  static std::string get() { return "dict[" + type_name<K>() + ", " + type_name<V>() + "]"; }
};
template <typename K, typename V, typename H, typename E, typename A>
struct TypeName<std::unordered_map<K, V, H, E, A>> {
  static std::string get() { return "dict[" + type_name<K>() + ", " + type_name<V>() + "]"; }
};
template <typename T>
struct TypeName<std::optional<T>> {
  static std::string get() { return type_name<T>() + "?"; }
};
template <typename A, typename B>
struct TypeName<std::pair<A, B>> {
  static std::string get() { return "tuple[" + type_name<A>() + ", " + type_name<B>() + "]"; }
};
template <typename... Ts>
struct TypeName<std::tuple<Ts...>> {
  static std::string get() {
    std::string out = "tuple[";
    std::string_view sep;
    ((out += sep, out += type_name<Ts>(), sep = ", "), ...);
    return out + "]";
  }
};

}  // namespace troupe::detail
