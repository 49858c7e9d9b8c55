#include "host_core.hpp"

#include <algorithm>
#include <optional>
#include <type_traits>

#include "common/nest.hpp"
#include "environment_state.hpp"
#include "troupe/errors.hpp"
#include "troupe/process_errors.hpp"

namespace troupe::mpi::detail {

namespace {

using troupe::detail::now_ns;

const char* local_kind(const MpiPoolOptions& options) {
  return std::holds_alternative<ThreadPoolOptions>(options.local) ? "thread" : "process";
}

void add(PoolStats& sum, const PoolStats& s) {
  sum.live_workers += s.live_workers;
  sum.idle_workers += s.idle_workers;
  sum.busy_workers += s.busy_workers;
  sum.queued += s.queued;
  sum.spawned += s.spawned;
  sum.retired.idle_timeout += s.retired.idle_timeout;
  sum.retired.max_tasks += s.retired.max_tasks;
  sum.retired.memory += s.retired.memory;
  sum.retired.crash += s.retired.crash;
  sum.retired.shutdown += s.retired.shutdown;
  sum.times_hit_max_workers += s.times_hit_max_workers;
  for (const auto& [cause, count] : s.crashes_by_cause) {
    sum.crashes_by_cause[cause] += count;
  }
}

}  // namespace

HostCore::HostCore(std::vector<std::filesystem::path> plugins, MpiPoolOptions options)
    : plugins_(std::move(plugins)), options_(std::move(options)) {
  throw_if_invalid(options_);
  auto& env = environment_state();
  if (!env.started) {
    throw UsageError(label() + ": no troupe::mpi::Environment is started in this process");
  }
  if (env.rank != 0) {
    throw UsageError(label() + ": made on rank " + std::to_string(env.rank) +
                     "; rank 0 is the host, the other ranks call troupe::mpi::serve()");
  }
  if (env.size < 2) {
    throw UsageError(label() +
                     ": this MPI job has one rank, so no rank serves the pool; start it with mpirun -np N, N >= 2 "
                     "(rank 0 hands out the work, ranks 1..N-1 run it)");
  }
  if (env.pool_open.exchange(true)) {
    throw UsageError(label() +
                     ": another MpiPool of this job is still alive (one at a time: every "
                     "serving rank serves one pool)");
  }
  try {
    start_ranks();
  } catch (...) {
    env.pool_open = false;
    throw;
  }
  thread_ = std::thread([this] { loop(); });
  thread_id_ = thread_.get_id();
}

HostCore::~HostCore() {
  try {
    shutdown({.wait = true});
  } catch (...) {
    // From the pool's own thread: the thread is joined below all the same.
  }
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    poked_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  environment_state().pool_open = false;
}

// Opens the pool on every rank and waits for each hello.
void HostCore::start_ranks() {
  auto& env = environment_state();
  const int size = env.size;
  env.owed_hellos.resize(static_cast<std::size_t>(size - 1), 0);
  env.owed_byes.resize(static_cast<std::size_t>(size - 1), 0);
  Bytes open;
  MsgpackWriter w(open);
  w.str(options_.name);
  w.array_header(plugins_.size());
  for (const auto& p : plugins_) {
    w.str(p.string());
  }
  w.uinteger(options_.frames_per_worker);
  w.str(local_kind(options_));
  for (int r = 1; r < size; ++r) {
    channel_.send(r, Tag::open, open);
    ranks_.push_back(Rank{r, {}, 0, 0, 0, 0, {}});
  }
  std::vector<bool> answered(ranks_.size(), false);
  std::size_t answers = 0;
  std::string failures;
  const auto deadline = now_ns() + options_.startup_timeout.count();
  Backoff backoff;
  Received m;
  while (answers < ranks_.size()) {
    if (!channel_.poll(m, MPI_ANY_SOURCE, Tag::hello)) {
      if (now_ns() > deadline) {
        break;
      }
      channel_.progress();
      std::this_thread::sleep_for(backoff.next());
      continue;
    }
    backoff.reset();
    Rank& rank = rank_of(m.source);
    if (auto& owed = env.owed_hellos[static_cast<std::size_t>(m.source - 1)]; owed > 0) {
      --owed;  // the late answer to a pool that did not start
      continue;
    }
    MsgpackReader r(m.body.data(), m.body.data() + m.body.size());
    rank.workers = r.uinteger();
    rank.host = std::string(r.str());
    rank.pid = r.integer();
    Value error = r.value();
    rank.slots = rank.workers * options_.frames_per_worker;
    answered[static_cast<std::size_t>(m.source - 1)] = true;
    ++answers;
    if (!error.is_null()) {
      rank.slots = 0;
      failures += "\n  " + place(m.source) + ": " + describe_exception(decode_error(error, 0, place(m.source)));
    }
  }
  std::string silent;
  for (std::size_t i = 0; i < answered.size(); ++i) {
    if (!answered[i]) {
      silent += (silent.empty() ? "" : ", ") + std::to_string(i + 1);
    }
  }
  if (failures.empty() && silent.empty()) {
    for (const Rank& rank : ranks_) {
      max_workers_ += rank.workers;
    }
    return;
  }
  // Close what did start, so those ranks wait for the next pool. A silent
  // rank is closed too, without waiting: it still answers this open, then
  // the close (with a bye, whether its pool started or not); the next pools
  // skip both answers.
  std::size_t closing = 0;
  for (const Rank& rank : ranks_) {
    const auto at = static_cast<std::size_t>(rank.rank - 1);
    if (!answered[at]) {
      channel_.send(rank.rank, Tag::close, {});
      ++env.owed_hellos[at];
      ++env.owed_byes[at];
    } else if (rank.slots > 0) {
      channel_.send(rank.rank, Tag::close, {});
      ++closing;
    }
  }
  while (closing > 0) {
    if (!channel_.poll(m, MPI_ANY_SOURCE, Tag::bye)) {
      channel_.progress();
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    } else if (!skip_owed_bye(m.source)) {
      --closing;
    }
  }
  channel_.flush();
  std::string text = label() + " did not start:";
  if (!silent.empty()) {
    text += "\n  rank(s) " + silent + " did not report ready within " +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(options_.startup_timeout).count()) +
            " ms: is every rank but 0 in troupe::mpi::serve() (troupe run does that under mpirun)?";
  }
  throw Error(text + failures);
}

bool HostCore::skip_owed_bye(int rank) {
  auto& owed = environment_state().owed_byes[static_cast<std::size_t>(rank - 1)];
  if (owed == 0) {
    return false;
  }
  --owed;
  return true;
}

std::string HostCore::label() const {
  return "MpiPool '" + options_.name + "'";
}

HostCore::Rank& HostCore::rank_of(int rank) {
  if (rank < 1 || static_cast<std::size_t>(rank) > ranks_.size()) {
    throw Error("a message from rank " + std::to_string(rank) + ", which does not serve this pool");
  }
  return ranks_[static_cast<std::size_t>(rank - 1)];
}

std::string HostCore::place(int rank) const {
  const Rank& r = ranks_[static_cast<std::size_t>(rank - 1)];
  return rank_place(rank, r.host);
}

std::exception_ptr HostCore::refusal_locked() const {
  if (broken_) {
    return broken_;
  }
  if (closed_) {
    return std::make_exception_ptr(UsageError(label() + " is shut down; it takes no more work"));
  }
  return nullptr;
}

void HostCore::check() const {
  std::lock_guard lock(mutex_);
  if (auto refusal = refusal_locked()) {
    std::rethrow_exception(refusal);
  }
}

namespace {

void write_frame_head(MsgpackWriter& w, std::uint64_t id, FrameKind kind, const std::string& task,
                      std::optional<std::chrono::nanoseconds> timeout) {
  w.uinteger(id);
  w.fixint(static_cast<std::uint8_t>(kind));
  w.str(task);
  w.uinteger(timeout ? static_cast<std::uint64_t>(timeout->count()) : 0);
}

// Sent, it would stop the MPI thread (and break the pool) when the message
// is refused; it fails its own future instead.
std::exception_ptr too_large(const std::string& task, std::size_t size) {
  return std::make_exception_ptr(ArgumentError("the arguments of '" + task + "' encode to " +
                                               troupe::detail::process::format_bytes(size) +
                                               ", over what one MPI message carries (2 GiB); pass less (or a path "
                                               "to a file the ranks can read)"));
}

}  // namespace

Future<Value> HostCore::submit_call(Call call, std::optional<std::chrono::nanoseconds> timeout) {
  if (timeout && std::holds_alternative<ThreadPoolOptions>(options_.local)) {
    throw UsageError(label() + ": a time limit for '" + call.task +
                     "' needs a local pool of kind process (a thread cannot be stopped); this pool's is thread");
  }
  if (timeout && timeout->count() <= 0) {
    throw ArgumentError(label() + ": the time limit for '" + call.task + "' must be positive");
  }
  const std::uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
  auto [future, promise] = make_future_pair<Value>(id);
  Queued q{id, call.task, 1, {}, AnyPromise(std::in_place_index<0>), std::make_shared<std::atomic<bool>>(false)};
  try {
    MsgpackWriter w(q.frame);
    write_frame_head(w, id, FrameKind::call, call.task, timeout);
    w.args(call.args);
    w.kwargs(call.kwargs);
  } catch (const std::exception& e) {
    return make_failed_future<Value>(std::make_exception_ptr(
        ArgumentError("the arguments of '" + call.task + "' cannot be sent to another rank: " + e.what())));
  }
  if (q.frame.size() > kMaxFrame) {
    return make_failed_future<Value>(too_large(call.task, q.frame.size()));
  }
  q.promise = std::move(promise);
  accept(std::move(q), 1);
  return future;
}

Future<std::vector<Outcome<Value>>> HostCore::submit_chunk(std::string task, std::vector<Args> items,
                                                           std::optional<std::chrono::nanoseconds> timeout) {
  if (timeout && std::holds_alternative<ThreadPoolOptions>(options_.local)) {
    throw UsageError(label() + ": a time limit for '" + task +
                     "' needs a local pool of kind process (a thread cannot be stopped); this pool's is thread");
  }
  if (timeout && timeout->count() <= 0) {
    throw ArgumentError(label() + ": the time limit for '" + task + "' must be positive");
  }
  const std::uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
  auto [future, promise] = make_future_pair<std::vector<Outcome<Value>>>(id);
  const std::size_t n = items.size();
  Queued q{id, task, n, {}, AnyPromise(std::in_place_index<1>), std::make_shared<std::atomic<bool>>(false)};
  try {
    MsgpackWriter w(q.frame);
    write_frame_head(w, id, FrameKind::chunk, task, timeout);
    w.uinteger(n);
    for (const auto& item : items) {
      w.args(item);
    }
  } catch (const std::exception& e) {
    return make_failed_future<std::vector<Outcome<Value>>>(std::make_exception_ptr(
        ArgumentError("the arguments of '" + task + "' cannot be sent to another rank: " + e.what())));
  }
  if (q.frame.size() > kMaxFrame) {
    return make_failed_future<std::vector<Outcome<Value>>>(too_large(task, q.frame.size()));
  }
  q.promise = std::move(promise);
  accept(std::move(q), n);
  return future;
}

// Queues `queued` (a call, or a chunk of `items`), waiting for room under
// queue_limit as the policy says. The MPI thread itself never waits: only
// it makes room.
void HostCore::accept(Queued queued, std::size_t items) {
  std::visit(
      [&](auto& promise) {
        promise.on_cancel([this, id = queued.id, task = queued.task, items, out = queued.counted_out] {
          if (out->exchange(true)) {
            return;
          }
          {
            std::lock_guard lock(mutex_);
            --queued_;
            counters_.cancelled += items;
            cancelled_tasks_.push_back({id, task});
          }
          room_.notify_one();
          idle_.notify_all();
        });
      },
      queued.promise);
  std::unique_lock lock(mutex_);
  if (options_.queue_limit && queued_ >= *options_.queue_limit && std::this_thread::get_id() != thread_id_) {
    if (options_.queue_full_policy == QueueFullPolicy::fail) {
      throw QueueFullError(label() + ": queue_limit " + std::to_string(*options_.queue_limit) + " reached");
    }
    room_.wait(lock, [&] { return queued_ < *options_.queue_limit || refusal_locked() != nullptr; });
  }
  if (auto refusal = refusal_locked()) {
    lock.unlock();
    std::visit([&](auto& promise) { promise.set_exception(refusal); }, queued.promise);
    std::rethrow_exception(refusal);
  }
  queue_.push_back(std::move(queued));
  ++queued_;
  counters_.submitted += items;
  counters_.peak_queue = std::max(counters_.peak_queue, queued_);
  poked_ = true;
  lock.unlock();
  wake_.notify_one();
}

void HostCore::break_pool(std::exception_ptr cause) {
  std::deque<Queued> dropped;
  {
    std::lock_guard lock(mutex_);
    if (broken_) {
      return;
    }
    broken_ = std::move(cause);
    drop_queue_locked(dropped);
    closed_ = true;
  }
  for (Queued& q : dropped) {
    std::visit([&](auto& p) { p.set_cancelled(broken_); }, q.promise);
  }
  room_.notify_all();
  idle_.notify_all();
}

// Takes the whole queue into `dropped`, counting out the entries no cancel
// hook counted; the caller cancels them after unlocking.
void HostCore::drop_queue_locked(std::deque<Queued>& dropped) {
  dropped.swap(queue_);
  for (auto it = dropped.begin(); it != dropped.end();) {
    if (it->counted_out->exchange(true)) {
      it = dropped.erase(it);  // cancelled by a user; its hook counted it
      continue;
    }
    --queued_;
    cancelled_tasks_.push_back({it->id, it->task});
    counters_.cancelled += it->items;
    ++it;
  }
}

void HostCore::shutdown(const ShutdownOptions& how) {
  std::deque<Queued> dropped;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    poked_ = true;
    if (how.cancel_pending) {
      drop_queue_locked(dropped);
      revoke_all_ = true;
    }
  }
  for (Queued& q : dropped) {
    std::visit([](auto& p) { p.set_cancelled(); }, q.promise);
  }
  wake_.notify_all();
  room_.notify_all();
  if (!how.wait) {
    return;
  }
  if (std::this_thread::get_id() == thread_id_) {
    throw UsageError(label() +
                     ": shutdown({.wait = true}) from a done callback, which runs on the pool's own MPI thread, "
                     "would wait for itself");
  }
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return finished_; });
}

bool HostCore::join(Timeout timeout) {
  if (std::this_thread::get_id() == thread_id_) {
    throw DeadlockError(label() + ": join() from a done callback would wait for its own thread");
  }
  std::unique_lock lock(mutex_);
  const auto done = [&] {
    return finished_ || (queued_ == 0 && in_flight_ == 0);
  };
  if (!timeout) {
    idle_.wait(lock, done);
    return true;
  }
  return idle_.wait_for(lock, *timeout, done);
}

void HostCore::interrupt_running() {
  std::lock_guard lock(mutex_);
  if (finished_) {
    return;
  }
  commands_.push_back([this] {
    for (const Rank& rank : ranks_) {
      channel_.send(rank.rank, Tag::interrupt, {});
    }
  });
  poked_ = true;
  wake_.notify_one();
}

void HostCore::spawn_workers(std::size_t n) {
  std::lock_guard lock(mutex_);
  if (auto refusal = refusal_locked()) {
    std::rethrow_exception(refusal);
  }
  commands_.push_back([this, n] {
    for (std::size_t i = 0; i < ranks_.size(); ++i) {
      const std::size_t share = n / ranks_.size() + (i < n % ranks_.size() ? 1 : 0);
      if (share == 0) {
        continue;
      }
      Bytes message;
      MsgpackWriter(message).uinteger(share);
      channel_.send(ranks_[i].rank, Tag::spawn, std::move(message));
    }
  });
  poked_ = true;
  wake_.notify_one();
}

// Every rank runs its local pool's test(); the MPI thread collects the
// answers (results keep flowing meanwhile).
void HostCore::test() {
  if (std::this_thread::get_id() == thread_id_) {
    throw UsageError(label() + ": test() from a done callback would wait for its own thread");
  }
  // The answer, set by the command on the MPI thread; shared, so that a
  // command that never runs (the MPI thread failed first) dangles nothing.
  struct Answer {
    bool given = false;
    std::exception_ptr error;
  };
  auto answer = std::make_shared<Answer>();
  {
    std::lock_guard lock(mutex_);
    if (auto refusal = refusal_locked()) {
      std::rethrow_exception(refusal);
    }
    commands_.push_back([this, answer] {
      std::exception_ptr first;
      try {
        for (const Rank& rank : ranks_) {
          channel_.send(rank.rank, Tag::test, {});
        }
        std::size_t waiting = ranks_.size();
        Received m;
        Backoff backoff;
        while (waiting > 0) {
          if (channel_.poll(m, MPI_ANY_SOURCE, Tag::tested)) {
            --waiting;
            MsgpackReader r(m.body.data(), m.body.data() + m.body.size());
            Value error = r.value();
            if (!error.is_null() && !first) {
              first = decode_error(error, 0, place(m.source));
            }
            backoff.reset();
          } else if (channel_.poll(m, MPI_ANY_SOURCE, Tag::results)) {
            on_results(rank_of(m.source), m);
          } else {
            channel_.progress();
            std::this_thread::sleep_for(backoff.next());
          }
        }
      } catch (...) {
        first = std::current_exception();
      }
      {
        std::lock_guard answered(mutex_);
        answer->given = true;
        answer->error = first;
      }
      idle_.notify_all();
    });
    poked_ = true;
  }
  wake_.notify_one();
  std::unique_lock lock(mutex_);
  // finished_ without an answer: the MPI thread failed before it ran the
  // command, and never will; without this test() would wait for ever.
  idle_.wait(lock, [&] { return answer->given || finished_; });
  if (answer->given) {
    if (answer->error) {
      std::rethrow_exception(answer->error);
    }
    return;
  }
  std::rethrow_exception(
      broken_ ? broken_ : std::make_exception_ptr(Error(label() + ": test() was not run: the pool ended first")));
}

PoolGauges HostCore::gauges() const {
  std::lock_guard lock(mutex_);
  PoolStats sum;
  for (const Rank& rank : ranks_) {
    add(sum, rank.stats);
  }
  sum.queued += queued_;
  return sum;
}

std::vector<CancelledTask> HostCore::cancelled_tasks() const {
  std::lock_guard lock(mutex_);
  return cancelled_tasks_;
}

PoolStats HostCore::stats() const {
  std::lock_guard lock(mutex_);
  PoolStats sum;
  for (const Rank& rank : ranks_) {
    add(sum, rank.stats);
  }
  sum.queued += queued_;
  sum.submitted = counters_.submitted;
  sum.completed = counters_.completed;
  sum.failed = counters_.failed;
  sum.cancelled = counters_.cancelled;
  sum.peak_queue = counters_.peak_queue;
  return sum;
}

std::vector<RankStats> HostCore::rank_stats() const {
  std::lock_guard lock(mutex_);
  std::vector<RankStats> out;
  for (const Rank& rank : ranks_) {
    out.push_back({rank.rank, rank.host, rank.pid, rank.workers, rank.stats});
  }
  return out;
}

}  // namespace troupe::mpi::detail
