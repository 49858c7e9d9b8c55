// Rank 0's side of an MpiPool: the queue submissions go to, and the one
// thread that talks MPI (the "MPI thread"): it hands frames to ranks with
// room, reads their results into the futures, sends revokes and the
// commands other threads ask for, and closes the ranks at the end.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "channel.hpp"
#include "troupe/mpi_pool.hpp"
#include "wire.hpp"

namespace troupe::mpi::detail {

using ChunkPromise = Promise<std::vector<Outcome<Value>>>;
using AnyPromise = std::variant<Promise<Value>, ChunkPromise>;

class HostCore {
 public:
  HostCore(std::vector<std::filesystem::path> plugins, MpiPoolOptions options);
  ~HostCore();

  Future<Value> submit_call(Call call, std::optional<std::chrono::nanoseconds> timeout);
  Future<std::vector<Outcome<Value>>> submit_chunk(std::string task, std::vector<Args> items,
                                                   std::optional<std::chrono::nanoseconds> timeout);
  void shutdown(const ShutdownOptions& options);
  void interrupt_running();
  bool join(Timeout timeout);
  void check() const;
  void test();
  void spawn_workers(std::size_t n);
  std::size_t max_workers() const noexcept { return max_workers_; }
  PoolGauges gauges() const;
  std::vector<CancelledTask> cancelled_tasks() const;
  PoolStats stats() const;
  int ranks() const noexcept { return static_cast<int>(ranks_.size()); }
  std::vector<RankStats> rank_stats() const;
  const MpiPoolOptions& options() const noexcept { return options_; }

 private:
  struct Queued {
    std::uint64_t id;
    std::string task;
    std::size_t items;  // 1 for a call
    Bytes frame;        // the frame as the work message carries it
    AnyPromise promise;
    // Set by whoever counts the entry out of the queue as cancelled: its
    // cancel hook (a user's cancel()) or shutdown/break, never both.
    std::shared_ptr<std::atomic<bool>> counted_out;
  };
  struct Flight {
    int rank;
    std::string task;
    std::size_t items;
    AnyPromise promise;
    bool revoked = false;
  };
  struct Rank {
    int rank;
    std::string host;
    std::int64_t pid = 0;
    std::size_t workers = 0;
    std::size_t slots = 0;        // frames it may hold
    std::size_t outstanding = 0;  // frames sent, not yet answered
    PoolStats stats;              // as it last reported (guarded by mutex_)
  };

  void start_ranks();
  void accept(Queued queued, std::size_t items);
  void loop() noexcept;
  bool handle(Received& message);
  void on_results(Rank& rank, Received& message);
  bool dispatch();
  void scan_revokes();
  void run_commands();
  void close_ranks();
  void break_pool(std::exception_ptr cause);
  void drop_queue_locked(std::deque<Queued>& dropped);
  // True (and counted) when `rank` owed a bye to a pool that did not start.
  static bool skip_owed_bye(int rank);
  std::string label() const;  // "MpiPool 'NAME'", for messages
  Rank& rank_of(int rank);
  std::string place(int rank) const;
  std::exception_ptr refusal_locked() const;

  std::vector<std::filesystem::path> plugins_;
  MpiPoolOptions options_;
  std::vector<Rank> ranks_;  // index r - 1 for rank r; set before the MPI thread starts
  std::size_t max_workers_ = 0;
  Channel channel_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;          // the MPI thread: work, commands, shutdown
  std::condition_variable room_;          // submitters blocked on queue_limit
  mutable std::condition_variable idle_;  // join(), shutdown(wait)
  std::deque<Queued> queue_;
  std::size_t queued_ = 0;  // queue entries not cancelled
  bool poked_ = false;
  bool closed_ = false;
  bool finished_ = false;  // the ranks were closed, the MPI thread is done
  bool revoke_all_ = false;
  std::exception_ptr broken_;
  std::vector<std::function<void()>> commands_;  // run on the MPI thread
  std::vector<CancelledTask> cancelled_tasks_;
  std::size_t in_flight_ = 0;  // frames sent, not ended (mirrors flights_ for other threads)
  PoolStats counters_;         // submitted, completed, failed, cancelled, peak_queue

  // The MPI thread's own.
  std::unordered_map<std::uint64_t, Flight> flights_;
  std::size_t next_rank_ = 0;
  std::int64_t last_revoke_scan_ns_ = 0;

  std::atomic<std::uint64_t> next_id_{1};
  std::thread thread_;
  std::thread::id thread_id_;
};

}  // namespace troupe::mpi::detail
