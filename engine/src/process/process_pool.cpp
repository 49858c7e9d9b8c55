// ProcessPool: the public face of detail::process::PoolCore (pool_core.hpp).
#include "troupe/process_pool.hpp"

#include <exception>

#include "common/log.hpp"
#include "process/pool_core.hpp"

namespace troupe {

ProcessPool::ProcessPool(std::vector<std::filesystem::path> plugins, ProcessPoolOptions options)
    : core_(std::make_unique<detail::process::PoolCore>(std::move(plugins), std::move(options))) {}

ProcessPool::~ProcessPool() {
  if (core_->on_reactor_thread()) {
    detail::log(LogLevel::critical, "ProcessPool '" + core_->options.name +
                                        "' destroyed from its own reactor thread (a done callback held the last "
                                        "reference); terminating");
    std::terminate();
  }
  core_->request_shutdown({.wait = true});
}

Future<Value> ProcessPool::submit_call(Call call) {
  return core_->submit_call(std::move(call), std::nullopt);
}

Future<std::vector<Outcome<Value>>> ProcessPool::submit_chunk(std::string task, std::vector<Args> items) {
  return core_->submit_chunk(std::move(task), std::move(items), std::nullopt);
}

Future<Value> ProcessPool::submit_call(Call call, std::chrono::nanoseconds timeout) {
  return core_->submit_call(std::move(call), timeout);
}

Future<std::vector<Outcome<Value>>> ProcessPool::submit_chunk(std::string task, std::vector<Args> items,
                                                              std::chrono::nanoseconds timeout) {
  return core_->submit_chunk(std::move(task), std::move(items), timeout);
}

void ProcessPool::shutdown(const ProcessShutdownOptions& options) {
  core_->request_shutdown(options);
}
void ProcessPool::shutdown_processes(const ProcessShutdownOptions& options) {
  core_->request_shutdown(options);
}

void ProcessPool::interrupt_running() {
  core_->request_interrupt();
}

bool ProcessPool::join(Timeout timeout) {
  return core_->join(timeout);
}

void ProcessPool::check() const {
  core_->throw_if_unavailable();
}

void ProcessPool::test() {
  ProcessPoolOptions replica_options = core_->options;
  replica_options.max_workers = 1;
  replica_options.min_workers = 0;
  replica_options.name = core_->options.name + "-test";
  replica_options.worker_executable = core_->worker_executable();
  ProcessPool replica(core_->plugins, replica_options);
  // An empty chunk is a round trip through a started worker: plugins loaded, initializer run.
  replica.submit_chunk("", {}).get();
  replica.shutdown({.wait = true});
  if (const auto broken = replica.core_->broken_error()) {
    std::rethrow_exception(broken);
  }
}

void ProcessPool::spawn_workers(std::size_t n) {
  core_->spawn_workers(n);
}

std::size_t ProcessPool::max_workers() const {
  return core_->max_workers;
}
PoolGauges ProcessPool::gauges() const {
  return core_->gauges();
}

std::vector<CancelledTask> ProcessPool::cancelled_tasks() const {
  return core_->cancelled_list_copy();
}

PoolStats ProcessPool::stats() const {
  return core_->stats_snapshot();
}

const ProcessPoolOptions& ProcessPool::options() const noexcept {
  return core_->options;
}
const std::vector<std::filesystem::path>& ProcessPool::plugins() const noexcept {
  return core_->plugins;
}

std::vector<std::int64_t> ProcessPool::worker_pids() const {
  return core_->pid_list();
}

std::vector<std::string> ProcessPool::task_names() const {
  std::vector<std::string> names;
  if (const auto* table = core_->tasks()) {
    for (const auto& [name, signature] : table->tasks) {
      names.push_back(name);
    }
  }
  return names;
}

}  // namespace troupe
