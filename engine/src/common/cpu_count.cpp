// cpu_count(): affinity mask, then the cgroup CPU quota, rounded up.
#include "troupe/cpu_count.hpp"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

namespace troupe {
namespace {

std::size_t affinity_count() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) {
      return static_cast<std::size_t>(n);
    }
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

// The cgroup path of this process for a controller ("" = the v2 unified one).
std::optional<std::string> cgroup_path(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    // id:controllers:path
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) {
      continue;
    }
    const auto controllers = line.substr(first + 1, second - first - 1);
    const auto path = line.substr(second + 1);
    if (controller.empty() ? controllers.empty()
                           : (("," + controllers + ",").find("," + controller + ",") != std::string::npos)) {
      return path;
    }
  }
  return std::nullopt;
}

std::optional<double> v2_quota() {
  auto path = cgroup_path("");
  if (!path) {
    return std::nullopt;
  }
  // Walk from our cgroup up to the root; the tightest limit wins.
  std::optional<double> best;
  std::string dir = *path;
  for (;;) {
    std::ifstream in("/sys/fs/cgroup" + dir + "/cpu.max");
    std::string quota;
    double period = 0;
    if (in >> quota >> period && quota != "max" && period > 0) {
      const double cpus = std::stod(quota) / period;
      best = best ? std::min(*best, cpus) : cpus;
    }
    if (dir.empty() || dir == "/") {
      break;
    }
    const auto slash = dir.find_last_of('/');
    dir = slash == 0 || slash == std::string::npos ? "/" : dir.substr(0, slash);
  }
  return best;
}

std::optional<double> v1_quota() {
  auto path = cgroup_path("cpu");
  for (const char* root : {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"}) {
    for (const std::string& dir : {path.value_or(""), std::string()}) {
      std::ifstream quota_in(std::string(root) + dir + "/cpu.cfs_quota_us");
      std::ifstream period_in(std::string(root) + dir + "/cpu.cfs_period_us");
      double quota = 0;
      double period = 0;
      if (quota_in >> quota && period_in >> period && quota > 0 && period > 0) {
        return quota / period;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::size_t cpu_count() noexcept {
  std::size_t count = affinity_count();
  try {
    auto quota = v2_quota();
    if (!quota) {
      quota = v1_quota();
    }
    if (quota && *quota > 0) {
      count = std::min(count, static_cast<std::size_t>(std::ceil(*quota)));
    }
  } catch (...) {
    // Unreadable or malformed cgroup files: the affinity count stands.
  }
  return std::max<std::size_t>(count, 1);
}

}  // namespace troupe
