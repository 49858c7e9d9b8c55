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

// `record`, cut so that it encodes to at most `max_bytes`: every string
// (type, message, trace, each cause) longer than one common length is cut
// there and marked "[... cut: N of M bytes]"; when even that is too long,
// the last causes go, replaced by one saying how many. A record that fits
// comes back unchanged. `max_bytes` is at least 512.
Value fit_error_record(Value record, std::size_t max_bytes);

// The RemoteError chain for a record (never throws; a malformed record becomes
// a RemoteError that says so).
std::exception_ptr exception_from_record(const Value& record);

// The stack trace of the first RemoteError in `error`'s chain, or empty.
std::string remote_stack_trace(std::exception_ptr error);

// Demangled name of a std::type_info name.
std::string demangle(const char* mangled);

}  // namespace troupe::detail::process
