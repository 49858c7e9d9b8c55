// Shared by the runner's tests: the typed fixture over both pool kinds and
// the check every run must pass (each key exactly once, as an outcome or
// aborted).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "troupe/runner.hpp"
#include "unit/executor/executor_kinds.hpp"

namespace troupe::test {

template <class Kind>
class RunnerKinds : public ::testing::Test {
 protected:
  static std::unique_ptr<Executor> make(std::size_t workers = 2) {
    PoolSpec spec;
    spec.max_workers = workers;
    return Kind::make(spec);
  }
};

inline std::string key_of(int i) {
  return "k" + std::to_string(i);
}

// Every key in `keys` appears exactly once in outcomes or aborted, and
// nothing else does.
template <class Key>
void expect_each_key_once(const RunReport<Key>& report, const std::vector<Key>& keys) {
  std::set<Key> seen;
  for (const auto& [key, outcome] : report.outcomes) {
    EXPECT_TRUE(seen.insert(key).second) << "twice: " << key;
  }
  for (const auto& key : report.aborted) {
    EXPECT_TRUE(seen.insert(key).second) << "outcome and aborted, or aborted twice: " << key;
  }
  EXPECT_EQ(seen, std::set<Key>(keys.begin(), keys.end()));
}

}  // namespace troupe::test
