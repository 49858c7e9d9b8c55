// Pool tasks that run plugin calls: one call, or one map chunk.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "troupe/detail/chunk_loop.hpp"
#include "troupe/future.hpp"
#include "troupe/outcome.hpp"
#include "troupe/sdk/descriptor.hpp"

namespace troupe::detail {

class PluginCallTask final : public FutureData<Value> {
 public:
  PluginCallTask(const TaskInfo& info, Call call) : FutureData<Value>(0, 2), info_(&info), call_(std::move(call)) {}

  void run(Worker& worker) noexcept override {
    try {
      TaskContext ctx(call_.task, worker, cancel_flag());
      set_value(info_->invoke(ctx, call_.args, call_.kwargs));
    } catch (...) {
      set_exception(std::current_exception());
    }
  }
  std::string describe() const override { return call_.task; }

 private:
  const TaskInfo* info_;
  Call call_;
};

// Applies one task to each item's positional arguments; each item's value or
// error is captured. Items left when the chunk's future is cancelled while it
// runs end with CancelledError.
class PluginChunkTask final : public FutureData<std::vector<Outcome<Value>>> {
 public:
  PluginChunkTask(const TaskInfo& info, std::string task, std::vector<Args> items)
      : FutureData<std::vector<Outcome<Value>>>(0, 2), info_(&info), task_(std::move(task)), items_(std::move(items)) {}

  void run(Worker& worker) noexcept override {
    try {
      std::vector<Outcome<Value>> results;
      results.reserve(items_.size());
      const Kwargs no_kwargs;
      TaskContext ctx(task_, worker, cancel_flag());
      const ChunkTally tally = run_chunk_items(
          items_.size(), [&] { return ctx.cancelled(); },
          [&](std::size_t i) {
            try {
              results.emplace_back(info_->invoke(ctx, items_[i], no_kwargs));
              return true;
            } catch (...) {
              results.emplace_back(std::current_exception());
              return false;
            }
          },
          [&](std::size_t) {
            results.emplace_back(std::make_exception_ptr(CancelledError("map item of '" + task_ + "' cancelled")));
          });
      items_ = {};
      report_items(tally.ok, tally.failed, tally.cancelled);
      set_value(std::move(results));
    } catch (...) {
      set_exception(std::current_exception());
    }
  }
  std::string describe() const override { return task_ + " (chunk of " + std::to_string(items_.size()) + ")"; }

 private:
  const TaskInfo* info_;
  std::string task_;
  std::vector<Args> items_;
};

}  // namespace troupe::detail
