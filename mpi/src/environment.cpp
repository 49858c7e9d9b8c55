#include <mpi.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "channel.hpp"
#include "environment_state.hpp"
#include "troupe/engine.hpp"
#include "troupe/mpi.hpp"
#include "troupe/mpi_pool.hpp"
#include "troupe/sdk/errors.hpp"
#include "wire.hpp"

namespace troupe::mpi {

namespace detail {

EnvironmentState& environment_state() noexcept {
  static EnvironmentState state;
  return state;
}

std::string rank_place(int rank, const std::string& host) {
  return "rank " + std::to_string(rank) + (host.empty() ? std::string() : " (" + host + ")");
}

}  // namespace detail

bool launched_by_mpi() noexcept {
  // Open MPI's mpirun, MPICH/Hydra and Slurm's PMI/PMIx launchers.
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"}) {
    if (std::getenv(variable) != nullptr) {
      return true;
    }
  }
  return false;
}

Environment::Environment(int& argc, char**& argv) {
  start(&argc, &argv);
}
Environment::Environment() {
  start(nullptr, nullptr);
}

void Environment::start(int* argc, char*** argv) {
  auto& state = detail::environment_state();
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (state.started || initialized != 0) {
    throw UsageError(
        "troupe::mpi::Environment: MPI is already started in this process (one Environment per "
        "process, for its whole life)");
  }
  int provided = 0;
  detail::check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    throw Error("troupe::mpi::Environment: this MPI library gives thread level " + std::to_string(provided) +
                ", below MPI_THREAD_SERIALIZED, which troupe needs (its MPI calls come from one thread at a time, "
                "not always the main one)");
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm node;
  detail::check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
                    "MPI_Comm_split_type");
  int on_node = 1;
  MPI_Comm_size(node, &on_node);
  MPI_Comm_free(&node);
  node_ranks_ = static_cast<std::size_t>(on_node);
  char name[MPI_MAX_PROCESSOR_NAME];
  int length = 0;
  MPI_Get_processor_name(name, &length);
  host_.assign(name, static_cast<std::size_t>(length));

  state.started = true;
  state.rank = rank_;
  state.size = size_;
  state.node_ranks = node_ranks_;
  state.host = host_;
  if (rank_ == 0) {
    troupe::detail::set_mpi_pool_maker([](std::vector<std::filesystem::path> plugins, const MpiPoolOptions& options) {
      return std::shared_ptr<Executor>(std::make_shared<MpiPool>(std::move(plugins), options));
    });
  }
}

Environment::~Environment() {
  auto& state = detail::environment_state();
  if (rank_ == 0) {
    troupe::detail::set_mpi_pool_maker({});
    try {
      detail::Channel channel;
      for (int r = 1; r < size_; ++r) {
        channel.send(r, detail::Tag::leave, {});
      }
      channel.flush();
    } catch (...) {
      // MPI failed; finalizing below reports it or the job is ending.
    }
  }
  state.started = false;
  MPI_Finalize();
}

int Environment::rank() const noexcept {
  return rank_;
}
int Environment::size() const noexcept {
  return size_;
}
std::size_t Environment::node_ranks() const noexcept {
  return node_ranks_;
}
const std::string& Environment::host() const noexcept {
  return host_;
}

std::vector<int> Environment::ranks_not_ready(bool ready) const {
  int mine = ready ? 1 : 0;
  std::vector<int> all(static_cast<std::size_t>(size_));
  detail::check_mpi(MPI_Allgather(&mine, 1, MPI_INT, all.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
  std::vector<int> not_ready;
  for (int r = 0; r < size_; ++r) {
    if (all[static_cast<std::size_t>(r)] == 0) {
      not_ready.push_back(r);
    }
  }
  return not_ready;
}

}  // namespace troupe::mpi
