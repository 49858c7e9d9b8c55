// Where the entries that config::check reports on were written: plugins,
// pool hooks and jobs, by key path, kept in EngineSpec::sources. The checks that
// need the plugins run after the tree is gone, so the places travel with the
// spec.
#pragma once

#include "troupe/engine_spec.hpp"
#include "yaml_tree.hpp"

namespace troupe::config::detail {

// Records the places of `plugins[i]`, `plugins[i].path` and every pool's
// initializer and finalizer (`pools.NAME.initializer` at its key, `.task`,
// `.args`, `.args[i]`, `.kwargs`, `.kwargs.KEY` at the key; an mpi pool's
// under `pools.NAME.local`) read from `root`,
// and every job's keys (`jobs[i]`, `jobs[i].task`, `jobs[i].args[k]`,
// `jobs[i].kwargs.KEY`, `jobs[i].inputs.range`, ...).
void record_sources(const TreeNode& root, EngineSpec& spec);

}  // namespace troupe::config::detail
