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

constexpr std::int64_t kRevokeScanNs = 20'000'000;  // cancel() of sent work reaches its rank within ~20 ms

std::string pool_label(const MpiPoolOptions& options) {
  return "MpiPool '" + options.name + "'";
}

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

// A CancelledError that is not a broken pool's (BrokenPoolError derives
// from it): the task was revoked or interrupted, not failed.
bool is_plain_cancel(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const BrokenPoolError&) {
    return false;
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

HostCore::HostCore(std::vector<std::filesystem::path> plugins, MpiPoolOptions options)
    : plugins_(std::move(plugins)), options_(std::move(options)) {
  throw_if_invalid(options_);
  auto& env = environment_state();
  if (!env.started) {
    throw UsageError(pool_label(options_) + ": no troupe::mpi::Environment is started in this process");
  }
  if (env.rank != 0) {
    throw UsageError(pool_label(options_) + ": made on rank " + std::to_string(env.rank) +
                     "; rank 0 is the host, the other ranks call troupe::mpi::serve()");
  }
  if (env.size < 2) {
    throw UsageError(pool_label(options_) +
                     ": this MPI job has one rank, so no rank serves the pool; start it with mpirun -np N, N >= 2 "
                     "(rank 0 hands out the work, ranks 1..N-1 run it)");
  }
  if (env.pool_open.exchange(true)) {
    throw UsageError(pool_label(options_) +
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
  std::string text = pool_label(options_) + " did not start:";
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
    return std::make_exception_ptr(UsageError(pool_label(options_) + " is shut down; it takes no more work"));
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
    throw UsageError(pool_label(options_) + ": a time limit for '" + call.task +
                     "' needs a local pool of kind process (a thread cannot be stopped); this pool's is thread");
  }
  if (timeout && timeout->count() <= 0) {
    throw ArgumentError(pool_label(options_) + ": the time limit for '" + call.task + "' must be positive");
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
    throw UsageError(pool_label(options_) + ": a time limit for '" + task +
                     "' needs a local pool of kind process (a thread cannot be stopped); this pool's is thread");
  }
  if (timeout && timeout->count() <= 0) {
    throw ArgumentError(pool_label(options_) + ": the time limit for '" + task + "' must be positive");
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
      throw QueueFullError(pool_label(options_) + ": queue_limit " + std::to_string(*options_.queue_limit) +
                           " reached");
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

void HostCore::loop() noexcept {
  try {
    Backoff backoff;
    Received message;
    for (;;) {
      bool progressed = false;
      while (channel_.poll(message)) {
        progressed = true;
        backoff.arrived(now_ns());
        handle(message);
      }
      run_commands();
      progressed = dispatch() || progressed;
      if (now_ns() - last_revoke_scan_ns_ > kRevokeScanNs) {
        scan_revokes();
      }
      channel_.progress();
      {
        std::unique_lock lock(mutex_);
        if (closed_ && queued_ == 0 && flights_.empty() && commands_.empty()) {
          lock.unlock();
          close_ranks();
          return;
        }
        if (progressed) {
          backoff.reset();
          continue;
        }
        if (flights_.empty() && queue_.empty() && commands_.empty() && !channel_.sending()) {
          // Nothing can arrive: no rank holds work. Sleep until a submission.
          wake_.wait(lock, [&] { return poked_; });
        } else {
          wake_.wait_for(lock, backoff.next(), [&] { return poked_; });
        }
        if (poked_) {
          poked_ = false;
          backoff.reset();
        }
      }
    }
  } catch (...) {
    // MPI or a rank broke the protocol: nothing sent can be trusted now.
    const auto error = std::current_exception();
    break_pool(troupe::detail::nest(
        error, BrokenPoolError(pool_label(options_) + ": its MPI thread failed: " + describe_exception(error))));
    std::exception_ptr broken;
    {
      std::lock_guard lock(mutex_);
      broken = broken_;
    }
    for (auto& [id, flight] : flights_) {
      std::visit([&](auto& p) { p.set_exception(broken); }, flight.promise);
    }
    flights_.clear();
    std::lock_guard lock(mutex_);
    in_flight_ = 0;
    finished_ = true;
    idle_.notify_all();
  }
}

bool HostCore::handle(Received& message) {
  Rank& rank = rank_of(message.source);
  switch (message.tag) {
    case Tag::results:
      on_results(rank, message);
      return true;
    case Tag::tested:
      return false;  // read by test()'s own command
    case Tag::bye:
      if (skip_owed_bye(message.source)) {
        return false;  // for a pool that did not start; it may come after this pool's hello
      }
      [[fallthrough]];
    default:
      throw Error("unexpected message " + std::to_string(message.tag) + " from " + place(message.source));
  }
}

void HostCore::on_results(Rank& rank, Received& message) {
  MsgpackReader r(message.body.data(), message.body.data() + message.body.size());
  PoolStats reported = read_stats(r);
  const std::string where = place(rank.rank);
  // How each frame ended, read in full before any future completes: the
  // counters count an ending before its future shows it (as on one host),
  // so stats() read after get() includes it.
  struct Ending {
    AnyPromise promise;
    std::optional<Outcome<Value>> whole;               // a call's outcome, or a chunk's that failed as a whole
    std::optional<std::vector<Outcome<Value>>> items;  // a chunk's items
    bool cancelled = false;
  };
  std::vector<Ending> endings;
  std::vector<CancelledTask> revoked_unstarted;
  std::size_t completed = 0;
  std::size_t failed = 0;
  std::size_t cancelled = 0;
  std::exception_ptr broke;
  const auto note_broken = [&](const std::exception_ptr& error) {
    try {
      std::rethrow_exception(error);
    } catch (const BrokenPoolError&) {
      broke = broke ? broke : error;
    } catch (...) {
    }
  };
  for (std::size_t n = r.uinteger(); n > 0; --n) {
    const std::uint64_t id = r.uinteger();
    auto it = flights_.find(id);
    if (it == flights_.end()) {
      throw Error("a result for task " + std::to_string(id) + " from " + where + ", which holds no such task");
    }
    Ending& ending = endings.emplace_back(Ending{std::move(it->second.promise), {}, {}, false});
    const std::size_t items = it->second.items;
    const bool revoked = it->second.revoked;
    std::string task = std::move(it->second.task);
    flights_.erase(it);
    --rank.outstanding;
    const bool is_chunk = std::holds_alternative<ChunkPromise>(ending.promise);
    if (is_chunk && r.small_uinteger() == 0) {
      auto& outcomes = ending.items.emplace(r.uinteger());
      for (auto& outcome : outcomes) {
        outcome = read_outcome(r, id, where);
        if (outcome.ok()) {
          ++completed;
        } else {
          ++failed;
          note_broken(outcome.error());
        }
      }
      continue;
    }
    // A call's outcome, or a chunk that failed as a whole (every item).
    const Outcome<Value>& outcome = ending.whole.emplace(read_outcome(r, id, where));
    const std::size_t count = is_chunk ? items : 1;
    if (outcome.ok()) {
      if (is_chunk) {
        throw Error("a chunk result for task " + std::to_string(id) + " from " + where +
                    " that says it failed as a whole but carries a value");
      }
      completed += count;
      continue;
    }
    note_broken(outcome.error());
    // Revoked before it started there (or interrupted): it ends cancelled.
    ending.cancelled = is_plain_cancel(outcome.error());
    (ending.cancelled ? cancelled : failed) += count;
    if (ending.cancelled && revoked) {
      // Revoked before it started there (what an interrupt ends ran).
      revoked_unstarted.push_back({id, std::move(task)});
    }
  }
  {
    std::lock_guard lock(mutex_);
    rank.stats = std::move(reported);
    counters_.completed += completed;
    counters_.failed += failed;
    counters_.cancelled += cancelled;
    cancelled_tasks_.insert(cancelled_tasks_.end(), revoked_unstarted.begin(), revoked_unstarted.end());
  }
  for (Ending& ending : endings) {
    std::visit(
        [&](auto& promise) {
          if (ending.items) {
            if constexpr (std::is_same_v<std::decay_t<decltype(promise)>, ChunkPromise>) {
              promise.set_value(std::move(*ending.items));
            }
          } else if (ending.whole->ok()) {
            if constexpr (std::is_same_v<std::decay_t<decltype(promise)>, Promise<Value>>) {
              promise.set_value(std::move(*ending.whole).value());
            }
          } else if (ending.cancelled) {
            promise.set_cancelled(ending.whole->error());
          } else {
            promise.set_exception(ending.whole->error());
          }
        },
        ending.promise);
  }
  {
    std::lock_guard lock(mutex_);
    in_flight_ = flights_.size();  // after the futures: join() returns once they are done
  }
  idle_.notify_all();
  if (broke) {
    break_pool(troupe::detail::nest(
        broke, BrokenPoolError(pool_label(options_) + " is broken: the local pool of " + where + " broke")));
  }
}

// Sends queued frames to the ranks with room, each rank at most its room,
// taking turns so that work spreads evenly when there is little of it.
bool HostCore::dispatch() {
  std::vector<std::pair<Rank*, std::vector<Queued>>> batches;
  {
    std::lock_guard lock(mutex_);
    if (queue_.empty()) {
      return false;
    }
    // One frame per rank with room in turn: a few frames spread over every
    // rank instead of filling the first.
    std::vector<std::vector<Queued>> per_rank(ranks_.size());
    bool room = true;
    while (room && !queue_.empty()) {
      room = false;
      for (std::size_t turn = 0; turn < ranks_.size() && !queue_.empty(); ++turn) {
        const std::size_t at = (next_rank_ + turn) % ranks_.size();
        if (ranks_[at].outstanding + per_rank[at].size() < ranks_[at].slots) {
          per_rank[at].push_back(std::move(queue_.front()));
          queue_.pop_front();
          room = true;
        }
      }
    }
    for (std::size_t at = 0; at < ranks_.size(); ++at) {
      if (!per_rank[at].empty()) {
        batches.emplace_back(&ranks_[at], std::move(per_rank[at]));
      }
    }
    next_rank_ = (next_rank_ + 1) % ranks_.size();
  }
  bool sent = false;
  std::size_t taken = 0;
  for (auto& [rank, batch] : batches) {
    taken += batch.size();
    Bytes message;
    std::size_t frames = 0;
    const auto send = [&, rank = rank] {
      if (frames == 0) {
        return;
      }
      Bytes header;
      MsgpackWriter(header).uinteger(frames);
      message.insert(message.begin(), header.begin(), header.end());
      rank->outstanding += frames;
      channel_.send(rank->rank, Tag::work, std::move(message));
      message = Bytes();
      frames = 0;
      sent = true;
    };
    for (Queued& q : batch) {
      // A cancelled entry was already counted out by its cancel hook.
      const bool started =
          std::visit([&](auto& p) { return p.try_start(static_cast<std::size_t>(rank->rank)); }, q.promise);
      if (!started) {
        --taken;
        continue;
      }
      if (message.size() + q.frame.size() > kMaxFrame) {
        send();  // frames that fit one message together travel together
      }
      frames += 1;
      message.insert(message.end(), q.frame.begin(), q.frame.end());
      flights_.emplace(q.id, Flight{rank->rank, std::move(q.task), q.items, std::move(q.promise)});
    }
    send();
  }
  {
    std::lock_guard lock(mutex_);
    queued_ -= taken;
    in_flight_ = flights_.size();
  }
  room_.notify_all();
  return sent || taken > 0;
}

// Work already sent whose future was asked to cancel (or, after
// shutdown(cancel_pending), all of it) is revoked on its rank.
void HostCore::scan_revokes() {
  last_revoke_scan_ns_ = now_ns();
  bool all = false;
  {
    std::lock_guard lock(mutex_);
    all = revoke_all_;
  }
  std::unordered_map<int, std::vector<std::uint64_t>> revokes;
  for (auto& [id, flight] : flights_) {
    if (flight.revoked) {
      continue;
    }
    const bool asked = all || std::visit([](auto& p) { return p.future().cancel_requested(); }, flight.promise);
    if (asked) {
      flight.revoked = true;
      revokes[flight.rank].push_back(id);
    }
  }
  for (auto& [rank, ids] : revokes) {
    Bytes message;
    MsgpackWriter w(message);
    w.uinteger(ids.size());
    for (const auto id : ids) {
      w.uinteger(id);
    }
    channel_.send(rank, Tag::revoke, std::move(message));
  }
}

void HostCore::run_commands() {
  std::vector<std::function<void()>> commands;
  {
    std::lock_guard lock(mutex_);
    commands.swap(commands_);
  }
  for (auto& command : commands) {
    command();
  }
}

// Every rank shuts its local pool down; their last results and byes are read.
void HostCore::close_ranks() {
  for (const Rank& rank : ranks_) {
    channel_.send(rank.rank, Tag::close, {});
  }
  std::size_t open = ranks_.size();
  std::string finalizer_failures;
  std::exception_ptr first_failure;
  Backoff backoff;
  Received m;
  while (open > 0) {
    if (!channel_.poll(m)) {
      channel_.progress();
      std::this_thread::sleep_for(backoff.next());
      continue;
    }
    backoff.reset();
    Rank& rank = rank_of(m.source);
    if (m.tag == Tag::results) {
      on_results(rank, m);
      continue;
    }
    if (m.tag != Tag::bye || skip_owed_bye(m.source)) {
      continue;  // a late tested answer, or the bye for a pool that did not start
    }
    MsgpackReader r(m.body.data(), m.body.data() + m.body.size());
    PoolStats final_stats = read_stats(r);
    Value error = r.value();
    {
      std::lock_guard lock(mutex_);
      rank.stats = std::move(final_stats);
    }
    if (!error.is_null()) {
      auto cause = decode_error(error, 0, place(rank.rank));
      first_failure = first_failure ? first_failure : cause;
      finalizer_failures += "; " + place(rank.rank) + ": " + describe_exception(cause);
    }
    --open;
  }
  channel_.flush();
  std::lock_guard lock(mutex_);
  if (first_failure && !broken_) {
    broken_ = troupe::detail::nest(first_failure,
                                   FinalizerError(pool_label(options_) + ": a finalizer failed" + finalizer_failures));
  }
  finished_ = true;
  idle_.notify_all();
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
    throw UsageError(pool_label(options_) +
                     ": shutdown({.wait = true}) from a done callback, which runs on the pool's own MPI thread, "
                     "would wait for itself");
  }
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return finished_; });
}

bool HostCore::join(Timeout timeout) {
  if (std::this_thread::get_id() == thread_id_) {
    throw DeadlockError(pool_label(options_) + ": join() from a done callback would wait for its own thread");
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
    throw UsageError(pool_label(options_) + ": test() from a done callback would wait for its own thread");
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
      broken_ ? broken_
              : std::make_exception_ptr(Error(pool_label(options_) + ": test() was not run: the pool ended first")));
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
