// A process-wide Registry with the bundled testing plugin loaded, for tests
// of pools that resolve plugin tasks by name.
#pragma once

#include "support/paths.hpp"
#include "troupe/registry.hpp"

namespace troupe::test {

// Never destroyed: pools in other tests' static state may still refer to it.
inline Registry& testing_registry() {
  static Registry* registry = [] {
    auto* r = new Registry();
    r->load(plugin_path("testing"));
    return r;
  }();
  return *registry;
}

}  // namespace troupe::test
