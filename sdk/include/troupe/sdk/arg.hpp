// troupe/sdk/arg.hpp
//
// Parameter names (and defaults) at registration, pybind11-style:
//   plugin.task("resize", resize, "doc", troupe::arg("path"), troupe::arg("width") = 640);
// Named parameters can be passed by keyword; a default makes one optional.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "troupe/sdk/value.hpp"

namespace troupe {

struct ArgSpec {
  std::string name;
  std::optional<Value> default_value;
};

struct arg {  // NOLINT(readability-identifier-naming): pybind11's spelling
  explicit arg(std::string arg_name) : name(std::move(arg_name)) {}
  template <typename T>
  ArgSpec operator=(T&& default_value) const {  // NOLINT(misc-unconventional-assign-operator)
    return ArgSpec{name, Value(std::forward<T>(default_value))};
  }
  operator ArgSpec() const { return ArgSpec{name, std::nullopt}; }  // NOLINT(google-explicit-constructor)
  std::string name;
};

}  // namespace troupe
