// MPI pool comparisons (troupe::mpi), each side started under Open MPI's
// mpirun with three ranks: rank 0 hands out the work, ranks 1 and 2 run it.
//
//   mpi.map_1m   troupe::map of 1,000,000 ints through testing.double over an
//                MpiPool (troupe's default chunking; each rank a thread pool
//                of one worker) vs mpi4py.futures.MPIPoolExecutor().map
//                (chunksize=1000, two worker ranks). Notes: troupe with
//                chunks of 1000 as well, and with a process pool per rank.
//
// troupe's side is bin/troupe-mpi-map (bench/mpi/mpi_map_bench.cpp), the
// peer bench/peers/mpi_peers.py under `python3 -m mpi4py.futures`. Where
// troupe::mpi, mpirun or mpi4py is missing the line says so and is skipped.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "compare.hpp"

namespace {

using troupe::bench::interleaved;

const std::string kMpirun = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe -np 3 ";

// The one number `command` prints, or -1 when it fails.
double number_from(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return -1;
  }
  double value = -1;
  if (std::fscanf(pipe, "%lf", &value) != 1) {
    value = -1;
  }
  return ::pclose(pipe) == 0 ? value : -1;
}

std::string troupe_map(const std::string& chunk, const std::string& kind) {
  return kMpirun + "'" + std::string(TROUPE_BIN_DIR) + "/troupe-mpi-map' 1000000 " + chunk + " " + kind + " 1 double";
}

// Why the line cannot run here, or "".
std::string missing() {
  if (!std::filesystem::exists(std::string(TROUPE_BIN_DIR) + "/troupe-mpi-map")) {
    return "troupe::mpi is not built (Open MPI was not found)";
  }
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    return "mpirun is not installed (openmpi-bin)";
  }
  if (std::system("/usr/bin/python3 -c 'import mpi4py.futures' >/dev/null 2>&1") != 0) {
    return "mpi4py is not installed (python3-mpi4py)";
  }
  return {};
}

TROUPE_COMPARISON("mpi.map_1m", [](troupe::bench::Reporter& r) {
  if (auto why = missing(); !why.empty()) {
    r.note("mpi.map_1m: skipped: " + why);
    return;
  }
  const std::string peer = kMpirun + "/usr/bin/python3 -m mpi4py.futures '" + std::string(TROUPE_SOURCE_DIR) +
                           "/bench/peers/mpi_peers.py' map 1000000 1000";
  const auto s = interleaved({
      [] { return number_from(troupe_map("0", "thread")); },
      [&] { return number_from(peer); },
      [] { return number_from(troupe_map("1000", "thread")); },
      [] { return number_from(troupe_map("0", "process")); },
  });
  r.ratio("mpi.map_1m", s[0], "mpi4py.futures.MPIPoolExecutor.map (chunksize=1000)", s[1], "items/s");
  r.note("mpi.map_1m: troupe with chunks of 1000 too: " + std::to_string(s[2].median()) + " items/s (ratio " +
         std::to_string(s[2].median() / s[1].median()) + "); with a process pool of one worker per rank: " +
         std::to_string(s[3].median()) + " items/s (ratio " + std::to_string(s[3].median() / s[1].median()) + ")");
});

}  // namespace
