// troupe/engine.hpp
//
// troupe::Engine: named pools built from an EngineSpec, made on first use
// and reused after (loky's reusable executor).
//
//   troupe::Engine engine(troupe::config::load_file("troupe.yaml"));
//   std::shared_ptr<troupe::Executor> cpu = engine.pool("cpu");
//   auto f = cpu->call("text.words", doc);
//
// Guarantees: the constructor checks the whole spec (unique names, every
// pool's options through troupe::validate()) and starts nothing. pool(name)
// returns the same pool until it breaks or is reconfigured; a broken (or
// shut down) pool is replaced on the next pool(name), with a warning in the
// log saying why. Handles to a replaced pool stay valid until released. The
// host loads the plugins (into registry()) only when a thread pool is first
// made; process pools load them in their workers alone. Destruction shuts
// the pools down (queued work runs) in reverse order of creation.
// Thread safety: every member may be called from any thread.
// Hazards: a task must not hold the last handle to its own pool, nor
// destroy the Engine.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/engine_spec.hpp"
#include "troupe/executor.hpp"
#include "troupe/pool_stats.hpp"
#include "troupe/registry.hpp"

namespace troupe {

// How reconfigure() ends the pool it replaces. By default its queued work
// still runs and reconfigure waits for it; cancel_pending cancels what has
// not started; wait = false returns at once and the old pool finishes in
// the background (the Engine keeps it until it is done or the Engine goes).
struct ReconfigureOptions {
  bool wait = true;
  bool cancel_pending = false;
};

class Engine {
 public:
  // Throws UsageError listing every problem of the spec.
  explicit Engine(EngineSpec spec);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The pool named `name`, made now if needed. Throws UsageError for a name
  // the spec does not have (with the closest names), PluginError when a
  // thread pool needs the plugins and one does not load.
  std::shared_ptr<Executor> pool(std::string_view name);

  // Builds a pool from `options` (throws UsageError if invalid, and nothing
  // changes), routes pool(name) to it, then ends the old one as `how` says.
  void reconfigure(std::string_view name, PoolOptions options, const ReconfigureOptions& how = {});

  // Every named pool's figures; zeros for a pool not made yet.
  std::map<std::string, PoolStats> stats() const;
  std::vector<std::string> pool_names() const;  // in spec order
  const EngineSpec& spec() const noexcept;      // as given (reconfigure does not change it)
  const Registry& registry() const noexcept;

 private:
  std::shared_ptr<Executor> make_pool_locked(const PoolOptions& options);
  std::vector<std::shared_ptr<Executor>> take_finished_locked();

  struct State;
  std::unique_ptr<State> state_;
};

namespace detail {
// How an Engine makes a pool of kind mpi: troupe::mpi::Environment installs
// one on rank 0 while it lives (troupe/mpi.hpp); with none installed such a
// pool is refused with a UsageError saying what is missing.
using MpiPoolMaker =
    std::function<std::shared_ptr<Executor>(std::vector<std::filesystem::path> plugins, const MpiPoolOptions& options)>;
void set_mpi_pool_maker(MpiPoolMaker maker);
}  // namespace detail

}  // namespace troupe
