// ThreadPool, Future and map beside their peers (issue 3's figures a-d).
//
// a) 1M empty tasks, each with a future, all awaited, 2 workers:
//    troupe vs raw tbb::task_group (no futures) and vs asio::thread_pool + std::promise.
// b) map of 10M trivial items (x * 2), results consumed by iterating, vs
//    tbb::parallel_for writing into a vector allocated and touched first;
//    beside it, reference figures: the caller's reading loop alone, and two
//    hand-built alternatives (all in one thread; a two-thread pipeline).
// c) lazy map over an unsized generator of 10M items: peak RSS of that run.
// d) CPU-bound scaling at 1, 2, 4, 8, 16 workers: a 2,000-round hash per item,
//    troupe map vs tbb::parallel_for in an arena of the same size.
#include <malloc.h>
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
#include <fstream>
#include <future>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

#include "compare.hpp"
#include "troupe/cpu_count.hpp"
#include "troupe/map.hpp"
#include "troupe/thread_pool.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Defeats dead-code elimination of benchmark results.
template <class T>
void keep(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

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
  // Best of three each, interleaved, so drift hits both sides alike.
  double troupe_rate = 0, group_rate = 0, asio_rate = 0;
  for (int round = 0; round < 3; ++round) {
    troupe_rate = std::max(troupe_rate, troupe_empty_tasks());
    group_rate = std::max(group_rate, tbb_task_group_empty_tasks());
    asio_rate = std::max(asio_rate, asio_promise_empty_tasks());
  }
  r.ratio("thread.empty_tasks_vs_task_group", troupe_rate, "tbb::task_group", group_rate, "tasks/s");
  r.ratio("thread.empty_tasks_vs_asio_promise", troupe_rate, "asio+promise", asio_rate, "tasks/s");
});

constexpr long kMapItems = 10'000'000;
constexpr long kBoundChunk = 16384;  // the map's automatic chunk size for this input

// One pool for every round, as the tbb side keeps its global workers.
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

// The calling thread alone computes each chunk into a buffer, then reads
// it: a map with no workers, every result made in the reader's own cache.
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
  double troupe_rate = 0, tbb_rate = 0, bound_rate = 0, one_thread_rate = 0, handoff_rate = 0;
  for (int round = 0; round < 3; ++round) {
    troupe_rate = std::max(troupe_rate, troupe_map_items(pool));
    tbb_rate = std::max(tbb_rate, tbb_parallel_for_items(out));
    bound_rate = std::max(bound_rate, iteration_bound_items());
    one_thread_rate = std::max(one_thread_rate, one_thread_items());
    handoff_rate = std::max(handoff_rate, handoff_pipeline_items());
  }
  r.ratio("thread.map_10m", troupe_rate, "tbb::parallel_for", tbb_rate, "items/s");
  // Reference figures, not troupe, each with its ratio to the same tbb run:
  // the caller's own reading loop, the caller doing all the work itself,
  // and a hand-written producer/consumer pair.
  auto reference = [&](const std::string& name, double rate) {
    r.figure(name, rate, "items/s");
    r.figure(name + "_vs_parallel_for", rate / tbb_rate, "x");
  };
  reference("thread.map_10m_ref_iteration_only", bound_rate);
  reference("thread.map_10m_ref_one_thread", one_thread_rate);
  reference("thread.map_10m_ref_handoff_pipeline", handoff_rate);
});

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

double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      double kib = 0;
      status >> kib;
      return kib / 1024.0;
    }
  }
  return -1;
}

TROUPE_COMPARISON("thread.lazy_map_rss", [](troupe::bench::Reporter& r) {
  // Give freed heap back to the OS, then reset the peak (Linux >= 4.0), so
  // earlier comparisons' vectors and futures do not count.
  malloc_trim(0);
  std::ofstream("/proc/self/clear_refs") << "5";
  const double before = peak_rss_mib();
  troupe::ThreadPool pool;
  long sum = 0;
  const auto start = Clock::now();
  for (long v : troupe::map(
           pool, [](long x) { return x * 2; }, Generator(kMapItems))) {
    sum += v;
  }
  const double rate = static_cast<double>(kMapItems) / seconds_since(start);
  keep(sum);
  r.figure("thread.lazy_map_10m_generator_rate", rate, "items/s");
  r.figure("thread.lazy_map_10m_generator_peak_rss", peak_rss_mib(), "MiB");
  r.note("peak RSS before the lazy map (after reset): " + std::to_string(before) + " MiB");
});

// A fixed compute kernel: 2,000 rounds of FNV-1a-style hashing.
std::uint64_t kernel(std::uint64_t x) {
  std::uint64_t h = 1469598103934665603ull ^ x;
  for (int i = 0; i < 2000; ++i) {
    h = (h ^ static_cast<std::uint64_t>(i)) * 1099511628211ull;
  }
  return h;
}

constexpr long kScalingItems = 200'000;

double troupe_scaling(std::size_t workers) {
  troupe::ThreadPool pool({.max_workers = workers});
  pool.spawn_workers(workers);
  std::uint64_t acc = 0;
  const auto start = Clock::now();
  for (auto v : troupe::map(
           pool, [](long x) { return kernel(static_cast<std::uint64_t>(x)); }, std::views::iota(0L, kScalingItems))) {
    acc ^= v;
  }
  const double t = seconds_since(start);
  keep(acc);
  return t;
}

double tbb_scaling(std::size_t workers) {
  tbb::task_arena arena(static_cast<int>(workers));
  std::vector<std::uint64_t> out(static_cast<std::size_t>(kScalingItems), 0);
  double t = 0;
  arena.execute([&] {
    const auto start = Clock::now();
    tbb::parallel_for(tbb::blocked_range<long>(0, kScalingItems), [&](const tbb::blocked_range<long>& range) {
      for (long i = range.begin(); i != range.end(); ++i) {
        out[static_cast<std::size_t>(i)] = kernel(static_cast<std::uint64_t>(i));
      }
    });
    t = seconds_since(start);
  });
  keep(out.back());
  return t;
}

TROUPE_COMPARISON("thread.scaling", [](troupe::bench::Reporter& r) {
  r.note("CPU-bound scaling, 200k items x 2,000 hash rounds; speedup = time(1 worker) / time(n); cores here: " +
         std::to_string(troupe::cpu_count()));
  double troupe_one = 0, tbb_one = 0;
  for (std::size_t n : {1u, 2u, 4u, 8u, 16u}) {
    double troupe_t = 1e300, tbb_t = 1e300;
    for (int round = 0; round < 2; ++round) {
      troupe_t = std::min(troupe_t, troupe_scaling(n));
      tbb_t = std::min(tbb_t, tbb_scaling(n));
    }
    if (n == 1) {
      troupe_one = troupe_t;
      tbb_one = tbb_t;
    }
    r.ratio("thread.scaling_speedup_" + std::to_string(n) + "w", troupe_one / troupe_t, "tbb::parallel_for",
            tbb_one / tbb_t, "x");
  }
});

}  // namespace
