// A pipeline item's key and the bounded-memory set of keys a job has seen.
//
// Position keys (index, line number) are integers kept as ranges, about a
// bit a key when they come in order; other keys (paths, `key: FIELD`
// strings) cost 13 to 15 bytes each: a 64-bit hash and the position that
// first had it (docs/pipelines.md, "Existing outputs"). A hash collision
// between two different string keys reads as a duplicate; at 64 bits that
// is about one chance in 10^5 over 20 million keys, and the message names
// both positions so a user can see it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "troupe/sdk/value.hpp"

namespace troupe::detail::pipeline {

// Written in records as a JSON integer or string.
using JobKey = std::variant<std::int64_t, std::string>;

Value key_to_json(const JobKey& key);
// nullopt when `json` is neither an integer nor a string.
std::optional<JobKey> key_from_json(const Value& json);
// `42` or `"a/b.txt"` (JSON), for messages.
std::string describe(const JobKey& key);

class KeySet {
 public:
  KeySet();
  ~KeySet();
  KeySet(KeySet&&) noexcept;
  KeySet& operator=(KeySet&&) noexcept;

  // Adds `key` first seen at `position` (0-based order in its input).
  // Returns the position that had it before, or nullopt when it is new.
  std::optional<std::uint64_t> insert(const JobKey& key, std::uint64_t position);
  bool contains(const JobKey& key) const;
  std::uint64_t size() const noexcept;
  // What the set holds now, for the memory tests.
  std::size_t memory_bytes() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace troupe::detail::pipeline
