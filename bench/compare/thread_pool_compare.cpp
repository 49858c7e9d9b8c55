// ThreadPool, Future and map beside their peers. Each line is the median of
// settings().rounds interleaved rounds (compare.hpp).
//
// thread.empty_tasks   1M empty tasks, each with a future, all awaited, 2 workers:
//                      troupe vs raw tbb::task_group (no futures) and vs asio::thread_pool + std::promise.
// thread.map           lazy map of 10M trivial items (x * 2), each result read by the caller, on a
//                      default pool: vs tbb::parallel_for writing into a vector allocated and touched
//                      first, and vs the best hand-made consumer (one thread computing each chunk into a
//                      buffer and reading it); the share of items the pool's workers ran; reference
//                      figures for the analysis in bench/README.md.
// thread.map_collect   the same map collected by map_into into a vector allocated and touched before
//                      the clock (as parallel_for's) vs tbb::parallel_for; map_values: map_all(...).values()
//                      into a fresh vector, allocation and page faults in its clock.
// thread.lazy_map_rss  lazy map over an unsized generator of 10M items, in a fresh child process:
//                      the RSS it adds (peak during the map minus RSS before it).
// thread.scaling       CPU-bound map (a 2,000-round hash per item) on a pool of n workers vs
//                      tbb::parallel_for in a task_arena of n, n = 1..cores (at least 1 and 2).
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <future>
#include <ranges>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "compare.hpp"
#include "troupe/cpu_count.hpp"
#include "troupe/map.hpp"
#include "troupe/thread_pool.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using troupe::bench::interleaved;
using troupe::bench::Samples;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Defeats dead-code elimination of benchmark results.
template <class T>
void keep(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

// Items that counting map callables ran on this thread. After a map, the
// iterating thread's own count says how many items it ran itself (the map
// lets it run chunks no worker has started); the pool's workers ran the rest.
thread_local long t_items_run = 0;

// The share of a map's `total` items that ran on the pool's workers, for a
// map made by `run` on the calling thread with a callable that counts.
template <class Run>
double worker_share(long total, Run&& run) {
  const long before = t_items_run;
  run();
  return 1.0 - static_cast<double>(t_items_run - before) / static_cast<double>(total);
}

// ---- thread.empty_tasks -------------------------------------------------------

constexpr std::size_t kEmptyTasks = 1'000'000;

double troupe_empty_tasks() {
  troupe::ThreadPool pool({.max_workers = 2});
  pool.spawn_workers(2);
  std::vector<troupe::Future<void>> futures;
  futures.reserve(kEmptyTasks);
  const auto start = Clock::now();
  for (std::size_t i = 0; i < kEmptyTasks; ++i) {
    futures.push_back(pool.submit([] {}));
  }
  for (auto& f : futures) {
    f.get();
  }
  return static_cast<double>(kEmptyTasks) / seconds_since(start);
}

double tbb_task_group_empty_tasks() {
  tbb::task_arena arena(2);
  double rate = 0;
  arena.execute([&] {
    tbb::task_group group;
    const auto start = Clock::now();
    for (std::size_t i = 0; i < kEmptyTasks; ++i) {
      group.run([] {});
    }
    group.wait();
    rate = static_cast<double>(kEmptyTasks) / seconds_since(start);
  });
  return rate;
}

double asio_promise_empty_tasks() {
  boost::asio::thread_pool pool(2);
  std::vector<std::future<void>> futures;
  futures.reserve(kEmptyTasks);
  const auto start = Clock::now();
  for (std::size_t i = 0; i < kEmptyTasks; ++i) {
    std::promise<void> promise;
    futures.push_back(promise.get_future());
    boost::asio::post(pool, [p = std::move(promise)]() mutable { p.set_value(); });
  }
  for (auto& f : futures) {
    f.get();
  }
  const double rate = static_cast<double>(kEmptyTasks) / seconds_since(start);
  pool.join();
  return rate;
}

TROUPE_COMPARISON("thread.empty_tasks", [](troupe::bench::Reporter& r) {
  const auto s = interleaved({troupe_empty_tasks, tbb_task_group_empty_tasks, asio_promise_empty_tasks});
  r.ratio("thread.empty_tasks_vs_task_group", s[0], "tbb::task_group", s[1], "tasks/s");
  r.ratio("thread.empty_tasks_vs_asio_promise", s[0], "asio+promise", s[2], "tasks/s");
});

// ---- thread.map -----------------------------------------------------------------

constexpr long kMapItems = 10'000'000;
constexpr long kBoundChunk = 16384;  // the map's automatic chunk size for this input

// The lazy map as a user writes it, every result read in turn. The pool is
// made once for every round, as the tbb side keeps its global workers.
double troupe_map_items(troupe::ThreadPool& pool) {
  long sum = 0;
  const auto start = Clock::now();
  for (long v : troupe::map(
           pool, [](long x) { return x * 2; }, std::views::iota(0L, kMapItems))) {
    sum += v;
  }
  const double rate = static_cast<double>(kMapItems) / seconds_since(start);
  keep(sum);
  return rate;
}

// The same map with a callable that counts where it ran (not timed: the
// count is a memory update per item, which the timed kernel does not have).
double troupe_map_worker_share(troupe::ThreadPool& pool) {
  return worker_share(kMapItems, [&] {
    long sum = 0;
    for (long v : troupe::map(
             pool,
             [](long x) {
               ++t_items_run;
               return x * 2;
             },
             std::views::iota(0L, kMapItems))) {
      sum += v;
    }
    keep(sum);
  });
}

double tbb_parallel_for_items(std::vector<long>& out) {
  const auto start = Clock::now();
  tbb::parallel_for(tbb::blocked_range<long>(0, kMapItems), [&](const tbb::blocked_range<long>& range) {
    for (long i = range.begin(); i != range.end(); ++i) {
      out[static_cast<std::size_t>(i)] = i * 2;
    }
  });
  const double rate = static_cast<double>(kMapItems) / seconds_since(start);
  keep(out.back());
  return rate;
}

// The map's chunk loop for x * 2 (opaque to its callers, so none fuses it
// with the reading loop and drops the buffer).
[[gnu::noipa]] void fill_items(long* out, long first, long n) {
  for (long i = 0; i < n; ++i) {
    out[i] = (first + i) * 2;
  }
}

// Sums a chunk one item at a time, as a range-for over the map's iterator
// does: the empty asm keeps GCC from vectorising the reduction.
[[gnu::noipa]] long sum_items(const long* first, const long* last) {
  long sum = 0;
  for (; first != last; ++first) {
    sum += *first;
    asm("" : "+r"(sum));
  }
  return sum;
}

// The consumer's share alone: one thread reading 10M results that are
// already in its own cache. No map whose caller reads every result one by
// one can go faster than this on one thread.
double iteration_bound_items() {
  std::vector<long> chunk(kBoundChunk);
  for (long i = 0; i < kBoundChunk; ++i) {
    chunk[static_cast<std::size_t>(i)] = i * 2;
  }
  long sum = 0;
  const auto start = Clock::now();
  for (long done = 0; done < kMapItems; done += kBoundChunk) {
    sum += sum_items(chunk.data(), chunk.data() + std::min(kBoundChunk, kMapItems - done));
  }
  const double rate = static_cast<double>(kMapItems) / seconds_since(start);
  keep(sum);
  return rate;
}

// The best hand-made consumer measured: the calling thread alone computes
// each chunk into a buffer, then reads it (a map with no workers, every
// result made in the reader's own cache).
double one_thread_items() {
  std::vector<long> chunk(kBoundChunk);
  long sum = 0;
  const auto start = Clock::now();
  for (long first = 0; first < kMapItems; first += kBoundChunk) {
    const long n = std::min(kBoundChunk, kMapItems - first);
    fill_items(chunk.data(), first, n);
    sum += sum_items(chunk.data(), chunk.data() + n);
  }
  const double rate = static_cast<double>(kMapItems) / seconds_since(start);
  keep(sum);
  return rate;
}

// A hand-written two-thread pipeline with no futures, queue or allocation:
// one thread fills chunk buffers (up to 4 ahead), the calling thread sums
// them. What moving results from one core to another costs here.
double handoff_pipeline_items() {
  constexpr long kAhead = 4;
  constexpr long kChunks = (kMapItems + kBoundChunk - 1) / kBoundChunk;
  std::vector<std::vector<long>> ring(kAhead + 2, std::vector<long>(kBoundChunk));
  std::atomic<long> produced{0}, consumed{0};
  long sum = 0;
  const auto start = Clock::now();
  std::jthread producer([&] {
    for (long c = 0; c < kChunks; ++c) {
      while (consumed.load(std::memory_order_acquire) + kAhead < c + 1) {
        std::this_thread::yield();
      }
      const long first = c * kBoundChunk;
      fill_items(ring[static_cast<std::size_t>(c) % ring.size()].data(), first,
                 std::min(kBoundChunk, kMapItems - first));
      produced.store(c + 1, std::memory_order_release);
    }
  });
  for (long c = 0; c < kChunks; ++c) {
    while (produced.load(std::memory_order_acquire) < c + 1) {
      std::this_thread::yield();
    }
    const long* in = ring[static_cast<std::size_t>(c) % ring.size()].data();
    sum += sum_items(in, in + std::min(kBoundChunk, kMapItems - c * kBoundChunk));
    consumed.store(c + 1, std::memory_order_release);
  }
  const double rate = static_cast<double>(kMapItems) / seconds_since(start);
  producer.join();
  keep(sum);
  return rate;
}

TROUPE_COMPARISON("thread.map", [](troupe::bench::Reporter& r) {
  troupe::ThreadPool pool;  // default size: cpu_count()
  pool.spawn_workers(pool.max_workers());
  std::vector<long> out(static_cast<std::size_t>(kMapItems), 0);  // allocated and touched before the clock
  const auto s = interleaved({
      [&] { return troupe_map_items(pool); },
      [&] { return tbb_parallel_for_items(out); },
      one_thread_items,
      [&] { return troupe_map_worker_share(pool) * 100; },
      iteration_bound_items,
      handoff_pipeline_items,
  });
  r.ratio("thread.map_10m", s[0], "tbb::parallel_for", s[1], "items/s");
  r.ratio("thread.map_10m_vs_one_thread", s[0], "one thread", s[2], "items/s");
  r.figure("thread.map_10m_worker_share", s[3], "% of items");
  // Reference figures, not troupe, each with its ratio to the same tbb
  // rounds: the caller's own reading loop, the caller doing all the work
  // itself, and a hand-written producer/consumer pair.
  auto reference = [&](const std::string& name, const Samples& rate) {
    r.figure(name, rate, "items/s");
    r.figure(name + "_vs_parallel_for", Samples{{rate.median() / s[1].median()}}, "x");
  };
  reference("thread.map_10m_ref_iteration_only", s[4]);
  reference("thread.map_10m_ref_one_thread", s[2]);
  reference("thread.map_10m_ref_handoff_pipeline", s[5]);
});

// ---- thread.map_collect ---------------------------------------------------------

// Collects a map of x * 2 over 0..n-1 into `out`, a vector allocated and
// touched before the clock, exactly as parallel_for's side gets it: each
// chunk assigns its results straight into their slots.
template <class F>
void collect_map(troupe::ThreadPool& pool, F fn, std::vector<long>& out) {
  troupe::map_into(pool, fn, std::views::iota(0L, static_cast<long>(out.size())), std::span(out));
}

double troupe_collect_items(troupe::ThreadPool& pool, std::vector<long>& out) {
  const auto start = Clock::now();
  collect_map(
      pool, [](long x) { return x * 2; }, out);
  const double rate = static_cast<double>(kMapItems) / seconds_since(start);
  keep(out.back());
  return rate;
}

double troupe_collect_worker_share(troupe::ThreadPool& pool, std::vector<long>& out) {
  return worker_share(kMapItems, [&] {
    collect_map(
        pool,
        [](long x) {
          ++t_items_run;
          return x * 2;
        },
        out);
    keep(out.back());
  });
}

// map_all(...).values(): a fresh vector per call, so its allocation, zeroing
// and page faults are in the clock (parallel_for's are not).
double troupe_values_items(troupe::ThreadPool& pool) {
  const auto start = Clock::now();
  const std::vector<long> out = troupe::map_all(
                                    pool, [](long x) { return x * 2; }, std::views::iota(0L, kMapItems))
                                    .values();
  const double rate = static_cast<double>(kMapItems) / seconds_since(start);
  keep(out.back());
  return rate;
}

// Reference: one thread making a fresh vector of the results (allocation
// and page faults in the clock, as in a collected map; parallel_for's vector
// is made before its clock).
double fresh_vector_items() {
  const auto start = Clock::now();
  std::vector<long> out;
  out.reserve(static_cast<std::size_t>(kMapItems));
  for (long i = 0; i < kMapItems; ++i) {
    out.push_back(i * 2);
  }
  const double rate = static_cast<double>(kMapItems) / seconds_since(start);
  keep(out.back());
  return rate;
}

TROUPE_COMPARISON("thread.map_collect", [](troupe::bench::Reporter& r) {
  troupe::ThreadPool pool;
  pool.spawn_workers(pool.max_workers());
  std::vector<long> out(static_cast<std::size_t>(kMapItems), 0);
  std::vector<long> troupe_out(static_cast<std::size_t>(kMapItems), 0);
  const auto s = interleaved({
      [&] { return troupe_collect_items(pool, troupe_out); },
      [&] { return tbb_parallel_for_items(out); },
      [&] { return troupe_collect_worker_share(pool, troupe_out) * 100; },
      fresh_vector_items,
      [&] { return troupe_values_items(pool); },
  });
  r.ratio("thread.map_collect_10m", s[0], "tbb::parallel_for", s[1], "items/s");
  r.figure("thread.map_collect_10m_worker_share", s[2], "% of items");
  r.ratio("thread.map_values_10m", s[4], "tbb::parallel_for", s[1], "items/s");
  r.figure("thread.map_collect_10m_ref_fresh_vector_one_thread", s[3], "items/s");
});

// ---- thread.lazy_map_rss --------------------------------------------------------

// An unsized generator: 0, 1, 2, ... n-1, produced on demand.
class Generator : public std::ranges::view_interface<Generator> {
 public:
  class iterator {
   public:
    using value_type = long;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(long i, long n) : i_(i), n_(n) {}
    long operator*() const { return i_; }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    void operator++(int) { ++i_; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.i_ >= it.n_; }

   private:
    long i_ = 0;
    long n_ = 0;
  };
  Generator() = default;
  explicit Generator(long n) : n_(n) {}
  iterator begin() const { return iterator(0, n_); }
  std::default_sentinel_t end() const { return {}; }

 private:
  long n_ = 0;
};

// A /proc/self/status field in MiB (VmRSS: now, VmHWM: peak), -1 if absent.
double status_mib(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == field) {
      double kib = 0;
      status >> kib;
      return kib / 1024.0;
    }
  }
  return -1;
}

// In a fresh process, so no earlier comparison's heap counts: a default pool
// with its workers up, optionally a small map first, then the 10M-item lazy
// map. Prints its RSS growth (MiB: peak during the map minus RSS before it)
// and its rate (items/s).
int lazy_map_rss_child(bool warm_up) {
  troupe::ThreadPool pool;
  pool.spawn_workers(pool.max_workers());
  if (warm_up) {
    long sum = 0;
    for (long v : troupe::map(
             pool, [](long x) { return x * 2; }, Generator(100'000))) {
      sum += v;
    }
    keep(sum);
  }
  // Resets VmHWM to the current RSS (Linux >= 4.0), so the peak read after
  // the map is the map's own (or the warm-up's, were it higher).
  std::ofstream("/proc/self/clear_refs") << "5";
  const double before = status_mib("VmRSS:");
  long sum = 0;
  const auto start = Clock::now();
  for (long v : troupe::map(
           pool, [](long x) { return x * 2; }, Generator(kMapItems))) {
    sum += v;
  }
  const double rate = static_cast<double>(kMapItems) / seconds_since(start);
  keep(sum);
  const double peak = status_mib("VmHWM:");
  if (before < 0 || peak < 0) {
    std::fprintf(stderr, "lazy_map_rss: /proc/self/status has no VmRSS/VmHWM\n");
    return 1;
  }
  std::printf("%.6g %.6g\n", peak - before, rate);
  return 0;
}

// After a 100,000-item map on the same pool: what the 10M-item map's size
// adds, with the workers' allocators (tbbmalloc, glibc arenas) already set
// up by the pool's first use.
TROUPE_CHILD_MODE("lazy_map_rss", [] { return lazy_map_rss_child(true); });
// The pool's first map: the same plus that one-time set-up.
TROUPE_CHILD_MODE("lazy_map_rss_first_use", [] { return lazy_map_rss_child(false); });

TROUPE_COMPARISON("thread.lazy_map_rss", [](troupe::bench::Reporter& r) {
  Samples rate;
  auto growth = [&](const std::string& mode, bool keep_rate) {
    const auto figures = troupe::bench::run_child(mode);
    if (figures.size() != 2) {
      std::fprintf(stderr, "troupe-compare: --child %s printed %zu figures, expected 2\n", mode.c_str(),
                   figures.size());
      return -1.0;
    }
    if (keep_rate) {
      rate.values.push_back(figures[1]);
    }
    return figures[0];
  };
  const auto s = interleaved({
      [&] { return growth("lazy_map_rss", true); },
      [&] { return growth("lazy_map_rss_first_use", false); },
  });
  r.figure("thread.lazy_map_10m_generator_rss_growth", s[0], "MiB");
  r.figure("thread.lazy_map_10m_generator_rss_growth_first_use", s[1], "MiB");
  r.figure("thread.lazy_map_10m_generator_rate", rate, "items/s");
});

// ---- thread.scaling -------------------------------------------------------------

// A fixed compute kernel: 2,000 rounds of FNV-1a-style hashing.
std::uint64_t kernel(std::uint64_t x) {
  std::uint64_t h = 1469598103934665603ull ^ x;
  for (int i = 0; i < 2000; ++i) {
    h = (h ^ static_cast<std::uint64_t>(i)) * 1099511628211ull;
  }
  return h;
}

constexpr long kScalingItems = 100'000;

// The map on `pool` as a user writes it; counts the items the iterating
// thread ran (one increment beside 2,000 multiplications: not measurable).
double troupe_scaling_items(troupe::ThreadPool& pool, Samples& share) {
  std::uint64_t acc = 0;
  const long before = t_items_run;
  const auto start = Clock::now();
  for (auto v : troupe::map(
           pool,
           [](long x) {
             ++t_items_run;
             return kernel(static_cast<std::uint64_t>(x));
           },
           std::views::iota(0L, kScalingItems))) {
    acc ^= v;
  }
  const double rate = static_cast<double>(kScalingItems) / seconds_since(start);
  keep(acc);
  share.values.push_back(100.0 * (1.0 - static_cast<double>(t_items_run - before) / kScalingItems));
  return rate;
}

double tbb_scaling_items(tbb::task_arena& arena, std::vector<std::uint64_t>& out) {
  double rate = 0;
  arena.execute([&] {
    const auto start = Clock::now();
    tbb::parallel_for(tbb::blocked_range<long>(0, kScalingItems), [&](const tbb::blocked_range<long>& range) {
      for (long i = range.begin(); i != range.end(); ++i) {
        out[static_cast<std::size_t>(i)] = kernel(static_cast<std::uint64_t>(i));
      }
    });
    rate = static_cast<double>(kScalingItems) / seconds_since(start);
  });
  keep(out.back());
  return rate;
}

TROUPE_COMPARISON("thread.scaling", [](troupe::bench::Reporter& r) {
  const std::size_t cores = std::max<std::size_t>(2, troupe::cpu_count());
  r.note(
      "CPU-bound map, 100k items x 2,000 hash rounds: a pool of n workers vs tbb::parallel_for in an arena of n; "
      "cores here: " +
      std::to_string(troupe::cpu_count()));
  std::vector<std::uint64_t> out(static_cast<std::size_t>(kScalingItems), 0);
  for (std::size_t n = 1; n <= cores; ++n) {
    troupe::ThreadPool pool({.max_workers = n});
    pool.spawn_workers(n);
    tbb::task_arena arena(static_cast<int>(n));
    Samples share;
    const auto s = interleaved({
        [&] { return troupe_scaling_items(pool, share); },
        [&] { return tbb_scaling_items(arena, out); },
    });
    const std::string name = "thread.scaling_" + std::to_string(n) + "w";
    r.ratio(name, s[0], "tbb::parallel_for", s[1], "items/s");
    r.figure(name + "_worker_share", share, "% of items");
  }
});

}  // namespace
