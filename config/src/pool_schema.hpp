// One pool's map in a config file -> its options (troupe::PoolOptions).
#pragma once

#include <optional>
#include <string>

#include "troupe/engine_spec.hpp"
#include "value_reader.hpp"

namespace troupe::config::detail {

struct PoolPlace {
  std::string name;      // the key under pools:
  std::string path;      // pools.NAME
  const TreeNode& key;   // the name's node (problems about the name point here)
  const TreeNode& node;  // the pool's map
};

// The options, or nullopt with every problem recorded.
std::optional<PoolOptions> read_pool(const PoolPlace& place, ValueReader& reader);
// The pool's `shared:` key (counters and dicts), or nullopt with every
// problem recorded.
std::optional<SharedDeclarations> read_shared(const PoolPlace& place, ValueReader& reader);

}  // namespace troupe::config::detail
