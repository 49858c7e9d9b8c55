// Exceptions across the process boundary: a worker turns the exception it
// caught into a record (type, message, nested causes, stack trace); the host
// turns the record back into a chain of troupe::RemoteError.
#pragma once

#include <exception>
#include <string>

#include "troupe/sdk/value.hpp"

namespace troupe::detail::process {

// Call inside a catch block. `trace` is the stack trace to attach to the
// outermost exception. Record: {type, message, trace, causes: [{type, message}]}.
Value error_record_from_current(std::string trace);

// A record of an error the worker itself made (not thrown by a plugin).
Value error_record(std::string type, std::string message);

// The RemoteError chain for a record (never throws; a malformed record becomes
// a RemoteError that says so).
std::exception_ptr exception_from_record(const Value& record);

// Demangled name of a std::type_info name.
std::string demangle(const char* mangled);

}  // namespace troupe::detail::process
