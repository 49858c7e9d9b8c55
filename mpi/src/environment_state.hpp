// What the one troupe::mpi::Environment of the process knows, for MpiPool
// and serve().
#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <vector>

namespace troupe::mpi::detail {

struct EnvironmentState {
  bool started = false;
  int rank = 0;
  int size = 1;
  std::size_t node_ranks = 1;
  std::string host;
  std::atomic<bool> pool_open{false};  // an MpiPool lives (rank 0)
  // Rank 0: per serving rank (index r - 1), the hellos and byes it still owes
  // for a pool that did not start because it answered too late; the next
  // pools skip them. Used by one pool at a time (pool_open).
  std::vector<std::size_t> owed_hellos;
  std::vector<std::size_t> owed_byes;
};

EnvironmentState& environment_state() noexcept;

// "rank 2 (node7)".
std::string rank_place(int rank, const std::string& host);

}  // namespace troupe::mpi::detail
