// troupe/sdk/errors.hpp
//
// The root of troupe's error family and the errors a plugin can meet.
//
// Every error troupe throws derives from troupe::Error (a std::runtime_error).
// These types keep default visibility so a plugin's throw is caught by the
// host's `catch (const troupe::Error&)`.
#pragma once

#include <stdexcept>
#include <string>

#include "troupe/sdk/config.hpp"

namespace troupe {

class TROUPE_SDK_VISIBLE Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Misuse of an API: a second run(), add() after run(), and the like.
class TROUPE_SDK_VISIBLE UsageError : public Error {
 public:
  using Error::Error;
};

// A call's arguments do not fit the task's parameters: wrong count, wrong
// type, unknown keyword. The message names the task and the parameter.
class TROUPE_SDK_VISIBLE ArgumentError : public Error {
 public:
  using Error::Error;
};

// A plugin could not be loaded or registered. The message names the file
// and says what to do.
class TROUPE_SDK_VISIBLE PluginError : public Error {
 public:
  using Error::Error;
};

// A `plugin.task` (or initializer/finalizer) name that no loaded plugin has.
class TROUPE_SDK_VISIBLE UnknownTaskError : public Error {
 public:
  using Error::Error;
};

// A future was cancelled before it ran (cancel(), shutdown with
// cancel_pending, an abandoned map); get() and exception() throw it.
class TROUPE_SDK_VISIBLE CancelledError : public Error {
 public:
  using Error::Error;
};

// The pool can no longer run work. Nested cause: what broke it.
class TROUPE_SDK_VISIBLE BrokenPoolError : public CancelledError {
 public:
  using CancelledError::CancelledError;
};

// A worker's initializer threw (the nested cause is its exception), or a
// worker object could not be built for a method call (worker_class).
class TROUPE_SDK_VISIBLE InitializerError : public BrokenPoolError {
 public:
  using BrokenPoolError::BrokenPoolError;
};

}  // namespace troupe
