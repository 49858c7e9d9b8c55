// Stack traces taken where an exception is thrown: troupe-worker replaces
// __cxa_throw, so every throw (plugins included) records its own stack, and
// a remote error carries the throw site's trace, not the catch site's.
#pragma once

#include <string>

namespace troupe::worker {

// Forgets this thread's last recorded throw; call before running plugin code.
void forget_last_throw();

// The trace of this thread's last recorded throw, one "N# frame" line per
// frame (symbolized once per address), and forgets it; empty when none.
std::string take_trace();

}  // namespace troupe::worker
