// The places of plugins and hooks, for config::check's problems.
#include "sources.hpp"

#include "value_reader.hpp"

namespace troupe::config::detail {
namespace {

void record(EngineSpec& spec, const std::string& path, const Location& where) {
  spec.sources[path] = SourcePlace{where.origin ? *where.origin : std::string(), where.line, where.column};
}

void record_hook(const TreeNode& key, const TreeNode& hook, const std::string& path, EngineSpec& spec) {
  record(spec, path, key.where);
  if (hook.kind == TreeNode::Kind::scalar) {
    record(spec, join_path(path, "task"), hook.where);
    return;
  }
  if (hook.kind != TreeNode::Kind::map) {
    return;
  }
  if (const TreeNode* task = hook.find("task")) {
    record(spec, join_path(path, "task"), task->where);
  }
  if (const TreeNode* args = hook.find("args")) {
    const std::string args_path = join_path(path, "args");
    record(spec, args_path, args->where);
    for (std::size_t i = 0; i < args->items.size(); ++i) {
      record(spec, args_path + "[" + std::to_string(i) + "]", args->items[i].where);
    }
  }
  if (const TreeNode* kwargs = hook.find("kwargs")) {
    const std::string kwargs_path = join_path(path, "kwargs");
    record(spec, kwargs_path, kwargs->where);
    for (const auto& [name, value] : kwargs->entries) {
      record(spec, join_path(kwargs_path, name.scalar), name.where);
    }
  }
}

// A pool map's initializer and finalizer.
void record_hooks(const TreeNode& pool, const std::string& pool_path, EngineSpec& spec) {
  for (const auto& [key, value] : pool.entries) {
    if ((key.scalar == "initializer" || key.scalar == "finalizer") && !is_none(value)) {
      record_hook(key, value, join_path(pool_path, key.scalar), spec);
    }
  }
}

void record_list(EngineSpec& spec, const std::string& path, const TreeNode& list) {
  record(spec, path, list.where);
  for (std::size_t i = 0; i < list.items.size(); ++i) {
    record(spec, path + "[" + std::to_string(i) + "]", list.items[i].where);
  }
}

// jobs[i] at the job, each key at its value (a task name where it is
// written), list items at themselves, keyword arguments and inputs at their
// names.
void record_jobs(const TreeNode& jobs, EngineSpec& spec) {
  for (std::size_t i = 0; i < jobs.items.size(); ++i) {
    const TreeNode& job = jobs.items[i];
    const std::string job_path = "jobs[" + std::to_string(i) + "]";
    record(spec, job_path, job.where);
    for (const auto& [key, value] : job.entries) {
      const std::string path = join_path(job_path, key.scalar);
      if (value.kind == TreeNode::Kind::sequence) {
        record_list(spec, path, value);
      } else {
        record(spec, path, value.where);
      }
      if (key.scalar == "kwargs" || key.scalar == "inputs") {
        for (const auto& [name, inner] : value.entries) {
          record(spec, join_path(path, name.scalar), key.scalar == "kwargs" ? name.where : inner.where);
        }
      }
    }
  }
}

}  // namespace

void record_sources(const TreeNode& root, EngineSpec& spec) {
  if (const TreeNode* plugins = root.find("plugins"); plugins != nullptr) {
    for (std::size_t i = 0; i < plugins->items.size(); ++i) {
      const TreeNode& item = plugins->items[i];
      const std::string path = "plugins[" + std::to_string(i) + "]";
      record(spec, path, item.where);
      const TreeNode* file = item.kind == TreeNode::Kind::map ? item.find("path") : &item;
      record(spec, path + ".path", file != nullptr ? file->where : item.where);
    }
  }
  if (const TreeNode* jobs = root.find("jobs"); jobs != nullptr) {
    record_jobs(*jobs, spec);
  }
  const TreeNode* pools = root.find("pools");
  if (pools == nullptr) {
    return;
  }
  for (const auto& [name, pool] : pools->entries) {
    const std::string pool_path = join_path("pools", name.scalar);
    record(spec, pool_path, name.where);
    record_hooks(pool, pool_path, spec);
    for (const auto& [key, value] : pool.entries) {
      if (key.scalar == "local") {  // an mpi pool's: its hooks run on every rank
        record(spec, join_path(pool_path, "local"), key.where);
        record_hooks(value, join_path(pool_path, "local"), spec);
      }
    }
  }
}

}  // namespace troupe::config::detail
