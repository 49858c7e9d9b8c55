// Rank 0's MPI thread: reads what the ranks send into the futures, hands
// queued frames to ranks with room, sends revokes and the commands other
// threads queue, and closes the ranks when the pool ends
// (host_core.cpp keeps the side other threads call).
#include <algorithm>
#include <optional>
#include <type_traits>

#include "common/nest.hpp"
#include "environment_state.hpp"
#include "host_core.hpp"
#include "troupe/errors.hpp"
#include "troupe/process_errors.hpp"

namespace troupe::mpi::detail {

namespace {

using troupe::detail::now_ns;

constexpr std::int64_t kRevokeScanNs = 20'000'000;  // cancel() of sent work reaches its rank within ~20 ms

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
        error, BrokenPoolError(label() + ": its MPI thread failed: " + describe_exception(error))));
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
    break_pool(
        troupe::detail::nest(broke, BrokenPoolError(label() + " is broken: the local pool of " + where + " broke")));
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
    // rank instead of filling the first. The turn carries over from one
    // dispatch to the next frame by frame, so frames submitted one at a time
    // are dealt exactly as frames submitted together.
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
          next_rank_ = (at + 1) % ranks_.size();
          break;  // the next frame starts from the rank after this one
        }
      }
    }
    for (std::size_t at = 0; at < ranks_.size(); ++at) {
      if (!per_rank[at].empty()) {
        batches.emplace_back(&ranks_[at], std::move(per_rank[at]));
      }
    }
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
    broken_ =
        troupe::detail::nest(first_failure, FinalizerError(label() + ": a finalizer failed" + finalizer_failures));
  }
  finished_ = true;
  idle_.notify_all();
}

}  // namespace troupe::mpi::detail
