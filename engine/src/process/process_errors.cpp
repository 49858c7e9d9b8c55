#include "troupe/process_errors.hpp"

#include <cxxabi.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "common/nest.hpp"
#include "process/error_record.hpp"
#include "process/frame_codec.hpp"
#include "troupe/errors.hpp"
#include "troupe/sdk/errors.hpp"
#include "troupe/sdk/type_name.hpp"

namespace troupe {

std::string signal_name(int signal) {
  if (const char* abbrev = sigabbrev_np(signal)) {
    return std::string("SIG") + abbrev;
  }
  return "signal " + std::to_string(signal);
}

std::string WorkerCrashedError::describe(const WorkerExit& exit) {
  std::string text = "worker " + std::to_string(exit.worker_id) + " (pid " + std::to_string(exit.pid) + ")";
  if (!exit.place.empty()) {
    text += " on " + exit.place;
  }
  if (exit.signal != 0) {
    text += " was killed by " + signal_name(exit.signal);
    if (const char* what = strsignal(exit.signal)) {
      text += std::string(" (") + what + ")";
    }
  } else if (exit.exit_status) {
    text += " exited with status " + std::to_string(*exit.exit_status);
  } else {
    text += " ended (its exit status could not be collected)";
  }
  if (exit.starting) {
    text += " while starting, before it reported ready";
  }
  return text;
}

namespace {

std::string crash_message(const WorkerExit& exit, const std::string& task, std::uint64_t key,
                          const std::optional<std::size_t>& item, bool result_lost) {
  std::string text = WorkerCrashedError::describe(exit);
  if (!task.empty()) {
    text += (result_lost ? " after it ran " : " while running ") + task + " (task " + std::to_string(key);
    if (item) {
      text += ", item " + std::to_string(*item) + " of its map chunk";
    }
    text += ")";
    if (result_lost) {
      text += ": the result was lost in the crash, and a task is never run twice";
    }
  }
  if (exit.last_rss) {
    text += "; its last reported RSS was " + detail::process::format_bytes(*exit.last_rss);
  }
  if (!exit.killed_for.empty()) {
    text += "; the pool killed it: " + exit.killed_for;
  } else if (exit.signal == SIGKILL) {
    text += "; SIGKILL is what the kernel's OOM killer sends when memory runs out";
  } else if (exit.signal == SIGSEGV || exit.signal == SIGBUS || exit.signal == SIGABRT || exit.signal == SIGFPE ||
             exit.signal == SIGILL) {
    text += "; the task (or its plugin) crashed the process";
  }
  return text;
}

}  // namespace

WorkerCrashedError::WorkerCrashedError(WorkerExit exit, std::string task, std::uint64_t key,
                                       std::optional<std::size_t> item, bool result_lost)
    : Error(crash_message(exit, task, key, item, result_lost)),
      exit_(std::move(exit)),
      task_(std::move(task)),
      key_(key),
      item_(item),
      result_lost_(result_lost) {}

namespace {

// 1.5 s, 250 ms, 40 us, 1 ns.
std::string duration_text(std::chrono::nanoseconds d) {
  const double ns = static_cast<double>(d.count());
  char text[64];
  if (ns >= 1e9) {
    std::snprintf(text, sizeof text, "%.3g s", ns / 1e9);
  } else if (ns >= 1e6) {
    std::snprintf(text, sizeof text, "%.3g ms", ns / 1e6);
  } else if (ns >= 1e3) {
    std::snprintf(text, sizeof text, "%.3g us", ns / 1e3);
  } else {
    std::snprintf(text, sizeof text, "%lld ns", static_cast<long long>(d.count()));
  }
  return text;
}

std::string timeout_message(const std::string& task, std::uint64_t key, std::chrono::nanoseconds timeout,
                            std::size_t worker_id, std::int64_t pid, const std::optional<std::size_t>& item) {
  std::string text = task + " (task " + std::to_string(key);
  if (item) {
    text += ", item " + std::to_string(*item) + " of its map chunk";
  }
  text += ") ran past its time limit of " + duration_text(timeout);
  if (pid < 0) {
    // A thread pool cannot stop a thread: the task was given up, not killed.
    return text + " on thread worker " + std::to_string(worker_id) +
           "; it was given up and its cancel flag set (a result it returns later is discarded)";
  }
  return text + "; worker " + std::to_string(worker_id) + " (pid " + std::to_string(pid) +
         ") was killed and will be replaced";
}

}  // namespace

TaskTimeoutError::TaskTimeoutError(std::string task, std::uint64_t key, std::chrono::nanoseconds timeout,
                                   std::size_t worker_id, std::int64_t pid, std::optional<std::size_t> item)
    : Error(timeout_message(task, key, timeout, worker_id, pid, item)),
      task_(std::move(task)),
      key_(key),
      timeout_(timeout),
      worker_id_(worker_id),
      pid_(pid) {}

RemoteError::RemoteError(std::string remote_type, std::string remote_message, std::string stack_trace,
                         std::string what_text)
    : Error(what_text.empty() ? remote_type + ": " + remote_message : std::move(what_text)),
      remote_type_(std::move(remote_type)),
      remote_message_(std::move(remote_message)),
      stack_trace_(std::move(stack_trace)) {}

namespace detail::process {

std::string remote_stack_trace(std::exception_ptr error) {
  for (int depth = 0; error != nullptr && depth < 64; ++depth) {
    try {
      std::rethrow_exception(error);
    } catch (const RemoteError& remote) {
      return remote.stack_trace();
    } catch (const std::exception& e) {
      error = nested_cause(e);
    } catch (...) {
      return {};
    }
  }
  return {};
}

}  // namespace detail::process

std::string format_error_report(const std::exception_ptr& error) {
  std::string text = describe_exception(error);
  std::string trace = detail::process::remote_stack_trace(error);
  if (!trace.empty()) {
    // Frames from the throw site on (the capture machinery above __cxa_throw
    // is noise), each cut to a readable width: template-heavy frames run to
    // thousands of characters.
    constexpr std::size_t kMaxLine = 200;
    if (auto at = trace.find(" __cxa_throw "); at != std::string::npos) {
      if (auto next = trace.find('\n', at); next != std::string::npos) {
        trace.erase(0, next + 1);
      }
    }
    text += "\nremote stack trace:";
    std::size_t start = 0;
    while (start < trace.size()) {
      std::size_t end = trace.find('\n', start);
      if (end == std::string::npos) {
        end = trace.size();
      }
      std::string line = trace.substr(start, end - start);
      if (line.size() > kMaxLine) {
        line = line.substr(0, kMaxLine - 3) + "...";
      }
      if (!line.empty()) {
        text += "\n  " + line;
      }
      start = end + 1;
    }
  }
  return text;
}

namespace detail::process {

std::string demangle(const char* mangled) {
  return troupe::detail::readable_type_name(mangled);
}

namespace {

struct Link {
  std::string type;
  std::string message;
};

// The type of the exception being handled, demangled.
std::string current_type() {
  if (const std::type_info* type = abi::__cxa_current_exception_type()) {
    return demangle(type->name());
  }
  return "unknown";
}

void collect(std::exception_ptr error, std::vector<Link>& links) {
  while (error != nullptr && links.size() < 32) {
    std::exception_ptr next;
    try {
      std::rethrow_exception(error);
    } catch (const RemoteError& e) {
      // Carried on again (an MPI rank's process pool): the remote link as it was.
      links.push_back({e.remote_type(), e.remote_message()});
      if (const auto* nested = dynamic_cast<const std::nested_exception*>(&e)) {
        next = nested->nested_ptr();
      }
    } catch (const std::exception& e) {
      links.push_back({current_type(), e.what()});
      if (const auto* nested = dynamic_cast<const std::nested_exception*>(&e)) {
        next = nested->nested_ptr();
      }
    } catch (...) {
      links.push_back({current_type(), "(an exception not derived from std::exception)"});
    }
    error = next;
  }
}

// Remote exceptions that the host raises as its own type.
enum class LocalKind { remote, unknown_task, argument, initializer };

LocalKind local_kind(const std::string& type) {
  if (type == "troupe::UnknownTaskError") {
    return LocalKind::unknown_task;
  }
  if (type == "troupe::ArgumentError") {
    return LocalKind::argument;
  }
  if (type == "troupe::InitializerError") {
    return LocalKind::initializer;  // a worker object that could not be built for a method call
  }
  return LocalKind::remote;
}

}  // namespace

Value error_record_from_current(std::string trace) {
  std::vector<Link> links;
  collect(std::current_exception(), links);
  if (links.empty()) {
    links.push_back({"unknown", "(no exception)"});
  }
  Value causes = Value::array();
  for (std::size_t i = 1; i < links.size(); ++i) {
    causes.push_back(Value{{"type", links[i].type}, {"message", links[i].message}});
  }
  return Value{{"type", links[0].type},
               {"message", links[0].message},
               {"trace", std::move(trace)},
               {"causes", std::move(causes)}};
}

Value error_record(std::string type, std::string message) {
  return Value{{"type", std::move(type)}, {"message", std::move(message)}, {"trace", ""}, {"causes", Value::array()}};
}

namespace {

std::size_t encoded_size(const Value& v) {
  std::vector<std::uint8_t> bytes;
  MsgpackWriter(bytes).value(v);
  return bytes.size();
}

// How much of a cause's type and message the what() of the links above it quotes.
constexpr std::size_t kCauseInWhat = 200;

// Room for " [... cut: N of M bytes]" and the string header it may grow;
// the least a cause takes in a cut record (two marks, its map and keys).
constexpr std::size_t kCutMarkRoom = 64;
constexpr std::size_t kLeastCause = 2 * kCutMarkRoom + 24;

std::vector<std::string*> record_strings(Value& record) {
  std::vector<std::string*> strings;
  for (const char* key : {"type", "message", "trace"}) {
    strings.push_back(&record.at(key).get_ref<std::string&>());
  }
  for (auto& cause : record.at("causes")) {
    strings.push_back(&cause.at("type").get_ref<std::string&>());
    strings.push_back(&cause.at("message").get_ref<std::string&>());
  }
  return strings;
}

std::size_t text_size(const std::vector<std::string*>& strings) {
  std::size_t sum = 0;
  for (const std::string* s : strings) {
    sum += s->size();
  }
  return sum;
}

// The longest length every string may keep so that, marks included, they
// take at most `room` bytes. A string no longer than that plus a mark stays
// whole (cutting it would not make it shorter).
std::size_t common_cut(const std::vector<std::string*>& strings, std::size_t room) {
  const auto taken = [&](std::size_t keep) {
    std::size_t sum = 0;
    for (const std::string* s : strings) {
      sum += std::min(s->size(), keep + kCutMarkRoom);
    }
    return sum;
  };
  std::size_t low = 0;
  std::size_t high = room;
  while (low < high) {
    const std::size_t mid = low + (high - low + 1) / 2;
    if (taken(mid) <= room) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  return low;
}

// Cuts `s` to at most `keep` bytes on a UTF-8 character boundary, marked,
// unless the mark would make it no shorter.
void cut(std::string& s, std::size_t keep) {
  if (s.size() <= keep + kCutMarkRoom) {
    return;
  }
  std::size_t at = keep;
  while (at > 0 && (static_cast<unsigned char>(s[at]) & 0xc0) == 0x80) {
    --at;
  }
  const std::size_t was = s.size();
  s.resize(at);
  s += " [... cut: " + std::to_string(was - at) + " of " + std::to_string(was) + " bytes]";
}

}  // namespace

Value fit_error_record(Value record, std::size_t max_bytes) {
  try {
    auto strings = record_strings(record);
    // An upper bound of the encoded size (string headers take at most 5
    // bytes, a cause's map and keys 16): most records need no encoding here.
    if (text_size(strings) + 5 * strings.size() + 16 * strings.size() / 2 + 64 <= max_bytes) {
      return record;
    }
    if (encoded_size(record) <= max_bytes) {
      return record;
    }
    auto& causes = record.at("causes").get_ref<Value::array_t&>();
    const std::size_t room_for_causes = max_bytes > 4 * kLeastCause ? max_bytes - 4 * kLeastCause : 0;
    if (causes.size() * kLeastCause > room_for_causes) {
      const std::size_t keep = room_for_causes / kLeastCause;
      const std::size_t dropped = causes.size() - keep;
      causes.resize(keep);
      causes.push_back(
          Value{{"type", "troupe::Error"}, {"message", "(" + std::to_string(dropped) + " more causes cut)"}});
    }
    strings = record_strings(record);
    const std::size_t fixed = encoded_size(record) - text_size(strings);
    if (fixed < max_bytes) {
      const std::size_t keep = common_cut(strings, max_bytes - fixed);
      for (std::string* s : strings) {
        cut(*s, keep);
      }
      if (encoded_size(record) <= max_bytes) {
        return record;
      }
    }
  } catch (const std::exception&) {
    // Not a record of the usual shape: replaced below.
  }
  return error_record("troupe::Error", "an error too large to send to the host (over " + std::to_string(max_bytes) +
                                           " bytes encoded) that could not be cut to fit");
}

std::exception_ptr exception_from_record(const Value& record) {
  try {
    std::vector<Link> links;
    links.push_back({record.at("type").get<std::string>(), record.at("message").get<std::string>()});
    for (const auto& cause : record.at("causes")) {
      links.push_back({cause.at("type").get<std::string>(), cause.at("message").get<std::string>()});
    }
    const std::string trace = record.at("trace").get<std::string>();
    // what() of each link mentions the causes below it, each cut short:
    // a chain of long messages stays linear in memory (each message is
    // whole in its own link, and in remote_message()).
    std::vector<std::string> what(links.size());
    std::string tail;
    for (std::size_t i = links.size(); i-- > 0;) {
      what[i] = links[i].type + ": " + links[i].message + tail;
      std::string type = links[i].type;
      std::string message = links[i].message;
      cut(type, kCauseInWhat);
      cut(message, kCauseInWhat);
      tail = " (caused by " + type + ": " + message + tail + ")";
    }
    if (links.size() == 1 && links[0].type == "troupe::ResultTooLargeError") {
      return std::make_exception_ptr(ResultTooLargeError(links[0].message));
    }
    const LocalKind local = local_kind(links[0].type);
    std::exception_ptr chain;
    for (std::size_t i = links.size(); i-- > 0;) {
      RemoteError error(links[i].type, links[i].message, i == 0 ? trace : std::string(), what[i]);
      if (chain == nullptr) {
        chain = std::make_exception_ptr(std::move(error));
        continue;
      }
      chain = detail::nest(chain, std::move(error));
    }
    // The errors of the error contract arrive as themselves (the same type a
    // ThreadPool throws), the remote record nested as their cause.
    switch (local) {
      case LocalKind::unknown_task:
        return detail::nest(chain, UnknownTaskError(links[0].message));
      case LocalKind::argument:
        return detail::nest(chain, ArgumentError(links[0].message));
      case LocalKind::initializer:
        return detail::nest(chain, InitializerError(links[0].message));
      case LocalKind::remote:
        break;
    }
    return chain;
  } catch (const std::exception& e) {
    return std::make_exception_ptr(RemoteError(
        "troupe::Error", std::string("malformed remote error record: ") + e.what() + ": " + record.dump(), ""));
  }
}

}  // namespace detail::process
}  // namespace troupe
