// troupe-mpi-map: the troupe side of troupe-compare's mpi.* lines, run under
// mpirun (rank 0 times the map, the other ranks serve).
//
//   mpirun -np 3 troupe-mpi-map ITEMS CHUNK LOCAL_KIND LOCAL_WORKERS TASK [ROUNDS]
//
// Prints items/s of troupe::map over an MpiPool: ITEMS integers through
// testing.double (TASK double), or ITEMS calls of testing.spin burning
// ROUNDS FNV rounds of CPU each (TASK spin), in chunks of CHUNK. The pool's
// ranks and local workers are started and warm before the clock.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "troupe/map.hpp"
#include "troupe/mpi.hpp"
#include "troupe/mpi_pool.hpp"

namespace {

troupe::MpiPoolOptions options_from(const std::string& kind, std::size_t workers) {
  troupe::MpiPoolOptions options;
  options.name = "bench";
  if (kind == "thread") {
    options.local = troupe::ThreadPoolOptions{.max_workers = workers};
  } else {
    options.local = troupe::ProcessPoolOptions{.max_workers = workers};
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  troupe::mpi::Environment mpi(argc, argv);
  if (argc < 6) {
    std::fprintf(stderr,
                 "usage: mpirun -np N troupe-mpi-map ITEMS CHUNK thread|process WORKERS double|spin [ROUNDS]\n");
    return 2;
  }
  const std::size_t items = std::strtoull(argv[1], nullptr, 10);
  const std::size_t chunk = std::strtoull(argv[2], nullptr, 10);
  const auto options = options_from(argv[3], std::strtoull(argv[4], nullptr, 10));
  const std::string task = argv[5];
  const std::int64_t spin_rounds = argc > 6 ? std::strtoll(argv[6], nullptr, 10) : 0;
  const std::vector<std::filesystem::path> plugins = {std::filesystem::path(TROUPE_PLUGIN_DIR) /
                                                      "libtroupe_testing.so"};
  if (mpi.rank() != 0) {
    troupe::mpi::serve(plugins, options);
    return 0;
  }
  troupe::MpiPool pool(plugins, options);
  std::vector<std::int64_t> xs(items);
  for (std::size_t i = 0; i < items; ++i) {
    xs[i] = task == "spin" ? spin_rounds : static_cast<std::int64_t>(i);
  }
  const std::string name = task == "spin" ? "testing.spin" : "testing.double";
  // Warm: every rank's workers started, the plugin's pages touched.
  for (const auto& v : troupe::map(
           pool, name, std::vector<std::int64_t>(4 * pool.max_workers(), task == "spin" ? 1 : 0), {.chunk_size = 1})) {
    static_cast<void>(v);
  }
  const auto start = std::chrono::steady_clock::now();
  std::size_t seen = 0;
  for (const auto& v : troupe::map(pool, name, xs, {.chunk_size = chunk})) {
    static_cast<void>(v);
    ++seen;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (seen != items) {
    std::fprintf(stderr, "troupe-mpi-map: %zu of %zu results\n", seen, items);
    return 1;
  }
  std::printf("%.6g\n", static_cast<double>(items) / seconds);
  return 0;
}
