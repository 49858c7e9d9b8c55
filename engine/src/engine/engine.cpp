#include "troupe/engine.hpp"

#include <algorithm>
#include <mutex>

#include "common/log.hpp"
#include "troupe/detail/spelling.hpp"
#include "troupe/errors.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/thread_pool.hpp"

namespace troupe {

struct Engine::State {
  EngineSpec spec;
  Registry registry;
  mutable std::mutex mutex;
  bool plugins_loaded = false;                              // into registry, for thread pools
  std::map<std::string, PoolOptions, std::less<>> options;  // current, by name
  std::map<std::string, std::shared_ptr<Executor>, std::less<>> live;
  std::vector<std::shared_ptr<Executor>> created;  // every pool made, in order; shut down in reverse
};

namespace {

// The options as the Engine runs them: named after the pool, thread pools
// resolving plugin calls through the Engine's registry.
PoolOptions completed(std::string_view name, PoolOptions options, const Registry& registry) {
  std::visit(
      [&](auto& o) {
        o.name = std::string(name);
        if constexpr (std::is_same_v<std::decay_t<decltype(o)>, ThreadPoolOptions>) {
          o.registry = &registry;
        }
      },
      options);
  return options;
}

std::vector<std::string> problems_of(const std::string& name, const PoolOptions& options) {
  std::vector<std::string> out;
  for (const auto& problem : std::visit([](const auto& o) { return validate(o); }, options)) {
    out.push_back("pool '" + name + "': " + problem.to_string());
  }
  return out;
}

// Shuts a pool down as `how` says; never throws (the pool may be broken).
void retire(Executor& pool, const ReconfigureOptions& how) noexcept {
  try {
    pool.shutdown({.wait = how.wait, .cancel_pending = how.cancel_pending});
  } catch (...) {
    detail::log(LogLevel::warn,
                "shutting down a replaced pool failed: " + describe_exception(std::current_exception()));
  }
}

// Why `pool` cannot take work, or "" when it can.
std::string unusable_because(const Executor& pool) {
  try {
    pool.check();
    return {};
  } catch (const BrokenPoolError&) {
    return "it broke: " + describe_exception(std::current_exception());
  } catch (const UsageError&) {
    return "it was shut down";
  }
}

// The counters and dicts the spec declares for pool `name`, created on `pool`.
void declare_shared(Executor& pool, const EngineSpec& spec, std::string_view name) {
  for (const auto& declared : spec.pools) {
    if (declared.name != name) {
      continue;
    }
    for (const auto& counter : declared.shared.counters) {
      pool.counter(counter);
    }
    for (const auto& [dict, options] : declared.shared.dicts) {
      pool.dict(dict, options);
    }
  }
}

}  // namespace

Engine::Engine(EngineSpec spec) : state_(std::make_unique<State>()) {
  std::vector<std::string> problems;
  for (const auto& pool : spec.pools) {
    if (pool.name.empty()) {
      problems.emplace_back("a pool has an empty name");
      continue;
    }
    if (!state_->options.emplace(pool.name, completed(pool.name, pool.options, state_->registry)).second) {
      problems.push_back("two pools are named '" + pool.name + "'");
      continue;
    }
    auto found = problems_of(pool.name, state_->options.at(pool.name));
    problems.insert(problems.end(), found.begin(), found.end());
  }
  if (!problems.empty()) {
    std::string message =
        "Engine: " + std::to_string(problems.size()) + " problem" + (problems.size() == 1 ? "" : "s") + " in the spec:";
    for (const auto& p : problems) {
      message += "\n  " + p;
    }
    throw UsageError(message);
  }
  state_->spec = std::move(spec);
}

Engine::~Engine() {
  std::vector<std::shared_ptr<Executor>> created;
  {
    std::lock_guard lock(state_->mutex);
    created.swap(state_->created);
    state_->live.clear();
  }
  for (auto it = created.rbegin(); it != created.rend(); ++it) {
    retire(**it, {.wait = true, .cancel_pending = false});
    it->reset();
  }
}

namespace {

std::vector<std::string> names_of(const EngineSpec& spec) {
  std::vector<std::string> names;
  for (const auto& pool : spec.pools) {
    names.push_back(pool.name);
  }
  return names;
}

std::string unknown_pool(std::string_view name, const EngineSpec& spec) {
  const auto names = names_of(spec);
  std::string listing;
  for (const auto& n : names) {
    listing += (listing.empty() ? "" : ", ") + n;
  }
  return "no pool named '" + std::string(name) + "'" + detail::did_you_mean(name, names) +
         " (pools: " + (listing.empty() ? "none" : listing) + ")";
}

}  // namespace

// Called with the mutex held: moves out the pools nobody uses any more
// (replaced, not held by a caller, nothing left to run), for the caller to
// destroy after it lets go of the mutex (a pool's destructor joins).
std::vector<std::shared_ptr<Executor>> Engine::take_finished_locked() {
  std::vector<std::shared_ptr<Executor>> finished;
  auto& created = state_->created;
  for (auto it = created.begin(); it != created.end();) {
    const bool live =
        std::any_of(state_->live.begin(), state_->live.end(), [&](const auto& entry) { return entry.second == *it; });
    if (!live && it->use_count() == 1 && (*it)->join(std::chrono::nanoseconds(0))) {
      finished.push_back(std::move(*it));
      it = created.erase(it);
    } else {
      ++it;
    }
  }
  return finished;
}

namespace {
std::mutex mpi_maker_mutex;
detail::MpiPoolMaker mpi_maker;  // guarded by mpi_maker_mutex
}  // namespace

void detail::set_mpi_pool_maker(MpiPoolMaker maker) {
  std::lock_guard lock(mpi_maker_mutex);
  mpi_maker = std::move(maker);
}

// Called with the mutex held. The host loads the plugins only for thread
// pools, which run them in this process.
std::shared_ptr<Executor> Engine::make_pool_locked(const PoolOptions& options) {
  if (const auto* mpi = std::get_if<MpiPoolOptions>(&options)) {
    detail::MpiPoolMaker maker;
    {
      std::lock_guard lock(mpi_maker_mutex);
      maker = mpi_maker;
    }
    if (!maker) {
      throw UsageError("pool '" + mpi->name +
                       "' is of kind mpi, which needs troupe::mpi: link it (find_package(troupe COMPONENTS mpi)), "
                       "start a troupe::mpi::Environment, and run the program under mpirun (troupe run does the "
                       "first two itself)");
    }
    std::vector<std::filesystem::path> plugins;
    for (const auto& plugin : state_->spec.plugins) {
      plugins.push_back(plugin.path);
    }
    return maker(std::move(plugins), *mpi);
  }
  if (const auto* thread = std::get_if<ThreadPoolOptions>(&options)) {
    if (!state_->plugins_loaded) {
      for (const auto& plugin : state_->spec.plugins) {
        state_->registry.load(plugin.path);
      }
      state_->plugins_loaded = true;
    }
    return std::make_shared<ThreadPool>(*thread);
  }
  std::vector<std::filesystem::path> plugins;
  for (const auto& plugin : state_->spec.plugins) {
    plugins.push_back(plugin.path);
  }
  return std::make_shared<ProcessPool>(std::move(plugins), std::get<ProcessPoolOptions>(options));
}

std::shared_ptr<Executor> Engine::pool(std::string_view name) {
  std::vector<std::shared_ptr<Executor>> finished;  // destroyed after the lock is released
  std::lock_guard lock(state_->mutex);
  finished = take_finished_locked();
  const auto options = state_->options.find(name);
  if (options == state_->options.end()) {
    throw UsageError(unknown_pool(name, state_->spec));
  }
  auto live = state_->live.find(name);
  if (live != state_->live.end()) {
    const std::string why = unusable_because(*live->second);
    if (why.empty()) {
      return live->second;
    }
    detail::log(LogLevel::warn, "pool '" + std::string(name) + "' is replaced by a new one: " + why);
  }
  auto made = make_pool_locked(options->second);
  declare_shared(*made, state_->spec, name);
  state_->created.push_back(made);
  state_->live.insert_or_assign(std::string(name), made);
  return made;
}

void Engine::reconfigure(std::string_view name, PoolOptions options, const ReconfigureOptions& how) {
  std::shared_ptr<Executor> old;
  std::vector<std::shared_ptr<Executor>> finished;
  {
    std::lock_guard lock(state_->mutex);
    finished = take_finished_locked();
    const auto current = state_->options.find(name);
    if (current == state_->options.end()) {
      throw UsageError(unknown_pool(name, state_->spec));
    }
    options = completed(name, std::move(options), state_->registry);
    if (auto problems = problems_of(std::string(name), options); !problems.empty()) {
      std::string message = "reconfigure:";
      for (const auto& p : problems) {
        message += " " + p + ";";
      }
      message.pop_back();
      throw UsageError(message);
    }
    auto made = make_pool_locked(options);  // may throw: then nothing changed
    declare_shared(*made, state_->spec, name);
    state_->created.push_back(made);
    if (auto live = state_->live.find(name); live != state_->live.end()) {
      old = std::move(live->second);
    }
    state_->live.insert_or_assign(std::string(name), std::move(made));
    current->second = std::move(options);
  }
  if (old) {
    retire(*old, how);
  }
}

std::map<std::string, PoolStats> Engine::stats() const {
  std::map<std::string, std::shared_ptr<Executor>> live;
  std::map<std::string, PoolStats> out;
  {
    std::lock_guard lock(state_->mutex);
    for (const auto& pool : state_->spec.pools) {
      out[pool.name] = PoolStats{};
    }
    for (const auto& [name, pool] : state_->live) {
      live.emplace(name, pool);
    }
  }
  for (const auto& [name, pool] : live) {
    out[name] = pool->stats();
  }
  return out;
}

std::vector<std::string> Engine::pool_names() const {
  return names_of(state_->spec);
}

const EngineSpec& Engine::spec() const noexcept {
  return state_->spec;
}

const Registry& Engine::registry() const noexcept {
  return state_->registry;
}

}  // namespace troupe
