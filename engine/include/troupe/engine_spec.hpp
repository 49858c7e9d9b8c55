// troupe/engine_spec.hpp
//
// What a troupe::Engine is built from: the plugins to load and the named
// pools, as plain data. A config file (troupe/config.hpp) turns into one;
// a host application may also write one in C++.
//
//   troupe::EngineSpec spec{.plugins = {{.path = "plugins/libtroupe_text.so"}},
//                           .pools = {{"cpu", troupe::ProcessPoolOptions{.max_workers = 4}},
//                                     {"io", troupe::ThreadPoolOptions{.max_workers = 16}}}};
//
// Guarantees: none by itself; the Engine validates it (pool names unique
// and non-empty, every pool's options through troupe::validate()).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "troupe/pool_options.hpp"
#include "troupe/sdk/call.hpp"
#include "troupe/shared.hpp"

namespace troupe {

struct PluginSpec {
  std::filesystem::path path;
  // Lowercase hex SHA-256 of the file; when set, the file is hashed and
  // refused on a mismatch before it is loaded.
  std::optional<std::string> sha256 = std::nullopt;
};

// A pool's kind is the alternative its options hold. The Engine fills in
// what belongs to it: `name` (from PoolSpec::name), a thread pool's
// `registry` (the Engine's). An MpiPool is made only where troupe::mpi is
// linked and its Environment started (troupe/mpi.hpp).
using PoolOptions = std::variant<ThreadPoolOptions, ProcessPoolOptions, MpiPoolOptions>;

// The counters and dicts a pool is created with (a config file's `shared:`
// key): counter names, dicts by name.
struct SharedDeclarations {
  std::vector<std::string> counters;
  std::map<std::string, DictOptions> dicts;
  bool empty() const noexcept { return counters.empty() && dicts.empty(); }
};

struct PoolSpec {
  std::string name;
  PoolOptions options;
  SharedDeclarations shared = {};  // created with the pool (troupe/shared.hpp)
};

// Where a value was written, for messages about it: a file position, or
// another origin (line 0) such as the override that set it.
struct SourcePlace {
  std::string origin;
  int line = 0;  // 1-based; 0 when the origin is not a file position
  int column = 0;
};

// Where a job's items come from (a config file's `inputs:`). Each kind
// streams in bounded memory. Default keys: the index (0-based) for items
// and range, the line number (1-based) for lines and jsonl, the path for
// glob; `key_field` takes a field of JSON object items instead (jsonl,
// items, from).
struct JobInputSpec {
  enum class Kind { items, range, lines, jsonl, glob, from };
  Kind kind = Kind::items;
  std::vector<Value> items = {};                        // items
  std::int64_t start = 0, stop = 0, step = 1;           // range: half-open, like Python's
  std::filesystem::path path = {};                      // lines, jsonl: absolute once loaded
  std::string pattern = {};                             // glob: absolute once loaded (`*`, `?`, `[...]`, `**`)
  std::string from = {};                                // from: the upstream job's name
  std::optional<std::string> key_field = std::nullopt;  // `key: FIELD`
};

// One job of a pipeline (a config file's `jobs:` entry): each item is the
// task's first positional argument, followed by `args`, with `kwargs`.
struct JobSpec {
  std::string name;
  std::string pool;
  std::string task;
  Args args = {};
  Kwargs kwargs = {};
  JobInputSpec inputs = {};
  std::size_t chunk_size = 0;                                      // items per pool task; 0: automatic
  std::size_t retries = 0;                                         // extra attempts of a failed item
  std::optional<std::chrono::nanoseconds> timeout = std::nullopt;  // per item
  std::filesystem::path output = {};                               // JSON Lines; absolute once loaded
  std::vector<std::string> after = {};                             // jobs that must end first (`from` adds its job)
};

struct EngineSpec {
  std::vector<PluginSpec> plugins;
  std::vector<PoolSpec> pools;     // in the order they were written
  std::vector<JobSpec> jobs = {};  // in the order they were written; the Engine ignores them
  // Where the entries were written, by key path (`plugins[0].path`,
  // `pools.cpu.initializer.args[1]`), when the spec was read from a file;
  // later checks place their problems with it. Not part of the spec's
  // meaning: the Engine ignores it.
  std::map<std::string, SourcePlace> sources = {};
};

// "thread", "process" or "mpi".
inline const char* kind_name(const PoolOptions& options) noexcept {
  constexpr const char* kNames[] = {"thread", "process", "mpi"};
  return kNames[options.index()];
}

}  // namespace troupe
