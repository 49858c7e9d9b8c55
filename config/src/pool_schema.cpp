// One pool's keys: a table of every key, the kinds it applies to and how it
// sets the options. Value ranges are not checked here but by the engine's
// troupe::validate(), whose problems are placed back on the keys. An mpi
// pool's `local:` goes through the same table as a pool of its own, so it
// takes every thread or process key with the same errors.
#include "pool_schema.hpp"

#include <algorithm>
#include <map>
#include <string_view>
#include <utility>
#include <variant>

#include "troupe/registry.hpp"

namespace troupe::config::detail {
namespace {

enum Kinds : unsigned { kThread = 1, kProcess = 2, kMpi = 4, kLocal = kThread | kProcess };

using ThreadSetter = void (*)(ThreadPoolOptions&, const TreeNode&, const std::string&, ValueReader&);
using ProcessSetter = void (*)(ProcessPoolOptions&, const TreeNode&, const std::string&, ValueReader&);
using MpiSetter = void (*)(MpiPoolOptions&, const TreeNode&, const std::string&, ValueReader&);

struct PoolKey {
  const char* name;
  unsigned kinds;
  ThreadSetter thread;
  ProcessSetter process;
  MpiSetter mpi;
};

// A key several kinds share: one generic setter, instantiated for the
// options struct of each kind in K.
template <unsigned K, class Set>
constexpr PoolKey for_kinds(const char* name, Set) {
  PoolKey key{name, K, nullptr, nullptr, nullptr};
  if constexpr ((K & kThread) != 0) {
    key.thread = [](ThreadPoolOptions& o, const TreeNode& n, const std::string& p, ValueReader& r) {
      Set{}(o, n, p, r);
    };
  }
  if constexpr ((K & kProcess) != 0) {
    key.process = [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p, ValueReader& r) {
      Set{}(o, n, p, r);
    };
  }
  if constexpr ((K & kMpi) != 0) {
    key.mpi = [](MpiPoolOptions& o, const TreeNode& n, const std::string& p, ValueReader& r) {
      Set{}(o, n, p, r);
    };
  }
  return key;
}

constexpr PoolKey thread_only(const char* name, ThreadSetter set) {
  return {name, kThread, set, nullptr, nullptr};
}

constexpr PoolKey process_only(const char* name, ProcessSetter set) {
  return {name, kProcess, nullptr, set, nullptr};
}

const char* kind_text(unsigned kind) {
  return kind == kThread ? "thread" : kind == kProcess ? "process" : "mpi";
}

// "process", "thread and process", "process and mpi".
std::string kinds_text(unsigned kinds) {
  std::vector<std::string> names;
  for (unsigned kind : {kThread, kProcess, kMpi}) {
    if ((kinds & kind) != 0) {
      names.emplace_back(kind_text(kind));
    }
  }
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
  }
  return out;
}

template <class T>
void assign(T& field, std::optional<T> value) {
  if (value) {
    field = std::move(*value);
  }
}

QueueFullPolicy policy_from(const std::string& text) {
  return text == "fail"          ? QueueFullPolicy::fail
         : text == "caller_runs" ? QueueFullPolicy::caller_runs
                                 : QueueFullPolicy::block;
}

void read_crash_storm(ProcessPoolOptions& o, const TreeNode& n, const std::string& p, ValueReader& r) {
  if (!r.expect_map(n, p, "a map {max: N, within: DURATION}")) {
    return;
  }
  r.refuse_unknown_keys(n, p, {"max", "within"});
  if (const TreeNode* max = n.find("max")) {
    assign(o.crash_storm.max, r.count(*max, join_path(p, "max")));
  }
  if (const TreeNode* within = n.find("within")) {
    assign(o.crash_storm.within, r.duration(*within, join_path(p, "within")));
  }
}

const std::vector<PoolKey>& pool_keys() {
  static const std::vector<PoolKey> keys = {
      for_kinds<kLocal>("workers", [](auto& o, const TreeNode& n, const std::string& p,
                                      ValueReader& r) { assign(o.max_workers, r.count(n, p, true)); }),
      for_kinds<kLocal>("min_workers", [](auto& o, const TreeNode& n, const std::string& p,
                                          ValueReader& r) { assign(o.min_workers, r.count(n, p)); }),
      for_kinds<kLocal>("idle_timeout", [](auto& o, const TreeNode& n, const std::string& p,
                                           ValueReader& r) { assign(o.idle_timeout, r.duration_or_none(n, p)); }),
      for_kinds<kLocal>("max_tasks_per_worker",
                        [](auto& o, const TreeNode& n, const std::string& p, ValueReader& r) {
                          assign(o.max_tasks_per_worker, r.count_or_none(n, p));
                        }),
      for_kinds<kLocal>("initializer",
                        [](auto& o, const TreeNode& n, const std::string& p, ValueReader& r) {
                          if (is_none(n)) {
                            o.initializer = {};
                          } else if (auto call = r.call(n, p)) {
                            o.initializer = std::move(*call);
                          }
                        }),
      for_kinds<kLocal>("finalizer",
                        [](auto& o, const TreeNode& n, const std::string& p, ValueReader& r) {
                          if (is_none(n)) {
                            o.finalizer = {};
                          } else if (auto call = r.call(n, p)) {
                            o.finalizer = std::move(*call);
                          }
                        }),
      for_kinds<kLocal | kMpi>("queue_limit", [](auto& o, const TreeNode& n, const std::string& p,
                                                 ValueReader& r) { assign(o.queue_limit, r.count_or_none(n, p)); }),
      for_kinds<kLocal | kMpi>("queue_full_policy",
                               [](auto& o, const TreeNode& n, const std::string& p, ValueReader& r) {
                                 if (auto text = r.choice(n, p, {"block", "fail", "caller_runs"})) {
                                   o.queue_full_policy = policy_from(*text);
                                 }
                               }),
      thread_only("spin_before_sleep", [](ThreadPoolOptions& o, const TreeNode& n, const std::string& p,
                                          ValueReader& r) { assign(o.spin_before_sleep, r.duration(n, p)); }),
      process_only("recycle_jitter", [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p,
                                        ValueReader& r) { assign(o.recycle_jitter, r.count(n, p)); }),
      process_only("max_memory_per_worker",
                   [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p, ValueReader& r) {
                     assign(o.max_memory_per_worker, r.size_or_none(n, p));
                   }),
      process_only("env", [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p,
                             ValueReader& r) { assign(o.env, r.string_map(n, p)); }),
      process_only("task_timeout", [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p,
                                      ValueReader& r) { assign(o.task_timeout, r.duration_or_none(n, p)); }),
      process_only("on_worker_crash",
                   [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p, ValueReader& r) {
                     if (auto text = r.choice(n, p, {"respawn", "break"})) {
                       o.on_worker_crash = *text == "break" ? OnWorkerCrash::break_pool : OnWorkerCrash::respawn;
                     }
                   }),
      for_kinds<kProcess | kMpi>("startup_timeout",
                                 [](auto& o, const TreeNode& n, const std::string& p, ValueReader& r) {
                                   assign(o.startup_timeout, r.duration(n, p));
                                 }),
      process_only("shutdown_grace", [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p,
                                        ValueReader& r) { assign(o.shutdown_grace, r.duration(n, p)); }),
      process_only("max_frame",
                   [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p, ValueReader& r) {
                     if (auto bytes = r.size(n, p)) {
                       o.max_frame = static_cast<std::size_t>(*bytes);
                     }
                   }),
      process_only("crash_storm", read_crash_storm),
      for_kinds<kMpi>("frames_per_worker", [](auto& o, const TreeNode& n, const std::string& p,
                                              ValueReader& r) { assign(o.frames_per_worker, r.count(n, p)); }),
      process_only("worker_executable", [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p,
                                           ValueReader& r) { assign(o.worker_executable, r.file_path(n, p)); }),
  };
  return keys;
}

std::vector<std::string> key_names() {
  std::vector<std::string> names{"kind", "shared", "local"};
  for (const auto& key : pool_keys()) {
    names.emplace_back(key.name);
  }
  return names;
}

// The map entry (key and value) under `key`, or null.
const std::pair<TreeNode, TreeNode>* entry_of(const TreeNode& map, std::string_view key) {
  const auto it = std::find_if(map.entries.begin(), map.entries.end(),
                               [&](const auto& entry) { return entry.first.scalar == key; });
  return it == map.entries.end() ? nullptr : &*it;
}

bool is_mpi_kind(const TreeNode& kind) {
  return kind.kind == TreeNode::Kind::scalar && kind.scalar == "mpi";
}

// validate()'s option names that differ from the file's keys, at any depth
// (`local.max_workers` -> `local.workers`).
std::string key_of_option(const std::string& option) {
  std::string out;
  for (std::size_t begin = 0;;) {
    const std::size_t dot = option.find('.', begin);
    const std::string part = option.substr(begin, dot - begin);
    out += (begin == 0 ? "" : ".") + (part == "max_workers" ? std::string("workers") : part);
    if (dot == std::string::npos) {
      return out;
    }
    begin = dot + 1;
  }
}

// Where validate()'s problem about `option` belongs: the value the file
// gave it, else the closest map above it that the file wrote.
const TreeNode& node_of_option(const TreeNode& pool, const TreeNode& pool_key, const std::string& option) {
  const TreeNode* node = &pool;
  std::string rest = key_of_option(option);
  while (!rest.empty() && node->kind == TreeNode::Kind::map) {
    const std::size_t dot = rest.find('.');
    const TreeNode* child = node->find(rest.substr(0, dot));
    if (child == nullptr) {
      break;
    }
    node = child;
    rest = dot == std::string::npos ? "" : rest.substr(dot + 1);
  }
  return option == "name" ? pool_key : *node;
}

// The engine gives thread pools its registry; validate as it will.
void stand_in_registry(ThreadPoolOptions& options) {
  static const Registry engine_registry_stand_in;
  options.registry = &engine_registry_stand_in;
}

template <class Options>
void place_validation_problems(Options options, const PoolPlace& place, ValueReader& r) {
  if constexpr (std::is_same_v<Options, ThreadPoolOptions>) {
    stand_in_registry(options);
  } else if constexpr (std::is_same_v<Options, MpiPoolOptions>) {
    if (auto* local = std::get_if<ThreadPoolOptions>(&options.local)) {
      stand_in_registry(*local);
    }
  }
  for (const OptionProblem& problem : validate(options)) {
    const TreeNode& node = node_of_option(place.node, place.key, problem.option);
    r.problems().add(node.where, join_path(place.path, key_of_option(problem.option)),
                     "must be " + problem.allowed + ", found " + problem.value);
  }
}

// "pool 'cpu'", or "the local pool of 'cluster'" for an mpi pool's `local:`.
std::string pool_title(const PoolPlace& place) {
  return (place.local ? "the local pool of '" : "pool '") + place.name + "'";
}

// Sets `options` from the pool's keys other than kind, shared and local,
// refusing keys of other kinds.
template <class Options>
void read_keys(const PoolPlace& place, unsigned kind, Options& options, ValueReader& r) {
  options.name = place.name;
  for (const auto& [key, value] : place.node.entries) {
    const std::string path = join_path(place.path, key.scalar);
    if (key.scalar == "kind" || key.scalar == "shared") {
      continue;  // shared: read_shared
    }
    if (key.scalar == "local") {
      if (kind != kMpi) {  // an mpi pool's is read by read_local
        r.problems().add(key.where, path,
                         "'local' applies to mpi pools only; " + pool_title(place) + " is kind: " + kind_text(kind));
      }
      continue;
    }
    const auto it =
        std::find_if(pool_keys().begin(), pool_keys().end(), [&](const PoolKey& k) { return key.scalar == k.name; });
    if (it == pool_keys().end()) {
      continue;  // reported by refuse_unknown_keys
    }
    if ((it->kinds & kind) == 0 && kind == kMpi) {
      r.problems().add(key.where, path,
                       "'" + key.scalar + "' is an option of the pool each rank runs: write it under " +
                           join_path(place.path, "local") + " (" + pool_title(place) + " is kind: mpi)");
      continue;
    }
    if ((it->kinds & kind) == 0) {
      r.problems().add(key.where, path,
                       "'" + key.scalar + "' applies to " + kinds_text(it->kinds) + " pools only; " +
                           pool_title(place) + " is kind: " + kind_text(kind));
      continue;
    }
    if constexpr (std::is_same_v<Options, ThreadPoolOptions>) {
      it->thread(options, value, path, r);
    } else if constexpr (std::is_same_v<Options, ProcessPoolOptions>) {
      it->process(options, value, path, r);
    } else {
      it->mpi(options, value, path, r);
    }
  }
}

// `shared:` present (and not none) in `map`, where it cannot be: recorded
// at its key.
void refuse_shared(const TreeNode& map, const std::string& path, ValueReader& r) {
  const auto* shared = entry_of(map, "shared");
  if (shared != nullptr && !is_none(shared->second)) {
    r.problems().add(shared->first.where, join_path(path, "shared"),
                     "shared counters and dicts live in one machine's memory: not on a pool of kind mpi");
  }
}

// An mpi pool's `local:`: a thread or process pool read as any other (a
// process pool with workers auto where it is missing). Problems are
// recorded; the caller tells by their count whether the result is whole.
LocalPoolOptions read_local(const PoolPlace& place, ValueReader& r) {
  ProcessPoolOptions defaults;
  defaults.name = place.name;
  const auto* local = entry_of(place.node, "local");
  if (local == nullptr || local->second.kind == TreeNode::Kind::null) {
    return defaults;
  }
  const PoolPlace at{place.name, join_path(place.path, "local"), local->first, local->second, true};
  if (!r.expect_map(at.node, at.path, "a map: the pool each rank runs, with kind: thread or process")) {
    return defaults;
  }
  r.refuse_unknown_keys(at.node, at.path, key_names());
  refuse_shared(at.node, at.path, r);
  const TreeNode* kind = at.node.find("kind");
  if (kind == nullptr) {
    r.problems().add(at.node.where, join_path(at.path, "kind"),
                     "missing key 'kind' (thread or process: the pool each rank runs)");
    return defaults;
  }
  if (is_mpi_kind(*kind)) {
    r.problems().add(kind->where, join_path(at.path, "kind"),
                     "a pool of kind mpi cannot be another mpi pool's local pool");
    return defaults;
  }
  const auto text = r.choice(*kind, join_path(at.path, "kind"), {"thread", "process"});
  if (text == "thread") {
    ThreadPoolOptions options;
    read_keys(at, kThread, options, r);
    return options;
  }
  if (text) {
    read_keys(at, kProcess, defaults, r);
  }
  return defaults;
}

// A counter's or dict's name: 1 to 100 bytes (the engine's limit).
std::optional<std::string> shared_name(const TreeNode& node, const std::string& path, ValueReader& r) {
  auto name = r.string(node, path);
  if (name && (name->empty() || name->size() > 100)) {
    r.problems().add(node.where, path, "a shared name must be 1 to 100 bytes, found '" + *name + "'");
    return std::nullopt;
  }
  return name;
}

void read_shared_counters(const TreeNode& node, const std::string& path, SharedDeclarations& out, ValueReader& r) {
  if (node.kind != TreeNode::Kind::sequence) {
    r.fail(node, path, "a list of counter names");
    return;
  }
  for (std::size_t i = 0; i < node.items.size(); ++i) {
    if (auto name = shared_name(node.items[i], path + "[" + std::to_string(i) + "]", r)) {
      out.counters.push_back(std::move(*name));
    }
  }
}

void read_shared_dicts(const TreeNode& node, const std::string& path, SharedDeclarations& out, ValueReader& r) {
  if (!r.expect_map(node, path, "a map of dict name -> {capacity: SIZE}")) {
    return;
  }
  for (const auto& [key, value] : node.entries) {
    const std::string at = join_path(path, key.scalar);
    if (!shared_name(key, at, r) || !r.expect_map(value, at, "a map {capacity: SIZE}")) {
      continue;
    }
    r.refuse_unknown_keys(value, at, {"capacity"});
    DictOptions options;
    if (const TreeNode* capacity = value.find("capacity")) {
      const auto bytes = r.size(*capacity, join_path(at, "capacity"));
      if (bytes && *bytes == 0) {
        r.problems().add(capacity->where, join_path(at, "capacity"), "must be at least 1 byte, found 0");
      } else if (bytes) {
        options.capacity = static_cast<std::size_t>(*bytes);
      }
    }
    out.dicts.emplace(key.scalar, options);
  }
}

}  // namespace

std::optional<SharedDeclarations> read_shared(const PoolPlace& place, ValueReader& r) {
  SharedDeclarations declared;
  const TreeNode* node = place.node.kind == TreeNode::Kind::map ? place.node.find("shared") : nullptr;
  if (node == nullptr || is_none(*node)) {
    return declared;
  }
  if (const TreeNode* kind = place.node.find("kind"); kind != nullptr && is_mpi_kind(*kind)) {
    refuse_shared(place.node, place.path, r);
    return std::nullopt;
  }
  const std::string path = join_path(place.path, "shared");
  if (!r.expect_map(*node, path, "a map {counters: [NAME...], dicts: {NAME: {capacity: SIZE}}}")) {
    return std::nullopt;
  }
  const std::size_t before = r.problems().size();
  r.refuse_unknown_keys(*node, path, {"counters", "dicts"});
  if (const TreeNode* counters = node->find("counters")) {
    read_shared_counters(*counters, join_path(path, "counters"), declared, r);
  }
  if (const TreeNode* dicts = node->find("dicts")) {
    read_shared_dicts(*dicts, join_path(path, "dicts"), declared, r);
  }
  for (const auto& counter : declared.counters) {
    if (declared.dicts.contains(counter)) {
      r.problems().add(node->where, path, "'" + counter + "' is declared as both a counter and a dict");
    }
  }
  return r.problems().size() == before ? std::optional(std::move(declared)) : std::nullopt;
}

std::optional<PoolOptions> read_pool(const PoolPlace& place, ValueReader& r) {
  if (!r.expect_map(place.node, place.path, "a map of pool options with kind: thread, process or mpi")) {
    return std::nullopt;
  }
  const std::size_t before = r.problems().size();
  r.refuse_unknown_keys(place.node, place.path, key_names());
  const TreeNode* kind_node = place.node.find("kind");
  if (kind_node == nullptr) {
    r.problems().add(place.node.where, join_path(place.path, "kind"), "missing key 'kind' (thread, process or mpi)");
    return std::nullopt;
  }
  auto kind = r.choice(*kind_node, join_path(place.path, "kind"), {"thread", "process", "mpi"});
  if (!kind) {
    return std::nullopt;
  }
  PoolOptions options;
  if (*kind == "thread") {
    read_keys(place, kThread, options.emplace<ThreadPoolOptions>(), r);
  } else if (*kind == "process") {
    read_keys(place, kProcess, options.emplace<ProcessPoolOptions>(), r);
  } else {
    auto& mpi = options.emplace<MpiPoolOptions>();
    mpi.local = read_local(place, r);
    read_keys(place, kMpi, mpi, r);
  }
  if (r.problems().size() != before) {
    return std::nullopt;  // range checks on half-read options would only add noise
  }
  std::visit([&](const auto& o) { place_validation_problems(o, place, r); }, options);
  return r.problems().size() == before ? std::optional(std::move(options)) : std::nullopt;
}

}  // namespace troupe::config::detail
