// troupe/sdk/value.hpp
//
// troupe::Value: the dynamic value plugin tasks take and return across C++,
// YAML and process boundaries. It is nlohmann::json (JSON data plus binary),
// so JSON Lines, MessagePack and ADL to_json/from_json for user structs
// (NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE) come with it. This header adds what
// nlohmann-json 3.11.2 lacks: std::optional (empty <-> null).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace troupe {

using Value = nlohmann::json;
using Binary = nlohmann::json::binary_t;

// A binary Value from raw bytes.
inline Value binary(std::vector<std::uint8_t> bytes) {
  return Value::binary(std::move(bytes));
}

}  // namespace troupe

NLOHMANN_JSON_NAMESPACE_BEGIN
template <typename T>
struct adl_serializer<std::optional<T>> {
  static void to_json(json& j, const std::optional<T>& value) {
    if (value) {
      j = *value;
    } else {
      j = nullptr;
    }
  }
  static void from_json(const json& j, std::optional<T>& value) {
    if (j.is_null()) {
      value.reset();
    } else {
      value = j.template get<T>();
    }
  }
};
NLOHMANN_JSON_NAMESPACE_END
