// troupe/errors.hpp
//
// The engine's errors, on top of the SDK's family (troupe::Error, UsageError,
// ArgumentError, PluginError, UnknownTaskError, CancelledError,
// BrokenPoolError, InitializerError).
//
// Guarantees: every error here derives from troupe::Error. A BrokenPoolError
// (and so InitializerError and FinalizerError) carries what broke the pool as
// its nested exception: catch it and call std::rethrow_if_nested(e), or use
// troupe::nested_cause(e).
// Hazards: BrokenPoolError derives from CancelledError on purpose: a future
// cancelled because its pool broke is still a cancelled future, so
// `catch (const CancelledError&)` also catches broken-pool cancellations.
#pragma once

#include <exception>
#include <string>
#include <vector>

#include "troupe/sdk/errors.hpp"

namespace troupe {

// A worker's finalizer threw; the nested cause is its exception.
class FinalizerError : public BrokenPoolError {
 public:
  using BrokenPoolError::BrokenPoolError;
};

// A wait with a timeout (future, wait(), as_completed, map) ran out of time.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

// A bounded queue was full under the `fail` policy, or try_submit found it full.
class QueueFullError : public Error {
 public:
  using Error::Error;
};

// A pipeline's input or output could not be read or written, or one of
// its items is malformed (a JSONL line that does not parse, a key field
// that is missing): the message names the file (and line) and the reason.
class InputError : public Error {
 public:
  using Error::Error;
};

// A wait could never end: e.g. join() from one of the pool's own tasks.
class DeadlockError : public Error {
 public:
  using Error::Error;
};

// The exception nested in `e` (a std::nested_exception), or null.
inline std::exception_ptr nested_cause(const std::exception& e) noexcept {
  if (const auto* nested = dynamic_cast<const std::nested_exception*>(&e)) {
    return nested->nested_ptr();
  }
  return nullptr;
}

// One link of an exception chain: a readable type name (demangled, without
// std::_Nested_exception<>; a RemoteError's remote type) and its message.
struct ExceptionInfo {
  std::string type;
  std::string message;
  friend bool operator==(const ExceptionInfo&, const ExceptionInfo&) = default;
};

// The exception and its nested causes, outermost first; each cause once (a
// link equal to an earlier one is left out). A RemoteError gives its remote
// type and message, without the "(caused by ...)" its what() repeats.
// Empty for a null pointer.
std::vector<ExceptionInfo> exception_chain(const std::exception_ptr& error);

// The one printer for library and CLI: "Type: message", then a
// "\n  caused by: Type: message" line per cause. "no error" for null.
std::string describe_exception(const std::exception_ptr& error);

}  // namespace troupe
