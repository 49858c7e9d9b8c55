// One pool's keys: a table of every key, the kinds it applies to and how it
// sets the options. Value ranges are not checked here but by the engine's
// troupe::validate(), whose problems are placed back on the keys.
#include "pool_schema.hpp"

#include <algorithm>
#include <map>

#include "troupe/registry.hpp"

namespace troupe::config::detail {
namespace {

enum Kinds : unsigned { kThread = 1, kProcess = 2, kBoth = 3 };

using ThreadSetter = void (*)(ThreadPoolOptions&, const TreeNode&, const std::string&, ValueReader&);
using ProcessSetter = void (*)(ProcessPoolOptions&, const TreeNode&, const std::string&, ValueReader&);

struct PoolKey {
  const char* name;
  unsigned kinds;
  ThreadSetter thread;
  ProcessSetter process;
};

// A key both kinds share: one generic setter, instantiated for each struct.
template <class Set>
constexpr PoolKey shared(const char* name, Set) {
  return {name, kBoth,
          [](ThreadPoolOptions& o, const TreeNode& n, const std::string& p, ValueReader& r) { Set{}(o, n, p, r); },
          [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p, ValueReader& r) {
            Set{}(o, n, p, r);
          }};
}

constexpr PoolKey thread_only(const char* name, ThreadSetter set) {
  return {name, kThread, set, nullptr};
}

constexpr PoolKey process_only(const char* name, ProcessSetter set) {
  return {name, kProcess, nullptr, set};
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
      shared("workers", [](auto& o, const TreeNode& n, const std::string& p,
                           ValueReader& r) { assign(o.max_workers, r.count(n, p, true)); }),
      shared("min_workers", [](auto& o, const TreeNode& n, const std::string& p,
                               ValueReader& r) { assign(o.min_workers, r.count(n, p)); }),
      shared("idle_timeout", [](auto& o, const TreeNode& n, const std::string& p,
                                ValueReader& r) { assign(o.idle_timeout, r.duration_or_none(n, p)); }),
      shared("max_tasks_per_worker", [](auto& o, const TreeNode& n, const std::string& p,
                                        ValueReader& r) { assign(o.max_tasks_per_worker, r.count_or_none(n, p)); }),
      shared("initializer",
             [](auto& o, const TreeNode& n, const std::string& p, ValueReader& r) {
               if (is_none(n)) {
                 o.initializer = {};
               } else if (auto call = r.call(n, p)) {
                 o.initializer = std::move(*call);
               }
             }),
      shared("finalizer",
             [](auto& o, const TreeNode& n, const std::string& p, ValueReader& r) {
               if (is_none(n)) {
                 o.finalizer = {};
               } else if (auto call = r.call(n, p)) {
                 o.finalizer = std::move(*call);
               }
             }),
      shared("queue_limit", [](auto& o, const TreeNode& n, const std::string& p,
                               ValueReader& r) { assign(o.queue_limit, r.count_or_none(n, p)); }),
      shared("queue_full_policy",
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
      process_only("startup_timeout", [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p,
                                         ValueReader& r) { assign(o.startup_timeout, r.duration(n, p)); }),
      process_only("shutdown_grace", [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p,
                                        ValueReader& r) { assign(o.shutdown_grace, r.duration(n, p)); }),
      process_only("max_frame",
                   [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p, ValueReader& r) {
                     if (auto bytes = r.size(n, p)) {
                       o.max_frame = static_cast<std::size_t>(*bytes);
                     }
                   }),
      process_only("crash_storm", read_crash_storm),
      process_only("worker_executable", [](ProcessPoolOptions& o, const TreeNode& n, const std::string& p,
                                           ValueReader& r) { assign(o.worker_executable, r.file_path(n, p)); }),
  };
  return keys;
}

std::vector<std::string> key_names() {
  std::vector<std::string> names{"kind", "shared"};
  for (const auto& key : pool_keys()) {
    names.emplace_back(key.name);
  }
  return names;
}

// validate()'s option names that differ from the file's keys.
std::string key_of_option(const std::string& option) {
  return option == "max_workers" ? "workers" : option;
}

// Where validate()'s problem about `option` belongs: the value the file
// gave it, else the pool itself.
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

template <class Options>
void place_validation_problems(Options options, const PoolPlace& place, ValueReader& r) {
  if constexpr (std::is_same_v<Options, ThreadPoolOptions>) {
    // The engine gives thread pools its registry; validate as it will.
    static const Registry engine_registry_stand_in;
    options.registry = &engine_registry_stand_in;
  }
  for (const OptionProblem& problem : validate(options)) {
    const TreeNode& node = node_of_option(place.node, place.key, problem.option);
    r.problems().add(node.where, join_path(place.path, key_of_option(problem.option)),
                     "must be " + problem.allowed + ", found " + problem.value);
  }
}

template <class Options>
Options read_keys(const PoolPlace& place, unsigned kind, ValueReader& r) {
  Options options;
  options.name = place.name;
  const char* kind_text = kind == kThread ? "thread" : "process";
  for (const auto& [key, value] : place.node.entries) {
    if (key.scalar == "kind" || key.scalar == "shared") {
      continue;  // shared: read_shared
    }
    const auto it =
        std::find_if(pool_keys().begin(), pool_keys().end(), [&](const PoolKey& k) { return key.scalar == k.name; });
    const std::string path = join_path(place.path, key.scalar);
    if (it == pool_keys().end()) {
      continue;  // reported by refuse_unknown_keys
    }
    if ((it->kinds & kind) == 0) {
      r.problems().add(key.where, path,
                       "'" + key.scalar + "' applies to " + (kind == kThread ? "process" : "thread") +
                           " pools only; pool '" + place.name + "' is kind: " + kind_text);
      continue;
    }
    if constexpr (std::is_same_v<Options, ThreadPoolOptions>) {
      it->thread(options, value, path, r);
    } else {
      it->process(options, value, path, r);
    }
  }
  return options;
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
  if (!r.expect_map(place.node, place.path, "a map of pool options with kind: thread or process")) {
    return std::nullopt;
  }
  const std::size_t before = r.problems().size();
  r.refuse_unknown_keys(place.node, place.path, key_names());
  const TreeNode* kind_node = place.node.find("kind");
  if (kind_node == nullptr) {
    r.problems().add(place.node.where, join_path(place.path, "kind"), "missing key 'kind' (thread or process)");
    return std::nullopt;
  }
  auto kind = r.choice(*kind_node, join_path(place.path, "kind"), {"thread", "process"});
  if (!kind) {
    return std::nullopt;
  }
  PoolOptions options;
  if (*kind == "thread") {
    options = read_keys<ThreadPoolOptions>(place, kThread, r);
  } else {
    options = read_keys<ProcessPoolOptions>(place, kProcess, r);
  }
  if (r.problems().size() != before) {
    return std::nullopt;  // range checks on half-read options would only add noise
  }
  std::visit([&](const auto& o) { place_validation_problems(o, place, r); }, options);
  return r.problems().size() == before ? std::optional(std::move(options)) : std::nullopt;
}

}  // namespace troupe::config::detail
