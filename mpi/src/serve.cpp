// A serving rank: waits for rank 0 to open a pool, builds the local pool,
// runs what it is sent there and sends the outcomes back as they end,
// until rank 0 closes the pool; then waits for the next, or for `leave`.
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>

#include "channel.hpp"
#include "environment_state.hpp"
#include "troupe/cpu_count.hpp"
#include "troupe/errors.hpp"
#include "troupe/mpi.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/registry.hpp"
#include "troupe/thread_pool.hpp"
#include "wire.hpp"

namespace troupe::mpi {
namespace detail {
namespace {

using Clock = std::chrono::steady_clock;
using ChunkFuture = Future<std::vector<Outcome<Value>>>;

const char* local_kind(const MpiPoolOptions& options) {
  return std::holds_alternative<ThreadPoolOptions>(options.local) ? "thread" : "process";
}

std::string plugin_list(const std::vector<std::string>& plugins) {
  std::string out = "[";
  for (const auto& p : plugins) {
    out += (out.size() > 1 ? ", " : "") + p;
  }
  return out + "]";
}

// Ids of the local futures that ended, filled by their done callbacks (on
// the local pool's threads) and drained by the serving loop.
struct DoneQueue {
  std::mutex mutex;
  std::condition_variable wake;
  std::vector<std::uint64_t> ids;
};

class Session {
 public:
  Session(const std::vector<std::filesystem::path>& plugins, const std::vector<MpiPoolOptions>& pools, Channel& channel)
      : plugins_(plugins), pools_(pools), channel_(channel), done_(std::make_shared<DoneQueue>()) {}

  // Answers `open` with hello; false when the local pool did not start.
  bool open(const Received& message) {
    auto& env = environment_state();
    Bytes out;
    MsgpackWriter w(out);
    std::size_t workers = 0;
    Value error(nullptr);
    try {
      check_same_pool(message);
      workers = start_local_pool();
    } catch (...) {
      error = encode_error(std::current_exception());
      pool_.reset();
    }
    w.uinteger(workers);
    w.str(env.host);
    w.integer(static_cast<std::int64_t>(::getpid()));
    w.value(error);
    channel_.send(0, Tag::hello, std::move(out));
    return pool_ != nullptr;
  }

  // Serves until rank 0 closes the pool (true) or leaves (false).
  bool run() {
    Backoff backoff;
    Received message;
    for (;;) {
      bool progressed = false;
      while (channel_.poll(message, 0)) {
        progressed = true;
        backoff.arrived(troupe::detail::now_ns());
        switch (message.tag) {
          case Tag::work:
            start_work(message);
            break;
          case Tag::revoke:
            revoke(message);
            break;
          case Tag::interrupt:
            pool_->interrupt_running();
            break;
          case Tag::spawn: {
            MsgpackReader r(message.body.data(), message.body.data() + message.body.size());
            try {
              pool_->spawn_workers(r.uinteger());
            } catch (const Error&) {
              // A local pool that broke since rank 0 asked starts nothing;
              // rank 0 learns it broke from the results of its work.
            }
            break;
          }
          case Tag::test:
            run_test();
            break;
          case Tag::close:
            close();
            return true;
          case Tag::leave:
            close();
            return false;
          default:
            throw Error("rank " + std::to_string(environment_state().rank) + ": unexpected message " +
                        std::to_string(message.tag) + " from rank 0 while a pool is open");
        }
      }
      progressed = send_results() || progressed;
      channel_.progress();
      if (progressed) {
        backoff.reset();
        continue;
      }
      std::unique_lock lock(done_->mutex);
      done_->wake.wait_for(lock, backoff.next(), [&] { return !done_->ids.empty(); });
    }
  }

 private:
  struct Local {
    std::variant<Future<Value>, ChunkFuture> future;
  };

  void check_same_pool(const Received& message) {
    MsgpackReader r(message.body.data(), message.body.data() + message.body.size());
    const std::string name(r.str());
    std::vector<std::string> theirs;
    for (std::size_t n = r.array_header(); n > 0; --n) {
      theirs.emplace_back(r.str());
    }
    const std::uint64_t frames = r.uinteger();
    const std::string kind(r.str());
    const auto named = std::find_if(pools_.begin(), pools_.end(), [&](const auto& p) { return p.name == name; });
    if (named == pools_.end()) {
      std::string served;
      for (const auto& p : pools_) {
        served += (served.empty() ? "'" : ", '") + p.name + "'";
      }
      throw UsageError("rank 0 opened pool '" + name + "', which this rank does not serve (it serves " +
                       (served.empty() ? std::string("none") : served) +
                       "); every rank must pass the same plugins and options");
    }
    options_ = &*named;
    std::vector<std::string> ours;
    for (const auto& p : plugins_) {
      ours.push_back(p.string());
    }
    std::string differences;
    if (ours != theirs) {
      differences += "; plugins " + plugin_list(ours) + " here, " + plugin_list(theirs) + " on rank 0";
    }
    if (frames != options_->frames_per_worker) {
      differences += "; frames_per_worker " + std::to_string(options_->frames_per_worker) + " here, " +
                     std::to_string(frames) + " on rank 0";
    }
    if (kind != local_kind(*options_)) {
      differences += std::string("; local kind ") + local_kind(*options_) + " here, " + kind + " on rank 0";
    }
    if (!differences.empty()) {
      throw UsageError("serve() on this rank was given another pool '" + name + "' than rank 0's:" +
                       differences.substr(1) + " (every rank must pass the same plugins and options)");
    }
  }

  std::size_t auto_workers() const {
    return std::max<std::size_t>(1, cpu_count() / std::max<std::size_t>(1, environment_state().node_ranks));
  }

  // Builds the local pool; a process pool makes one round trip through a
  // worker, so plugins that do not load or an initializer that throws are
  // reported in hello, not on the first task (a thread pool loaded the
  // plugins here already).
  std::size_t start_local_pool() {
    throw_if_invalid(*options_);
    const std::string name = options_->name + "@rank" + std::to_string(environment_state().rank);
    std::size_t workers = 0;
    if (const auto* thread = std::get_if<ThreadPoolOptions>(&options_->local)) {
      registry_ = std::make_unique<Registry>();
      for (const auto& plugin : plugins_) {
        registry_->load(plugin);
      }
      ThreadPoolOptions o = *thread;
      o.max_workers = o.max_workers != 0 ? o.max_workers : auto_workers();
      o.min_workers = std::min(o.min_workers, o.max_workers);
      o.registry = registry_.get();
      o.name = name;
      workers = o.max_workers;
      pool_ = std::make_unique<ThreadPool>(std::move(o));
    } else {
      ProcessPoolOptions o = std::get<ProcessPoolOptions>(options_->local);
      o.max_workers = o.max_workers != 0 ? o.max_workers : auto_workers();
      o.min_workers = std::min(o.min_workers, o.max_workers);
      o.name = name;
      workers = o.max_workers;
      auto process = std::make_unique<ProcessPool>(plugins_, std::move(o));
      timed_ = process.get();
      pool_ = std::move(process);
    }
    if (timed_ != nullptr) {
      pool_->submit_chunk("", {}).get();  // an empty chunk: a round trip through a ready worker
    }
    return workers;
  }

  void start_work(const Received& message) {
    MsgpackReader r(message.body.data(), message.body.data() + message.body.size());
    for (std::size_t n = r.uinteger(); n > 0; --n) {
      const std::uint64_t id = r.uinteger();
      const auto kind = static_cast<FrameKind>(r.small_uinteger());
      std::string task(r.str());
      const std::uint64_t timeout_ns = r.uinteger();
      const auto timeout = std::chrono::nanoseconds(static_cast<std::int64_t>(timeout_ns));
      if (timeout_ns != 0 && timed_ == nullptr) {
        // Rank 0 refuses these; never drop a limit it sent anyway.
        auto error = std::make_exception_ptr(UsageError("a time limit for '" + task +
                                                        "' reached a rank whose local pool is a thread pool, which "
                                                        "cannot stop a task"));
        if (kind == FrameKind::call) {
          watch(id, make_failed_future<Value>(error));
        } else {
          watch(id, make_failed_future<std::vector<Outcome<Value>>>(error));
        }
        skip_frame(r, kind);
        continue;
      }
      // The local pool may refuse a submission (it broke since rank 0 sent
      // this, or its own queue_limit with the fail policy): that fails this
      // frame on rank 0, never the serving loop (which would end the job).
      if (kind == FrameKind::call) {
        Call call{std::move(task), {}, {}};
        r.args_into(call.args);
        r.kwargs_into(call.kwargs);
        Future<Value> f;
        try {
          f = timeout_ns != 0 && timed_ != nullptr ? timed_->submit_call(std::move(call), timeout)
                                                   : pool_->submit_call(std::move(call));
        } catch (...) {
          f = make_failed_future<Value>(std::current_exception());
        }
        watch(id, std::move(f));
      } else {
        std::vector<Args> items(r.uinteger());
        for (auto& item : items) {
          r.args_into(item);
        }
        ChunkFuture f;
        try {
          f = timeout_ns != 0 && timed_ != nullptr ? timed_->submit_chunk(std::move(task), std::move(items), timeout)
                                                   : pool_->submit_chunk(std::move(task), std::move(items));
        } catch (...) {
          f = make_failed_future<std::vector<Outcome<Value>>>(std::current_exception());
        }
        watch(id, std::move(f));
      }
    }
  }

  static void skip_frame(MsgpackReader& r, FrameKind kind) {
    Args args;
    if (kind == FrameKind::call) {
      Kwargs kwargs;
      r.args_into(args);
      r.kwargs_into(kwargs);
      return;
    }
    for (std::size_t m = r.uinteger(); m > 0; --m) {
      r.args_into(args);
    }
  }

  template <class F>
  void watch(std::uint64_t id, F future) {
    auto [it, inserted] = inflight_.emplace(id, Local{future});
    if (!inserted) {
      throw Error("rank 0 sent task " + std::to_string(id) + " twice");
    }
    future.add_done_callback([done = done_, id](const F&) {
      {
        std::lock_guard lock(done->mutex);
        done->ids.push_back(id);
      }
      done->wake.notify_one();
    });
  }

  void revoke(const Received& message) {
    MsgpackReader r(message.body.data(), message.body.data() + message.body.size());
    for (std::size_t n = r.uinteger(); n > 0; --n) {
      if (auto it = inflight_.find(r.uinteger()); it != inflight_.end()) {
        std::visit([](auto& f) { f.cancel(); }, it->second.future);
      }
    }
  }

  // Results messages for the local futures that ended (as few as fit the
  // message size); false if none ended.
  bool send_results() {
    {
      std::lock_guard lock(done_->mutex);
      ended_.swap(done_->ids);
    }
    if (ended_.empty()) {
      return false;
    }
    Bytes stats;
    MsgpackWriter stats_writer(stats);
    write_stats(stats_writer, pool_->stats());
    Bytes results;
    std::size_t count = 0;
    const auto send = [&] {
      if (count == 0) {
        return;
      }
      Bytes out = stats;
      MsgpackWriter(out).uinteger(count);
      out.insert(out.end(), results.begin(), results.end());
      channel_.send(0, Tag::results, std::move(out));
      results.clear();
      count = 0;
    };
    for (const std::uint64_t id : ended_) {
      auto it = inflight_.find(id);
      Bytes one = encode_result(id, it->second);
      inflight_.erase(it);
      if (results.size() + one.size() > kMaxFrame) {
        send();
      }
      results.insert(results.end(), one.begin(), one.end());
      ++count;
    }
    send();
    ended_.clear();
    return true;
  }

  // One result: its id and outcome. A result that cannot travel (nested
  // too deeply, or over one message) fails its own future on rank 0; the
  // serving loop, whose end would end the job, goes on.
  static Bytes encode_result(std::uint64_t id, const Local& local) {
    const bool is_call = std::holds_alternative<Future<Value>>(local.future);
    std::exception_ptr error;
    Bytes one;
    try {
      MsgpackWriter w(one);
      w.uinteger(id);
      if (is_call) {
        write_outcome(w, outcome_of(std::get<Future<Value>>(local.future)));
      } else {
        write_chunk(w, std::get<ChunkFuture>(local.future));
      }
      if (one.size() <= kMaxFrame) {
        return one;
      }
      error = std::make_exception_ptr(Error("the result of task " + std::to_string(id) + " encodes to " +
                                            troupe::detail::process::format_bytes(one.size()) +
                                            ", over what one MPI message carries (2 GiB); return less (or write "
                                            "it to a file and return its path)"));
    } catch (const std::exception& e) {
      error = std::make_exception_ptr(
          Error("the result of task " + std::to_string(id) + " cannot be sent to rank 0: " + e.what()));
    }
    one = Bytes();
    MsgpackWriter w(one);
    w.uinteger(id);
    if (!is_call) {
      w.fixint(1);  // the chunk fails as a whole
    }
    write_outcome(w, Outcome<Value>(error));
    return one;
  }

  static Outcome<Value> outcome_of(const Future<Value>& f) {
    try {
      return Outcome<Value>(f.get());
    } catch (...) {
      return Outcome<Value>(std::current_exception());
    }
  }

  static void write_chunk(MsgpackWriter& w, const ChunkFuture& f) {
    const std::vector<Outcome<Value>>* outcomes = nullptr;
    std::exception_ptr error;
    try {
      outcomes = &f.get();
    } catch (...) {
      error = std::current_exception();
    }
    if (outcomes != nullptr) {
      w.fixint(0);
      w.uinteger(outcomes->size());
      for (const auto& outcome : *outcomes) {
        write_outcome(w, outcome);
      }
      return;
    }
    // The chunk as a whole failed (a broken pool, an unknown task).
    w.fixint(1);
    write_outcome(w, Outcome<Value>(error));
  }

  void run_test() {
    Bytes out;
    MsgpackWriter w(out);
    try {
      pool_->test();
      w.nil();
    } catch (...) {
      w.value(encode_error(std::current_exception()));
    }
    channel_.send(0, Tag::tested, std::move(out));
  }

  void close() {
    Value error(nullptr);
    try {
      pool_->shutdown({.wait = true});
      pool_->check();
    } catch (const UsageError&) {
      // Shut down, as asked.
    } catch (...) {
      error = encode_error(std::current_exception());  // a finalizer that threw broke it
    }
    send_results();  // what ended during the shutdown
    Bytes out;
    MsgpackWriter w(out);
    write_stats(w, pool_->stats());
    w.value(error);
    channel_.send(0, Tag::bye, std::move(out));
    pool_.reset();
    registry_.reset();
  }

  const std::vector<std::filesystem::path>& plugins_;
  const std::vector<MpiPoolOptions>& pools_;
  const MpiPoolOptions* options_ = nullptr;  // the one rank 0 opened
  Channel& channel_;
  std::shared_ptr<DoneQueue> done_;
  std::unique_ptr<Registry> registry_;  // a thread pool's plugins; declared before the pool, which uses it
  std::unique_ptr<Executor> pool_;
  TimedSubmit* timed_ = nullptr;  // the pool, when it takes time limits
  std::map<std::uint64_t, Local> inflight_;
  std::vector<std::uint64_t> ended_;
};

}  // namespace
}  // namespace detail

void serve(const std::vector<std::filesystem::path>& plugins, const MpiPoolOptions& options) {
  serve(plugins, std::vector<MpiPoolOptions>{options});
}

void serve(const std::vector<std::filesystem::path>& plugins, const std::vector<MpiPoolOptions>& pools) {
  auto& env = detail::environment_state();
  if (!env.started) {
    throw UsageError("troupe::mpi::serve: no troupe::mpi::Environment is started in this process");
  }
  if (env.rank == 0) {
    throw UsageError("troupe::mpi::serve: rank 0 is the host, which makes the MpiPool; serve() is for the others");
  }
  try {
    detail::Channel channel;
    detail::Backoff backoff;
    detail::Received message;
    for (;;) {
      if (!channel.poll(message, 0)) {
        channel.progress();
        std::this_thread::sleep_for(backoff.next());
        continue;
      }
      backoff.reset();
      if (message.tag == detail::Tag::leave) {
        channel.flush();
        return;
      }
      if (message.tag == detail::Tag::close) {
        // Rank 0 gave up on a pool whose open this rank answered late and
        // whose local pool did not start: the bye it waits for all the same.
        detail::Bytes out;
        detail::MsgpackWriter w(out);
        detail::write_stats(w, PoolStats{});
        w.nil();
        channel.send(0, detail::Tag::bye, std::move(out));
        continue;
      }
      if (message.tag != detail::Tag::open) {
        throw Error("unexpected message " + std::to_string(message.tag) + " from rank 0 while no pool is open");
      }
      detail::Session session(plugins, pools, channel);
      if (session.open(message) && !session.run()) {
        channel.flush();
        return;
      }
    }
  } catch (...) {
    // A serving rank that cannot go on must not leave quietly: rank 0 would
    // wait for ever for the work it holds. It ends the job, as a rank that
    // dies does (docs/scale_out.md, failure model).
    std::fprintf(stderr, "troupe: error: rank %d (%s) cannot serve any more: %s; ending the MPI job\n", env.rank,
                 env.host.c_str(), describe_exception(std::current_exception()).c_str());
    MPI_Abort(MPI_COMM_WORLD, 70);
  }
}

}  // namespace troupe::mpi
