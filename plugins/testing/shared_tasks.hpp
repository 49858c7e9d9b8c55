// The testing plugin's tasks over shared counters and dicts
// (troupe/sdk/shared.hpp), for the shared-state suites.
#pragma once

#include <troupe/sdk.hpp>

namespace troupe::testing {

void add_shared_tasks(PluginBuilder& plugin);

}  // namespace troupe::testing
