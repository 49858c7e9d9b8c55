// troupe/cpu_count.hpp
//
// How many CPUs this process may really use: the smaller of the CPU affinity
// mask and the cgroup CPU quota (v2 cpu.max or v1 cfs_quota/cfs_period),
// rounded up, at least 1 (loky's cpu_count). The pools' default size.
//
// Guarantees: never throws; reads /proc/self/cgroup and /sys/fs/cgroup once
// per call (cheap, but cache it on hot paths).
#pragma once

#include <cstddef>

namespace troupe {

std::size_t cpu_count() noexcept;

}  // namespace troupe
