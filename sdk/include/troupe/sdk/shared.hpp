// troupe/sdk/shared.hpp
//
// troupe::SharedCounter and troupe::SharedDict: state every worker of a pool
// sees, on a ThreadPool and a ProcessPool alike. The host creates them on
// the pool (pool.counter("hits"), pool.dict("cache", {.capacity = ...}));
// a task reaches them through its context (ctx.counter("hits").add(1)).
//
// Guarantees: add() is applied at once (no local batching) and returns the
// value after it. Dict calls on one key are atomic: get() sees the old or
// the new value of a concurrent set() or update(), never a mix, even when a
// process worker dies in the middle of one. update(key, fn) runs fn under
// the entry's lock. snapshot() reads bucket by bucket: each entry is whole,
// the whole is not one instant. Errors (a full dict, an unknown name, a
// value that cannot be decoded) are troupe::SharedStateError naming the
// object. A handle views its pool's state: it must not outlive the pool.
// This header is all a plugin needs: it calls the engine through the plain
// C table of troupe/sdk/abi.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "troupe/sdk/abi.hpp"
#include "troupe/sdk/config.hpp"
#include "troupe/sdk/errors.hpp"
#include "troupe/sdk/value.hpp"

namespace troupe {

// A shared counter or dict that is missing, full, or misused.
class TROUPE_SDK_VISIBLE SharedStateError : public Error {
 public:
  using Error::Error;
};

namespace detail::shared {

// The shared-value encoding: a tag byte, then the payload in host byte order
// (every reader is on the same machine). Unlike MessagePack it keeps every
// nlohmann kind (a non-negative number_integer stays number_integer) and a
// binary's subtype.
enum Tag : char {
  null_tag,
  false_tag,
  true_tag,
  int_tag,
  uint_tag,
  float_tag,
  string_tag,
  binary_tag,
  array_tag,
  object_tag
};
inline constexpr int max_depth = 512;

template <class T>
void put(std::string& out, T raw) {
  out.append(reinterpret_cast<const char*>(&raw), sizeof raw);
}

inline void put_bytes(std::string& out, const void* data, std::size_t size) {
  put(out, static_cast<std::uint64_t>(size));
  out.append(static_cast<const char*>(data), size);
}

inline void encode(const Value& v, std::string& out, int depth = 0) {
  if (depth > max_depth) {
    throw SharedStateError("a shared value nests deeper than " + std::to_string(max_depth) + " levels");
  }
  switch (v.type()) {
    case Value::value_t::null:
    case Value::value_t::discarded:
      out.push_back(null_tag);
      return;
    case Value::value_t::boolean:
      out.push_back(v.get<bool>() ? true_tag : false_tag);
      return;
    case Value::value_t::number_integer:
      out.push_back(int_tag);
      put(out, v.get<std::int64_t>());
      return;
    case Value::value_t::number_unsigned:
      out.push_back(uint_tag);
      put(out, v.get<std::uint64_t>());
      return;
    case Value::value_t::number_float:
      out.push_back(float_tag);
      put(out, v.get<double>());
      return;
    case Value::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      out.push_back(string_tag);
      put_bytes(out, s.data(), s.size());
      return;
    }
    case Value::value_t::binary: {
      const auto& b = v.get_binary();
      out.push_back(binary_tag);
      put(out, static_cast<std::uint8_t>(b.has_subtype() ? 1 : 0));
      put(out, static_cast<std::uint64_t>(b.has_subtype() ? b.subtype() : 0));
      put_bytes(out, b.data(), b.size());
      return;
    }
    case Value::value_t::array:
      out.push_back(array_tag);
      put(out, static_cast<std::uint64_t>(v.size()));
      for (const auto& item : v) {
        encode(item, out, depth + 1);
      }
      return;
    case Value::value_t::object:
      out.push_back(object_tag);
      put(out, static_cast<std::uint64_t>(v.size()));
      for (const auto& [key, item] : v.items()) {
        put_bytes(out, key.data(), key.size());
        encode(item, out, depth + 1);
      }
      return;
  }
}

inline std::string encode(const Value& v) {
  std::string out;
  encode(v, out);
  return out;
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  Value value(int depth = 0) {
    if (depth > max_depth) {
      fail("nests deeper than " + std::to_string(max_depth) + " levels");
    }
    switch (take<char>()) {
      case null_tag:
        return nullptr;
      case false_tag:
        return false;
      case true_tag:
        return true;
      case int_tag:
        return take<std::int64_t>();
      case uint_tag:
        return take<std::uint64_t>();
      case float_tag:
        return take<double>();
      case string_tag:
        return std::string(bytes());
      case binary_tag:
        return binary_value();
      case array_tag:
        return array(depth);
      case object_tag:
        return object(depth);
      default:
        fail("has an unknown tag");
    }
  }
  bool done() const { return at_ == bytes_.size(); }

 private:
  template <class T>
  T take() {
    if (bytes_.size() - at_ < sizeof(T)) {
      fail("ends early");
    }
    T raw;
    std::memcpy(&raw, bytes_.data() + at_, sizeof raw);
    at_ += sizeof raw;
    return raw;
  }
  std::string_view bytes() {
    const auto size = take<std::uint64_t>();
    if (bytes_.size() - at_ < size) {
      fail("ends early");
    }
    const auto view = bytes_.substr(at_, size);
    at_ += size;
    return view;
  }
  Value binary_value() {
    const bool has_subtype = take<std::uint8_t>() != 0;
    const auto subtype = take<std::uint64_t>();
    const auto raw = bytes();
    Binary b(std::vector<std::uint8_t>(raw.begin(), raw.end()));
    if (has_subtype) {
      b.set_subtype(static_cast<Binary::subtype_type>(subtype));
    }
    return Value::binary(std::move(b));
  }
  Value array(int depth) {
    const auto count = take<std::uint64_t>();
    Value a = Value::array();
    for (std::uint64_t i = 0; i < count; ++i) {
      a.push_back(value(depth + 1));
    }
    return a;
  }
  Value object(int depth) {
    const auto count = take<std::uint64_t>();
    Value o = Value::object();
    for (std::uint64_t i = 0; i < count; ++i) {
      std::string key(bytes());
      o[std::move(key)] = value(depth + 1);
    }
    return o;
  }
  [[noreturn]] static void fail(const std::string& what) {
    throw SharedStateError("a shared value's encoding " + what);
  }

  std::string_view bytes_;
  std::size_t at_ = 0;
};

inline Value decode(std::string_view bytes) {
  Reader reader(bytes);
  Value v = reader.value();
  if (!reader.done()) {
    throw SharedStateError("a shared value's encoding has bytes after its end");
  }
  return v;
}

// A troupe_bytes_sink appending to a std::string.
inline troupe_bytes_sink sink_to(std::string& out) {
  return {&out, [](void* user, const char* data, std::size_t size) {
            static_cast<std::string*>(user)->append(data, size);
          }};
}

inline bool offers_shared(const troupe_task_services* s) {
  return s != nullptr && s->struct_size >= offsetof(troupe_task_services, dict_snapshot) + sizeof(s->dict_snapshot) &&
         s->find_counter != nullptr;
}

}  // namespace detail::shared

class SharedCounter {
 public:
  SharedCounter(const troupe_task_services& services, void* handle, std::string name)
      : services_(&services), handle_(handle), name_(std::move(name)) {}

  // Adds `delta` at once; the value after.
  std::int64_t add(std::int64_t delta = 1) const { return services_->counter_add(handle_, delta); }
  std::int64_t load() const { return services_->counter_load(handle_); }
  const std::string& name() const noexcept { return name_; }

 private:
  const troupe_task_services* services_;
  void* handle_;
  std::string name_;
};

class SharedDict {
 public:
  SharedDict(const troupe_task_services& services, void* handle, std::string name)
      : services_(&services), handle_(handle), name_(std::move(name)) {}

  // The key's value, or nullopt.
  std::optional<Value> get(std::string_view key) const {
    std::string bytes;
    std::string error;
    auto value_sink = detail::shared::sink_to(bytes);
    auto error_sink = detail::shared::sink_to(error);
    const int rc = services_->dict_get(handle_, key.data(), key.size(), &value_sink, &error_sink);
    check(rc, error);
    if (rc == 1) {
      return std::nullopt;
    }
    return detail::shared::decode(bytes);
  }

  // Throws SharedStateError naming the dict and its capacity when it is full.
  void set(std::string_view key, const Value& value) const {
    const std::string bytes = detail::shared::encode(value);
    std::string error;
    auto error_sink = detail::shared::sink_to(error);
    check(services_->dict_set(handle_, key.data(), key.size(), bytes.data(), bytes.size(), &error_sink), error);
  }

  // True when the key was there.
  bool erase(std::string_view key) const {
    std::string error;
    auto error_sink = detail::shared::sink_to(error);
    const int rc = services_->dict_erase(handle_, key.data(), key.size(), &error_sink);
    check(rc, error);
    return rc == 0;
  }

  // Under the entry's lock: fn(std::optional<Value> current) returns the new
  // value, or nullopt to erase. What fn throws propagates; nothing changes.
  template <class F>
  void update(std::string_view key, F&& fn) const {
    struct State {
      F& fn;
      std::string out;
      std::exception_ptr error;
    } state{fn, {}, nullptr};
    auto call = [](void* user, const char* value, std::size_t size, int present, const char** out,
                   std::size_t* out_size) -> int {
      auto& s = *static_cast<State*>(user);
      try {
        std::optional<Value> current;
        if (present != 0) {
          current = detail::shared::decode(std::string_view(value, size));
        }
        std::optional<Value> next = s.fn(std::move(current));
        if (!next) {
          return 1;
        }
        s.out = detail::shared::encode(*next);
        *out = s.out.data();
        *out_size = s.out.size();
        return 0;
      } catch (...) {
        s.error = std::current_exception();
        return 2;
      }
    };
    std::string error;
    auto error_sink = detail::shared::sink_to(error);
    const int rc = services_->dict_update(handle_, key.data(), key.size(), call, &state, &error_sink);
    if (state.error) {
      std::rethrow_exception(state.error);
    }
    check(rc, error);
  }

  // Every entry, each read under its bucket's lock.
  std::map<std::string, Value> snapshot() const {
    struct State {
      std::map<std::string, Value> entries;
      std::exception_ptr error;
    } state;
    auto each = [](void* user, const char* key, std::size_t key_size, const char* value, std::size_t size) {
      auto& s = *static_cast<State*>(user);
      if (s.error) {
        return;
      }
      try {
        s.entries.emplace(std::string(key, key_size), detail::shared::decode(std::string_view(value, size)));
      } catch (...) {
        s.error = std::current_exception();
      }
    };
    std::string error;
    auto error_sink = detail::shared::sink_to(error);
    check(services_->dict_snapshot(handle_, each, &state, &error_sink), error);
    if (state.error) {
      std::rethrow_exception(state.error);
    }
    return std::move(state.entries);
  }

  const std::string& name() const noexcept { return name_; }

 private:
  static void check(int rc, const std::string& error) {
    if (rc < 0) {
      throw SharedStateError(error);
    }
  }

  const troupe_task_services* services_;
  void* handle_;
  std::string name_;
};

namespace detail::shared {

// What TaskContext::counter/dict do.
inline SharedCounter find_counter(const troupe_task_services* s, std::string_view name) {
  if (!offers_shared(s)) {
    throw SharedStateError("no shared counter '" + std::string(name) + "': this engine offers no shared state");
  }
  void* handle = s->find_counter(s->shared, name.data(), name.size());
  if (handle == nullptr) {
    throw SharedStateError("no shared counter '" + std::string(name) +
                           "' on this pool; create it on the host first (pool.counter(\"" + std::string(name) +
                           "\") or the pool's `shared:` key)");
  }
  return SharedCounter(*s, handle, std::string(name));
}

inline SharedDict find_dict(const troupe_task_services* s, std::string_view name) {
  if (!offers_shared(s)) {
    throw SharedStateError("no shared dict '" + std::string(name) + "': this engine offers no shared state");
  }
  void* handle = s->find_dict(s->shared, name.data(), name.size());
  if (handle == nullptr) {
    throw SharedStateError("no shared dict '" + std::string(name) +
                           "' on this pool; create it on the host first (pool.dict(\"" + std::string(name) +
                           "\", ...) or the pool's `shared:` key)");
  }
  return SharedDict(*s, handle, std::string(name));
}

}  // namespace detail::shared

}  // namespace troupe
