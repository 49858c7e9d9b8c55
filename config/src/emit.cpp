// to_yaml: a spec written back as a version-1 file that loads to the same
// spec: every option of every pool and job explicit, durations in their largest exact unit,
// strings double-quoted with ${ escaped so nothing is re-read as a number,
// a null or a variable.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <variant>

#include "troupe/config.hpp"

namespace troupe::config {
namespace {

std::string duration_text(std::chrono::nanoseconds d) {
  struct Unit {
    std::int64_t ns;
    const char* suffix;
  };
  static constexpr Unit kUnits[] = {{3'600'000'000'000, "h"}, {60'000'000'000, "m"}, {1'000'000'000, "s"},
                                    {1'000'000, "ms"},        {1'000, "us"},         {1, "ns"}};
  for (const auto& unit : kUnits) {
    if (d.count() % unit.ns == 0) {
      return std::to_string(d.count() / unit.ns) + unit.suffix;
    }
  }
  return std::to_string(d.count()) + "ns";
}

std::string escaped(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "${") == 0) {
      out += '$';  // $${ reads back as a literal ${
    }
    out += text[i];
  }
  return out;
}

void quoted(YAML::Emitter& out, const std::string& text) {
  out << YAML::DoubleQuoted << escaped(text);
}

void emit_value(YAML::Emitter& out, const Value& value) {
  switch (value.type()) {
    case Value::value_t::null:
      out << YAML::Null;
      break;
    case Value::value_t::boolean:
      out << value.get<bool>();
      break;
    case Value::value_t::number_integer:
    case Value::value_t::number_unsigned:
    case Value::value_t::number_float:
      out << value.dump();  // shortest text that reads back to the same number
      break;
    case Value::value_t::string:
      quoted(out, value.get<std::string>());
      break;
    case Value::value_t::array:
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& item : value) {
        emit_value(out, item);
      }
      out << YAML::EndSeq;
      break;
    case Value::value_t::object:
      out << YAML::Flow << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key;
        quoted(out, key);
        out << YAML::Value;
        emit_value(out, item);
      }
      out << YAML::EndMap;
      break;
    case Value::value_t::binary:
    case Value::value_t::discarded:
      throw UsageError("a binary value cannot be written to a configuration file");
  }
}

void emit_call(YAML::Emitter& out, const char* key, const std::optional<Call>& call) {
  out << YAML::Key << key << YAML::Value;
  if (!call) {
    out << "none";
    return;
  }
  out << YAML::BeginMap << YAML::Key << "task" << YAML::Value;
  quoted(out, call->task);
  out << YAML::Key << "args" << YAML::Value;
  emit_value(out, Value(call->args));
  out << YAML::Key << "kwargs" << YAML::Value;
  emit_value(out, Value(call->kwargs));
  out << YAML::EndMap;
}

std::optional<Call> hook_call(const std::string& pool, const char* key, const WorkerHook& hook) {
  if (hook.callable()) {
    throw UsageError("pool '" + pool + "' has a C++ " + key + ", which a configuration file cannot hold");
  }
  return hook.plugin_call();
}

template <class T>
void emit_limit(YAML::Emitter& out, const char* key, const std::optional<T>& value) {
  out << YAML::Key << key << YAML::Value;
  if (!value) {
    out << "none";
  } else if constexpr (std::is_same_v<T, std::chrono::nanoseconds>) {
    out << duration_text(*value);
  } else {
    out << *value;
  }
}

const char* policy_text(QueueFullPolicy policy) {
  return policy == QueueFullPolicy::fail ? "fail" : policy == QueueFullPolicy::caller_runs ? "caller_runs" : "block";
}

template <class Options>
void emit_shared(YAML::Emitter& out, const std::string& pool, const Options& o) {
  out << YAML::Key << "workers" << YAML::Value << o.max_workers;
  out << YAML::Key << "min_workers" << YAML::Value << o.min_workers;
  emit_limit(out, "idle_timeout", o.idle_timeout);
  emit_limit(out, "max_tasks_per_worker", o.max_tasks_per_worker);
  if constexpr (std::is_same_v<Options, ThreadPoolOptions>) {
    emit_call(out, "initializer", hook_call(pool, "initializer", o.initializer));
    emit_call(out, "finalizer", hook_call(pool, "finalizer", o.finalizer));
  } else {
    emit_call(out, "initializer", o.initializer);
    emit_call(out, "finalizer", o.finalizer);
  }
  emit_limit(out, "queue_limit", o.queue_limit);
  out << YAML::Key << "queue_full_policy" << YAML::Value << policy_text(o.queue_full_policy);
}

void emit_process(YAML::Emitter& out, const ProcessPoolOptions& o) {
  out << YAML::Key << "recycle_jitter" << YAML::Value << o.recycle_jitter;
  emit_limit(out, "max_memory_per_worker", o.max_memory_per_worker);
  out << YAML::Key << "env" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, value] : o.env) {
    out << YAML::Key;
    quoted(out, name);
    out << YAML::Value;
    quoted(out, value);
  }
  out << YAML::EndMap;
  emit_limit(out, "task_timeout", o.task_timeout);
  out << YAML::Key << "on_worker_crash" << YAML::Value
      << (o.on_worker_crash == OnWorkerCrash::break_pool ? "break" : "respawn");
  out << YAML::Key << "startup_timeout" << YAML::Value << duration_text(o.startup_timeout);
  out << YAML::Key << "shutdown_grace" << YAML::Value << duration_text(o.shutdown_grace);
  out << YAML::Key << "max_frame" << YAML::Value << o.max_frame;
  out << YAML::Key << "crash_storm" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "max" << YAML::Value << o.crash_storm.max;
  out << YAML::Key << "within" << YAML::Value << duration_text(o.crash_storm.within) << YAML::EndMap;
  if (!o.worker_executable.empty()) {
    out << YAML::Key << "worker_executable" << YAML::Value;
    quoted(out, std::filesystem::absolute(o.worker_executable).lexically_normal().string());
  }
}

void emit_shared_state(YAML::Emitter& out, const SharedDeclarations& shared) {
  if (shared.empty()) {
    return;
  }
  out << YAML::Key << "shared" << YAML::Value << YAML::BeginMap;
  if (!shared.counters.empty()) {
    out << YAML::Key << "counters" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& name : shared.counters) {
      quoted(out, name);
    }
    out << YAML::EndSeq;
  }
  if (!shared.dicts.empty()) {
    out << YAML::Key << "dicts" << YAML::Value << YAML::BeginMap;
    for (const auto& [name, options] : shared.dicts) {
      out << YAML::Key;
      quoted(out, name);
      out << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "capacity" << YAML::Value << options.capacity
          << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
}

// A pool's kind and every option of it; an mpi pool's local pool nested
// under local: as a pool of its own.
void emit_kind_and_options(YAML::Emitter& out, const std::string& pool, const ThreadPoolOptions& o) {
  out << YAML::Key << "kind" << YAML::Value << "thread";
  emit_shared(out, pool, o);
  out << YAML::Key << "spin_before_sleep" << YAML::Value << duration_text(o.spin_before_sleep);
}

void emit_kind_and_options(YAML::Emitter& out, const std::string& pool, const ProcessPoolOptions& o) {
  out << YAML::Key << "kind" << YAML::Value << "process";
  emit_shared(out, pool, o);
  emit_process(out, o);
}

void emit_kind_and_options(YAML::Emitter& out, const std::string& pool, const MpiPoolOptions& o) {
  out << YAML::Key << "kind" << YAML::Value << "mpi";
  out << YAML::Key << "local" << YAML::Value << YAML::BeginMap;
  std::visit([&](const auto& local) { emit_kind_and_options(out, pool, local); }, o.local);
  out << YAML::EndMap;
  out << YAML::Key << "frames_per_worker" << YAML::Value << o.frames_per_worker;
  emit_limit(out, "queue_limit", o.queue_limit);
  out << YAML::Key << "queue_full_policy" << YAML::Value << policy_text(o.queue_full_policy);
  out << YAML::Key << "startup_timeout" << YAML::Value << duration_text(o.startup_timeout);
}

void emit_pool(YAML::Emitter& out, const PoolSpec& pool) {
  out << YAML::Key;
  quoted(out, pool.name);
  out << YAML::Value << YAML::BeginMap;
  std::visit([&](const auto& options) { emit_kind_and_options(out, pool.name, options); }, pool.options);
  if (std::holds_alternative<MpiPoolOptions>(pool.options) && !pool.shared.empty()) {
    // A file that says so would not load: shared state lives in one machine's memory.
    throw UsageError("pool '" + pool.name + "' is of kind mpi and declares shared counters or dicts, which a " +
                     "configuration file cannot hold");
  }
  emit_shared_state(out, pool.shared);
  out << YAML::EndMap;
}

void emit_path(YAML::Emitter& out, const char* key, const std::filesystem::path& path) {
  out << YAML::Key << key << YAML::Value;
  quoted(out, std::filesystem::absolute(path).lexically_normal().string());
}

void emit_inputs(YAML::Emitter& out, const JobInputSpec& inputs) {
  out << YAML::Key << "inputs" << YAML::Value << YAML::BeginMap;
  switch (inputs.kind) {
    case JobInputSpec::Kind::items:
      out << YAML::Key << "items" << YAML::Value;
      emit_value(out, Value(inputs.items));
      break;
    case JobInputSpec::Kind::range:
      out << YAML::Key << "range" << YAML::Value << YAML::Flow << YAML::BeginSeq << inputs.start << inputs.stop
          << inputs.step << YAML::EndSeq;
      break;
    case JobInputSpec::Kind::lines:
      emit_path(out, "lines", inputs.path);
      break;
    case JobInputSpec::Kind::jsonl:
      emit_path(out, "jsonl", inputs.path);
      break;
    case JobInputSpec::Kind::glob:
      // A pattern is not a file: absolute() would not add what a pattern means.
      out << YAML::Key << "glob" << YAML::Value;
      quoted(out, inputs.pattern);
      break;
    case JobInputSpec::Kind::from:
      out << YAML::Key << "from" << YAML::Value;
      quoted(out, inputs.from);
      break;
  }
  if (inputs.key_field) {
    out << YAML::Key << "key" << YAML::Value;
    quoted(out, *inputs.key_field);
  }
  out << YAML::EndMap;
}

void emit_job(YAML::Emitter& out, const JobSpec& job) {
  out << YAML::BeginMap;
  for (const auto& [key, text] : {std::pair{"name", &job.name}, {"pool", &job.pool}, {"task", &job.task}}) {
    out << YAML::Key << key << YAML::Value;
    quoted(out, *text);
  }
  out << YAML::Key << "args" << YAML::Value;
  emit_value(out, Value(job.args));
  out << YAML::Key << "kwargs" << YAML::Value;
  emit_value(out, Value(job.kwargs));
  emit_inputs(out, job.inputs);
  out << YAML::Key << "chunk_size" << YAML::Value;
  if (job.chunk_size == 0) {
    out << "auto";
  } else {
    out << job.chunk_size;
  }
  out << YAML::Key << "retries" << YAML::Value << job.retries;
  emit_limit(out, "timeout", job.timeout);
  if (!job.output.empty()) {  // a spec written in C++ may leave it to the default
    emit_path(out, "output", job.output);
  }
  out << YAML::Key << "after" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const auto& name : job.after) {
    quoted(out, name);
  }
  out << YAML::EndSeq << YAML::EndMap;
}

}  // namespace

std::string to_yaml(const EngineSpec& spec) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "version" << YAML::Value << 1;
  out << YAML::Key << "plugins" << YAML::Value << YAML::BeginSeq;
  for (const auto& plugin : spec.plugins) {
    out << YAML::BeginMap << YAML::Key << "path" << YAML::Value;
    quoted(out, std::filesystem::absolute(plugin.path).lexically_normal().string());
    if (plugin.sha256) {
      out << YAML::Key << "sha256" << YAML::Value;
      quoted(out, *plugin.sha256);
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::Key << "pools" << YAML::Value << YAML::BeginMap;
  for (const auto& pool : spec.pools) {
    emit_pool(out, pool);
  }
  out << YAML::EndMap;
  if (!spec.jobs.empty()) {
    out << YAML::Key << "jobs" << YAML::Value << YAML::BeginSeq;
    for (const auto& job : spec.jobs) {
      emit_job(out, job);
    }
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace troupe::config
