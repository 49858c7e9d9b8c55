// One pool's map in a config file -> its options (troupe::PoolOptions):
// kind thread, process, or mpi (whose `local:` map is itself read as a
// thread or process pool).
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
  bool local = false;    // an mpi pool's `local:` map, not a pool of its own
};

// The options, or nullopt with every problem recorded.
std::optional<PoolOptions> read_pool(const PoolPlace& place, ValueReader& reader);
// The pool's `shared:` key (counters and dicts), or nullopt with every
// problem recorded. Refused on a pool of kind mpi: shared state lives in one
// machine's memory.
std::optional<SharedDeclarations> read_shared(const PoolPlace& place, ValueReader& reader);

}  // namespace troupe::config::detail
