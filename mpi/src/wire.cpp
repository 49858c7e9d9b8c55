#include "wire.hpp"

#include "common/nest.hpp"
#include "process/error_record.hpp"
#include "troupe/errors.hpp"
#include "troupe/process_errors.hpp"

namespace troupe::mpi::detail {

namespace process = troupe::detail::process;

namespace {

Value record_of(const std::exception_ptr& error) {
  std::string trace = process::remote_stack_trace(error);
  try {
    std::rethrow_exception(error);
  } catch (...) {
    return process::error_record_from_current(std::move(trace));
  }
}

Value optional_value(const auto& optional) {
  return optional ? Value(*optional) : Value(nullptr);
}

}  // namespace

Value encode_error(const std::exception_ptr& error) noexcept {
  try {
    Value out{{"record", record_of(error)}};
    try {
      std::rethrow_exception(error);
    } catch (const WorkerCrashedError& e) {
      const WorkerExit& exit = e.exit();
      out["kind"] = "crash";
      out["exit"] = Value{{"worker", exit.worker_id},
                          {"pid", exit.pid},
                          {"signal", exit.signal},
                          {"status", optional_value(exit.exit_status)},
                          {"rss", optional_value(exit.last_rss)},
                          {"starting", exit.starting},
                          {"killed_for", exit.killed_for}};
      out["task"] = e.task();
      out["item"] = optional_value(e.item());
      out["result_lost"] = e.result_lost();
    } catch (const TaskTimeoutError& e) {
      out["kind"] = "timeout";
      out["task"] = e.task();
      out["timeout_ns"] = e.timeout().count();
      out["worker"] = e.worker_id();
      out["pid"] = e.pid();
    } catch (const BrokenPoolError&) {
      out["kind"] = "broken";
    } catch (const CancelledError&) {
      out["kind"] = "cancelled";
    } catch (...) {
      out["kind"] = "other";
    }
    return out;
  } catch (...) {
    return Value{{"kind", "other"},
                 {"record", process::error_record("troupe::Error", "an error that could not be encoded")}};
  }
}

std::exception_ptr decode_error(const Value& error, std::uint64_t key, const std::string& where) noexcept {
  try {
    const Value& record = error.at("record");
    const std::string kind = error.at("kind").get<std::string>();
    const std::string message = record.at("message").get<std::string>();
    if (kind == "crash") {
      const Value& e = error.at("exit");
      WorkerExit exit;
      exit.worker_id = e.at("worker").get<std::size_t>();
      exit.pid = e.at("pid").get<std::int64_t>();
      exit.signal = e.at("signal").get<int>();
      if (!e.at("status").is_null()) {
        exit.exit_status = e.at("status").get<int>();
      }
      if (!e.at("rss").is_null()) {
        exit.last_rss = e.at("rss").get<std::uint64_t>();
      }
      exit.starting = e.at("starting").get<bool>();
      exit.killed_for = e.at("killed_for").get<std::string>();
      exit.place = where;
      std::optional<std::size_t> item;
      if (!error.at("item").is_null()) {
        item = error.at("item").get<std::size_t>();
      }
      return std::make_exception_ptr(WorkerCrashedError(std::move(exit), error.at("task").get<std::string>(), key, item,
                                                        error.at("result_lost").get<bool>()));
    }
    if (kind == "timeout") {
      // The rank's own message (which item, killed or given up) is the cause.
      return troupe::detail::nest(
          process::exception_from_record(record),
          TaskTimeoutError(error.at("task").get<std::string>(), key,
                           std::chrono::nanoseconds(error.at("timeout_ns").get<std::int64_t>()),
                           error.at("worker").get<std::size_t>(), error.at("pid").get<std::int64_t>()));
    }
    if (kind == "broken") {
      return troupe::detail::nest(process::exception_from_record(record),
                                  BrokenPoolError("the local pool of " + where + " is broken: " + message));
    }
    if (kind == "cancelled") {
      return std::make_exception_ptr(CancelledError(message));
    }
    return process::exception_from_record(record);
  } catch (const std::exception& e) {
    return std::make_exception_ptr(
        RemoteError("troupe::Error", std::string("malformed error from ") + where + ": " + e.what(), ""));
  }
}

void write_outcome(MsgpackWriter& out, const Outcome<Value>& outcome) {
  if (outcome.ok()) {
    out.fixint(static_cast<std::uint8_t>(OutcomeKind::value));
    out.value(outcome.value());
    return;
  }
  try {
    std::rethrow_exception(outcome.error());
  } catch (const BrokenPoolError&) {
    // A broken local pool is an error rank 0 acts on, not a plain cancel.
  } catch (const CancelledError& e) {
    out.fixint(static_cast<std::uint8_t>(OutcomeKind::cancelled));
    out.str(e.what());
    return;
  } catch (...) {
  }
  out.fixint(static_cast<std::uint8_t>(OutcomeKind::error));
  out.value(encode_error(outcome.error()));
}

Outcome<Value> read_outcome(MsgpackReader& in, std::uint64_t key, const std::string& where) {
  switch (static_cast<OutcomeKind>(in.small_uinteger())) {
    case OutcomeKind::value:
      return Outcome<Value>(in.value());
    case OutcomeKind::error:
      return Outcome<Value>(decode_error(in.value(), key, where));
    case OutcomeKind::cancelled:
      return Outcome<Value>(std::make_exception_ptr(CancelledError(std::string(in.str()))));
  }
  throw process::FrameError("an outcome of unknown kind from " + where);
}

void write_stats(MsgpackWriter& out, const PoolStats& s) {
  for (const std::uint64_t v :
       {std::uint64_t{s.live_workers}, std::uint64_t{s.idle_workers}, std::uint64_t{s.busy_workers},
        std::uint64_t{s.queued}, s.submitted, s.completed, s.failed, s.cancelled, s.spawned, s.retired.idle_timeout,
        s.retired.max_tasks, s.retired.memory, s.retired.crash, s.retired.shutdown, std::uint64_t{s.peak_queue},
        s.times_hit_max_workers}) {
    out.uinteger(v);
  }
  out.map_header(s.crashes_by_cause.size());
  for (const auto& [cause, count] : s.crashes_by_cause) {
    out.str(cause);
    out.uinteger(count);
  }
}

PoolStats read_stats(MsgpackReader& in) {
  PoolStats s;
  s.live_workers = in.uinteger();
  s.idle_workers = in.uinteger();
  s.busy_workers = in.uinteger();
  s.queued = in.uinteger();
  s.submitted = in.uinteger();
  s.completed = in.uinteger();
  s.failed = in.uinteger();
  s.cancelled = in.uinteger();
  s.spawned = in.uinteger();
  s.retired.idle_timeout = in.uinteger();
  s.retired.max_tasks = in.uinteger();
  s.retired.memory = in.uinteger();
  s.retired.crash = in.uinteger();
  s.retired.shutdown = in.uinteger();
  s.peak_queue = in.uinteger();
  s.times_hit_max_workers = in.uinteger();
  for (std::size_t n = in.map_header(); n > 0; --n) {
    std::string cause(in.str());
    s.crashes_by_cause[cause] = in.uinteger();
  }
  return s;
}

}  // namespace troupe::mpi::detail
