#include "troupe/mpi_pool.hpp"

#include "host_core.hpp"

namespace troupe {

MpiPool::MpiPool(std::vector<std::filesystem::path> plugins, MpiPoolOptions options)
    : core_(std::make_unique<mpi::detail::HostCore>(std::move(plugins), std::move(options))) {}

MpiPool::~MpiPool() = default;

Future<Value> MpiPool::submit_call(Call call) {
  return core_->submit_call(std::move(call), std::nullopt);
}
Future<std::vector<Outcome<Value>>> MpiPool::submit_chunk(std::string task, std::vector<Args> items) {
  return core_->submit_chunk(std::move(task), std::move(items), std::nullopt);
}
Future<Value> MpiPool::submit_call(Call call, std::chrono::nanoseconds timeout) {
  return core_->submit_call(std::move(call), timeout);
}
Future<std::vector<Outcome<Value>>> MpiPool::submit_chunk(std::string task, std::vector<Args> items,
                                                          std::chrono::nanoseconds timeout) {
  return core_->submit_chunk(std::move(task), std::move(items), timeout);
}

bool MpiPool::takes_time_limits() const noexcept {
  return std::holds_alternative<ProcessPoolOptions>(core_->options().local);
}

void MpiPool::shutdown(const ShutdownOptions& options) {
  core_->shutdown(options);
}
void MpiPool::interrupt_running() {
  core_->interrupt_running();
}
bool MpiPool::join(Timeout timeout) {
  return core_->join(timeout);
}
void MpiPool::check() const {
  core_->check();
}
void MpiPool::test() {
  core_->test();
}
void MpiPool::spawn_workers(std::size_t n) {
  core_->spawn_workers(n);
}
std::size_t MpiPool::max_workers() const {
  return core_->max_workers();
}
PoolGauges MpiPool::gauges() const {
  return core_->gauges();
}
std::vector<CancelledTask> MpiPool::cancelled_tasks() const {
  return core_->cancelled_tasks();
}
PoolStats MpiPool::stats() const {
  return core_->stats();
}
int MpiPool::ranks() const noexcept {
  return core_->ranks();
}
std::vector<RankStats> MpiPool::rank_stats() const {
  return core_->rank_stats();
}
const MpiPoolOptions& MpiPool::options() const noexcept {
  return core_->options();
}

}  // namespace troupe
