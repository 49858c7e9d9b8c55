// troupe/sdk/call.hpp
//
// A plugin call as data: task name, positional and keyword arguments.
//
//   troupe::Call{"text.words", {doc}, {{"lang", "en"}}};
//   pool.call("text.words", doc, troupe::kw("lang", "en"));
#pragma once

#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "troupe/sdk/value.hpp"

namespace troupe {

using Args = Value::array_t;     // std::vector<Value>
using Kwargs = Value::object_t;  // std::map<std::string, Value, std::less<>>

struct Call {
  std::string task;
  Args args;
  Kwargs kwargs;
};

// A keyword argument for call-style APIs: kw("lang", "en").
struct KeywordArg {
  std::string name;
  Value value;
};

template <typename T>
KeywordArg kw(std::string name, T&& value) {
  return KeywordArg{std::move(name), Value(std::forward<T>(value))};
}

namespace detail {

template <typename T>
void add_call_argument(Call& call, T&& argument) {
  if constexpr (std::is_same_v<std::remove_cvref_t<T>, KeywordArg>) {
    call.kwargs.insert_or_assign(argument.name, std::forward<T>(argument).value);
  } else {
    call.args.emplace_back(std::forward<T>(argument));
  }
}

// Packs `args...` (values and kw(...) pairs, in any order) into a Call.
template <typename... T>
Call make_call(std::string task, T&&... args) {
  Call call{std::move(task), {}, {}};
  call.args.reserve(sizeof...(T));
  (add_call_argument(call, std::forward<T>(args)), ...);
  return call;
}

}  // namespace detail
}  // namespace troupe
