// troupe/mpi.hpp
//
// troupe::mpi: one program started under mpirun (or srun) on many hosts.
// Rank 0 is the host: it makes the troupe::MpiPool (troupe/mpi_pool.hpp),
// directly or as an Engine pool of kind mpi. Every other rank calls serve()
// with the same plugins and options, and runs the work rank 0 hands out on
// a local thread or process pool.
//
//   int main(int argc, char** argv) {
//     troupe::mpi::Environment mpi(argc, argv);
//     troupe::MpiPoolOptions options{.local = troupe::ProcessPoolOptions{.max_workers = 0}};  // 0: auto
//     if (mpi.rank() != 0) {
//       troupe::mpi::serve(plugins, options);  // until rank 0's Environment ends
//       return 0;
//     }
//     troupe::MpiPool pool(plugins, options);
//     for (auto& v : troupe::map(pool, "text.words", docs)) ...
//   }
//
// Guarantees: Environment initializes MPI (MPI_THREAD_SERIALIZED: troupe
// makes every MPI call from one thread at a time) and finalizes it when it
// ends; on rank 0 its end first tells every serving rank to leave serve(),
// and while it lives an Engine can make pools of kind mpi. On every rank,
// max_workers 0 in the local pool ("auto") is the node's cores divided by the
// ranks on that node, at least 1.
// Failure model: a task that crashes a worker of a rank's process pool fails
// with WorkerCrashedError, as on one host; a rank that dies ends the whole
// MPI job (mpirun's own rule), so nothing waits for it for ever.
// Hazards: one Environment per process, for the life of the process (MPI
// cannot start twice); destroy every MpiPool before it. serve() blocks the
// calling thread.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "troupe/pool_options.hpp"

namespace troupe::mpi {

class Environment {
 public:
  // Throws UsageError for a second Environment in the process, Error when MPI
  // cannot start or cannot give MPI_THREAD_SERIALIZED.
  Environment(int& argc, char**& argv);
  Environment();
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  int rank() const noexcept;
  int size() const noexcept;                 // ranks in the job
  std::size_t node_ranks() const noexcept;   // ranks on this rank's node, this one included
  const std::string& host() const noexcept;  // MPI_Get_processor_name

  // A collective: every rank calls it at the same point with whether it is
  // ready to go on, and each gets the ranks that are not, in order (empty
  // when all are). Call it before any pool or serve() starts.
  std::vector<int> ranks_not_ready(bool ready) const;

 private:
  void start(int* argc, char*** argv);
  int rank_ = 0;
  int size_ = 1;
  std::size_t node_ranks_ = 1;
  std::string host_;
};

// True when this process was started by an MPI launcher (mpirun, mpiexec,
// srun with PMI): the variables those set are present. Cheap; initializes
// nothing.
bool launched_by_mpi() noexcept;

// Serves rank 0's MpiPools until rank 0's Environment ends: for each pool
// rank 0 makes, builds its `local` pool on `plugins`, runs what it is sent,
// and shuts the local pool down when that MpiPool ends. `plugins` and
// `options` must be those rank 0 gives its MpiPool (its pool does not start,
// naming both, when they differ). Throws UsageError without an Environment
// or on rank 0.
void serve(const std::vector<std::filesystem::path>& plugins, const MpiPoolOptions& options);
// The same for a program whose rank 0 makes one of several pools (one at a
// time): each is found by its name.
void serve(const std::vector<std::filesystem::path>& plugins, const std::vector<MpiPoolOptions>& pools);

}  // namespace troupe::mpi
