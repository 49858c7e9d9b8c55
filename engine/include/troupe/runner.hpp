// troupe/runner.hpp
//
// troupe::Runner<Key>: a keyed batch of work over any Executor, with
// retries, progress and clean interrupts.
//
//   troupe::Runner<std::string> runner(pool, {.retries = {.max = 2, .on = troupe::Retry::crash_or_timeout}});
//   runner.add("d1", troupe::Call{"text.words", {doc}});
//   runner.add("d2", [&] { return count(x); });          // a C++ callable: ThreadPool only
//   troupe::RunReport<std::string> report = runner.run();
//
// Guarantees: every key ends exactly once, in `outcomes` (value or error,
// every attempt's error, attempts, worker, time) or in `aborted` (never ran
// because the run was stopped). At most `window` items are in flight; the
// streaming form (stream()) pulls from its source only as room frees, so
// memory stays flat however many items pass. Retries are scheduled by the
// runner on its own thread after the back-off (never a sleep in a worker).
// stop(): stop feeding, cancel what is queued (a process pool revokes frames
// sent but not started), let running items finish and keep their results;
// stop_running() also calls Executor::interrupt_running(), and the items
// running then are aborted unless they finished ok. With handle_interrupts,
// SIGINT/SIGTERM do the same (first, second) while run() runs; the library
// never exits: `interrupted` says so and the caller decides.
// A Runner runs once: a second run()/stream(), or add() after one, is a
// UsageError; a duplicate key is refused at add() naming both items.
// Thread safety: add(), run() and stream() from one thread; stop(),
// stop_running() and progress() from any thread, also during run();
// outcome() from any thread while run() runs (add() does not lock for it).
// Items run together in one pool task (`batch`) share its time equally; a
// crash in such a task fails its unfinished items (each an attempt).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "troupe/detail/runner_core.hpp"
#include "troupe/errors.hpp"
#include "troupe/executor.hpp"
#include "troupe/run_outcome.hpp"
#include "troupe/run_work.hpp"
#include "troupe/runner_options.hpp"

namespace troupe {

template <class Key, class Hash = std::hash<Key>>
struct RunReport {
  std::unordered_map<Key, RunOutcome, Hash> outcomes;  // every key that ran
  std::vector<Key> aborted;                            // keys that never finished, in input order
  bool interrupted = false;                            // stopped early (stop() or a signal)
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
  std::uint64_t retried = 0;
};

// An item of a streaming run.
template <class Key>
struct RunItem {
  Key key;
  RunWork work;
};

namespace detail {
// "key 'd1'", "key 42", or "item 7" for a key that does not print.
template <class Key>
std::string describe_key(const Key& key, std::uint64_t index) {
  if constexpr (std::is_convertible_v<const Key&, std::string_view>) {
    return "key '" + std::string(std::string_view(key)) + "'";
  } else if constexpr (requires(std::ostream & os) { os << key; }) {
    std::ostringstream os;
    os << key;
    return "key " + os.str();
  } else {
    return "item " + std::to_string(index);
  }
}
}  // namespace detail

template <class Key, class Hash = std::hash<Key>>
class Runner {
  using Outcomes = std::unordered_map<Key, RunOutcome, Hash>;

 public:
  using Source = std::function<std::optional<RunItem<Key>>()>;
  using Sink = std::function<void(Key&&, RunOutcome&&)>;
  using AbortedSink = std::function<void(Key&&)>;

  // Throws ArgumentError for bad options.
  explicit Runner(Executor& executor, RunnerOptions options = {})
      : core_(std::make_unique<detail::RunnerCore>(executor, std::move(options))) {}

  // Throws UsageError after run(), for a C++ callable on a pool that is not
  // a ThreadPool, and for a key added before (naming both items).
  void add(Key key, RunWork work) {
    if (started_) {
      throw UsageError("Runner::add: the runner has run; make a new one for more work");
    }
    core_->check(work);
    // Room first, in both lists, so that an allocation failing leaves the
    // key unadded and the three in step (the pushes below cannot throw then).
    if (items_.size() == items_.capacity() || works_.size() == works_.capacity()) {
      const std::size_t room = std::max<std::size_t>(64, 2 * items_.size());
      works_.reserve(room);
      items_.reserve(room);
    }
    // try_emplace leaves `key` as it was when the key is there already.
    auto [it, fresh] = outcomes_.try_emplace(std::move(key));
    if (!fresh) {
      const auto first = std::find(items_.begin(), items_.end(), &*it) - items_.begin();
      throw UsageError("Runner::add: duplicate " + detail::describe_key(it->first, items_.size()) + ": item " +
                       std::to_string(items_.size()) + " has the key of item " + std::to_string(first));
    }
    items_.push_back(&*it);
    works_.push_back(std::move(work));
  }
  std::size_t size() const noexcept { return items_.size(); }

  // Runs every added item; returns once each has an outcome or is aborted.
  // Rethrows what a sink or source threw (after the items in flight ended).
  RunReport<Key, Hash> run() {
    begin();
    // However run() ends, the runner keeps no outcome after it (outcome()
    // answers nullopt then: the report has them).
    struct Release {
      Runner& runner;
      ~Release() {
        std::lock_guard lock(runner.mutex_);
        runner.items_.clear();
        runner.works_.clear();
        runner.outcomes_.clear();
      }
    } release{*this};
    const std::size_t n = items_.size();
    // Each outcome lands in its key's node of outcomes_, which then becomes
    // the report: one hash insert per key in all (at add()).
    RunSummary summary = core_->run(
        [&](std::uint64_t i) -> std::optional<RunWork> {
          if (i >= n) {
            return std::nullopt;
          }
          return std::move(works_[i]);
        },
        [&](std::uint64_t i, RunOutcome&& outcome) {
          std::lock_guard lock(mutex_);
          items_[i]->second = std::move(outcome);
        },
        [](std::uint64_t /*aborted: no outcome*/) {},
        [&](std::uint64_t i) { return detail::describe_key(items_[i]->first, i); }, n);
    RunReport<Key, Hash> report;
    std::lock_guard lock(mutex_);
    take_aborted(report.aborted);
    report.outcomes = std::move(outcomes_);
    fill(report, summary);
    return report;
  }

  // The streaming form: pulls (key, work) from `source` (nullopt: no more)
  // only while fewer than `window` items are in flight, hands each finished
  // key to `sink` and each aborted one to `on_aborted`, both on this thread.
  // Keys are not checked for duplicates.
  RunSummary stream(const Source& source, const Sink& sink, const AbortedSink& on_aborted = {}) {
    begin();
    std::unordered_map<std::uint64_t, Key> keys;  // the items in flight
    auto take = [&](std::uint64_t i) {
      auto node = keys.extract(i);
      return std::move(node.mapped());
    };
    return core_->run(
        [&](std::uint64_t i) -> std::optional<RunWork> {
          std::optional<RunItem<Key>> item = source();
          if (!item) {
            return std::nullopt;
          }
          keys.emplace(i, std::move(item->key));
          return std::move(item->work);
        },
        [&](std::uint64_t i, RunOutcome&& outcome) { sink(take(i), std::move(outcome)); },
        [&](std::uint64_t i) {
          Key key = take(i);
          if (on_aborted) {
            on_aborted(std::move(key));
          }
        },
        [&](std::uint64_t i) { return detail::describe_key(keys.at(i), i); }, std::nullopt);
  }

  // The first interrupt: stop feeding, cancel what is queued. Any thread.
  void stop() noexcept { core_->stop(1); }
  // The second: also interrupt what runs (Executor::interrupt_running()).
  void stop_running() noexcept { core_->stop(2); }

  // A key's outcome once it has one, while run() runs (a copy); nullopt
  // before, and after run() returned (read the report then).
  std::optional<RunOutcome> outcome(const Key& key) const {
    std::lock_guard lock(mutex_);
    auto it = outcomes_.find(key);
    if (it == outcomes_.end() || !finished(it->second)) {
      return std::nullopt;
    }
    return it->second;
  }
  // Counts so far (also without a Progress).
  ProgressSnapshot progress() const { return core_->snapshot(); }
  // Items in flight now, and the bound on them.
  std::size_t in_flight() const noexcept { return core_->in_flight(); }
  std::size_t window() const noexcept { return core_->window(); }

 private:
  // Every outcome the sink wrote has an attempt or an error; a key's node
  // holds neither until then.
  static bool finished(const RunOutcome& outcome) noexcept { return outcome.attempts > 0 || outcome.error; }

  // Moves the keys without an outcome (aborted, or never pulled because
  // the run stopped first) out of outcomes_ into `aborted`, in input order.
  // Nodes are found by address and taken by iterator, never looked up by
  // key again (a key unequal to itself, such as NaN, would not be found).
  void take_aborted(std::vector<Key>& aborted) {
    std::unordered_map<const typename Outcomes::value_type*, std::size_t> rank;  // node -> place among the aborted
    for (std::size_t i = 0; i < items_.size(); ++i) {
      if (!finished(items_[i]->second)) {
        const std::size_t place = rank.size();
        rank.emplace(items_[i], place);
      }
    }
    if (rank.empty()) {
      return;
    }
    std::vector<typename Outcomes::node_type> nodes(rank.size());
    aborted.reserve(nodes.size());
    for (auto it = outcomes_.begin(); it != outcomes_.end();) {
      auto found = rank.find(&*it);
      if (found == rank.end()) {
        ++it;
        continue;
      }
      auto next = std::next(it);
      nodes[found->second] = outcomes_.extract(it);
      it = next;
    }
    for (auto& node : nodes) {
      aborted.push_back(std::move(node.key()));
    }
  }

  void begin() {
    if (started_) {
      throw UsageError("Runner: run() or stream() was called already; a Runner runs once");
    }
    started_ = true;
  }
  static void fill(RunReport<Key, Hash>& report, const RunSummary& summary) {
    report.interrupted = summary.interrupted;
    report.ok = summary.ok;
    report.failed = summary.failed;
    report.retried = summary.retried;
  }

  std::unique_ptr<detail::RunnerCore> core_;
  // By key: the duplicate check at add(), the outcomes as they land during
  // run() (guarded by mutex_ from then on), and at the end the report's.
  Outcomes outcomes_;
  std::vector<typename Outcomes::value_type*> items_;  // by item: its node in outcomes_
  std::vector<RunWork> works_;
  mutable std::mutex mutex_;
  bool started_ = false;
};

}  // namespace troupe
