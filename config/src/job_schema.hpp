// `jobs:` of a config file -> EngineSpec::jobs: each job's keys, then the
// checks that span jobs (unique names, known dependencies, no cycles, one
// job per output).
#pragma once

#include <string>
#include <vector>

#include "troupe/engine_spec.hpp"
#include "value_reader.hpp"

namespace troupe::config::detail {

// The jobs in file order, every problem recorded. `pool_names` are the keys
// written under `pools:` (whether or not those pools read cleanly, so a
// broken pool is not reported again as an unknown one).
std::vector<JobSpec> read_jobs(const TreeNode& node, const std::vector<std::string>& pool_names, ValueReader& reader);

}  // namespace troupe::config::detail
