// troupe/wait.hpp
//
// Waiting on many futures: wait(futures, timeout, return_when) splits them
// into done / not_done; as_completed(futures, timeout, keep_order) yields
// them as they finish (concurrent.futures semantics).
//
// Guarantees: duplicates (copies of one future) count once; futures already
// done come first from as_completed, in input order; a timeout covers the
// whole call or iteration: wait() then returns a partial split, and
// as_completed throws TimeoutError("N (of M) futures unfinished") from ++
// (or begin()). first_exception returns at the first *failed* future (a
// cancelled one is not an exception) or when all are done.
// Thread safety: the futures may complete on any thread; an AsCompleted
// range is used by one thread.
// Hazards: both register a done callback on every unfinished future; a
// future that never finishes keeps that small callback until it does.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "troupe/errors.hpp"
#include "troupe/future.hpp"

namespace troupe {

enum class ReturnWhen { first_completed, first_exception, all_completed };

template <class T>
struct WaitResult {
  std::vector<Future<T>> done;
  std::vector<Future<T>> not_done;
};

namespace detail {

template <class T>
std::vector<Future<T>> unique_futures(const std::vector<Future<T>>& futures) {
  std::vector<Future<T>> out;
  std::unordered_set<const FutureCore*> seen;
  for (const auto& f : futures) {
    if (!f.valid()) {
      throw UsageError("wait/as_completed: a future has no state");
    }
    if (seen.insert(detail::FutureAccess::core(f)).second) {
      out.push_back(f);
    }
  }
  return out;
}

inline std::chrono::steady_clock::time_point deadline_time_point(std::int64_t ns) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::nanoseconds(ns)));
}

// Completion notices from done callbacks, by input index.
struct CompletionQueue {
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::size_t> ready;
  std::size_t failed = 0;
};

}  // namespace detail

template <class T>
WaitResult<T> wait(const std::vector<Future<T>>& futures, Timeout timeout = std::nullopt,
                   ReturnWhen return_when = ReturnWhen::all_completed) {
  const auto deadline = detail::deadline_after(timeout);
  auto unique = detail::unique_futures(futures);
  auto queue = std::make_shared<detail::CompletionQueue>();
  for (std::size_t i = 0; i < unique.size(); ++i) {
    unique[i].add_done_callback([queue, i](const Future<T>& f) {
      std::lock_guard lock(queue->mutex);
      queue->ready.push_back(i);
      if (f.state() == FutureState::failed) {
        ++queue->failed;
      }
      queue->cv.notify_all();
    });
  }
  {
    const detail::BlockedScope blocked;  // on a pool's worker: the pool may stand in for it
    std::unique_lock lock(queue->mutex);
    auto satisfied = [&] {
      const auto done = queue->ready.size();
      switch (return_when) {
        case ReturnWhen::first_completed:
          return done > 0 || unique.empty();
        case ReturnWhen::first_exception:
          return queue->failed > 0 || done == unique.size();
        case ReturnWhen::all_completed:
          return done == unique.size();
      }
      return true;
    };
    if (deadline) {
      queue->cv.wait_until(lock, detail::deadline_time_point(*deadline), satisfied);
    } else {
      queue->cv.wait(lock, satisfied);
    }
  }
  WaitResult<T> result;
  for (auto& f : unique) {
    (f.done() ? result.done : result.not_done).push_back(std::move(f));
  }
  return result;
}

// The range as_completed returns: yields each future once, as it finishes
// (or in input order with keep_order).
template <class T>
class AsCompleted {
 public:
  class iterator {
   public:
    using value_type = Future<T>;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::input_iterator_tag;
    using iterator_category = std::input_iterator_tag;

    iterator() = default;
    explicit iterator(AsCompleted* owner) : owner_(owner) {}
    const Future<T>& operator*() const { return owner_->current_; }
    const Future<T>* operator->() const { return &owner_->current_; }
    iterator& operator++() {
      if (!owner_->advance()) {
        owner_ = nullptr;
      }
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.owner_ == nullptr; }

   private:
    AsCompleted* owner_ = nullptr;
  };

  AsCompleted(const std::vector<Future<T>>& futures, Timeout timeout, bool keep_order)
      : futures_(detail::unique_futures(futures)),
        deadline_(detail::deadline_after(timeout)),
        keep_order_(keep_order),
        queue_(std::make_shared<detail::CompletionQueue>()) {
    if (!keep_order_) {
      for (std::size_t i = 0; i < futures_.size(); ++i) {
        futures_[i].add_done_callback([queue = queue_, i](const Future<T>&) {
          std::lock_guard lock(queue->mutex);
          queue->ready.push_back(i);
          queue->cv.notify_all();
        });
      }
    }
  }
  AsCompleted(const AsCompleted&) = delete;
  AsCompleted& operator=(const AsCompleted&) = delete;

  iterator begin() { return advance() ? iterator(this) : iterator(); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  bool advance() {
    if (yielded_ == futures_.size()) {
      current_ = Future<T>();
      return false;
    }
    std::size_t index = 0;
    if (keep_order_) {
      index = yielded_;
      Timeout left;
      if (deadline_) {
        left = std::chrono::nanoseconds(std::max<std::int64_t>(0, *deadline_ - detail::now_ns()));
      }
      if (!futures_[index].wait(left)) {
        time_out();
      }
    } else {
      const detail::BlockedScope blocked;  // on a pool's worker: the pool may stand in for it
      std::unique_lock lock(queue_->mutex);
      auto ready = [&] {
        return !queue_->ready.empty();
      };
      if (deadline_) {
        if (!queue_->cv.wait_until(lock, detail::deadline_time_point(*deadline_), ready)) {
          lock.unlock();
          time_out();
        }
      } else {
        queue_->cv.wait(lock, ready);
      }
      index = queue_->ready.front();
      queue_->ready.pop_front();
    }
    ++yielded_;
    current_ = futures_[index];
    futures_[index] = Future<T>();  // no reference kept to what was yielded
    return true;
  }

  [[noreturn]] void time_out() {
    const auto left = futures_.size() - yielded_;
    throw TimeoutError(std::to_string(left) + " (of " + std::to_string(futures_.size()) + ") futures unfinished");
  }

  std::vector<Future<T>> futures_;
  detail::Deadline deadline_;
  bool keep_order_;
  std::shared_ptr<detail::CompletionQueue> queue_;
  std::size_t yielded_ = 0;
  Future<T> current_;
};

// Yields the futures as they complete (keep_order: in input order). The
// returned range must be iterated where it was made (it is not movable).
template <class T>
AsCompleted<T> as_completed(const std::vector<Future<T>>& futures, Timeout timeout = std::nullopt,
                            bool keep_order = false) {
  return AsCompleted<T>(futures, timeout, keep_order);
}

}  // namespace troupe
