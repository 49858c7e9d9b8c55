// troupe/sdk/task_context.hpp
//
// troupe::TaskContext: what a running task may ask of its engine. A task
// takes it as an optional first parameter (`TaskContext&`).
//
// cancelled() turns true when the task's future was cancelled while it ran
// or its pool is shutting down with cancel_pending; a long task polls it
// and returns early. The context lives for the duration of one call and
// views the name, flag and services table it was given: they must outlive
// it. services() is null unless the engine offers a table; without one
// given, the worker's (Worker::services()) is used. counter(name) and
// dict(name) reach the pool's shared state (troupe/sdk/shared.hpp) and throw
// SharedStateError for a name the pool does not have.
#pragma once

#include <atomic>
#include <string_view>

#include "troupe/sdk/abi.hpp"
#include "troupe/sdk/config.hpp"
#include "troupe/sdk/shared.hpp"
#include "troupe/sdk/worker.hpp"

namespace troupe {

class TROUPE_SDK_VISIBLE TaskContext {
 public:
  TaskContext(std::string_view task_name, Worker& worker, const std::atomic<bool>* cancel_flag = nullptr,
              const troupe_task_services* services = nullptr) noexcept
      : task_name_(task_name),
        worker_(&worker),
        cancel_flag_(cancel_flag),
        services_(services != nullptr ? services : worker.services()) {}

  // The qualified name, `plugin.task`.
  std::string_view task_name() const noexcept { return task_name_; }
  // The worker running this call; its state is what the initializer left.
  Worker& worker() const noexcept { return *worker_; }
  // True once cooperative cancellation was requested.
  bool cancelled() const noexcept { return cancel_flag_ != nullptr && cancel_flag_->load(std::memory_order_relaxed); }
  // The engine's services table for this call, or null (see troupe/sdk/abi.hpp).
  const troupe_task_services* services() const noexcept { return services_; }
  SharedCounter counter(std::string_view name) const { return detail::shared::find_counter(services_, name); }
  SharedDict dict(std::string_view name) const { return detail::shared::find_dict(services_, name); }

 private:
  std::string_view task_name_;
  Worker* worker_;
  const std::atomic<bool>* cancel_flag_;
  const troupe_task_services* services_;
};

}  // namespace troupe
