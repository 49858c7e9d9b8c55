// The side-by-side comparison harness behind troupe-compare.
//
// Each bench/compare/*.cpp registers comparisons with TROUPE_COMPARISON.
// A comparison runs troupe and its peer in the same process run and reports
// through the Reporter, which prints DESIGN.md's one-line formats:
//   NAME: troupe X UNIT, PEER Y UNIT, ratio R      (R = troupe / peer)
//   NAME: VALUE UNIT
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace troupe::bench {

class Reporter {
 public:
  // Higher is better for `unit` (a rate); R = troupe / peer.
  void ratio(const std::string& name, double troupe_value, const std::string& peer, double peer_value,
             const std::string& unit) {
    std::printf("%s: troupe %.4g %s, %s %.4g %s, ratio %.2f\n", name.c_str(), troupe_value, unit.c_str(), peer.c_str(),
                peer_value, unit.c_str(), peer_value > 0 ? troupe_value / peer_value : 0.0);
    std::fflush(stdout);
  }
  // Lower is better for `unit` (a time); R = peer / troupe so above 1 is still troupe ahead.
  void ratio_lower_is_better(const std::string& name, double troupe_value, const std::string& peer, double peer_value,
                             const std::string& unit) {
    std::printf("%s: troupe %.4g %s, %s %.4g %s, ratio %.2f\n", name.c_str(), troupe_value, unit.c_str(), peer.c_str(),
                peer_value, unit.c_str(), troupe_value > 0 ? peer_value / troupe_value : 0.0);
    std::fflush(stdout);
  }
  void figure(const std::string& name, double value, const std::string& unit) {
    std::printf("%s: %.4g %s\n", name.c_str(), value, unit.c_str());
    std::fflush(stdout);
  }
  void note(const std::string& text) {
    std::printf("# %s\n", text.c_str());
    std::fflush(stdout);
  }
};

struct Comparison {
  std::string name;  // selectable with --only NAME (substring match)
  std::function<void(Reporter&)> run;
};

std::vector<Comparison>& comparisons();

struct Registrar {
  Registrar(std::string name, std::function<void(Reporter&)> run) {
    comparisons().push_back(Comparison{std::move(name), std::move(run)});
  }
};

}  // namespace troupe::bench

#define TROUPE_DETAIL_CAT_(a, b) a##b
#define TROUPE_DETAIL_CAT(a, b) TROUPE_DETAIL_CAT_(a, b)
// TROUPE_COMPARISON("thread.empty_tasks", [](troupe::bench::Reporter& r) { ... });
#define TROUPE_COMPARISON(NAME, ...) \
  static ::troupe::bench::Registrar TROUPE_DETAIL_CAT(troupe_comparison_, __LINE__)(NAME, __VA_ARGS__)
