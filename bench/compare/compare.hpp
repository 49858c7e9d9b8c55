// The side-by-side comparison harness behind troupe-compare.
//
// Each bench/compare/*.cpp registers comparisons with TROUPE_COMPARISON.
// A comparison runs troupe and its peer in the same process run, one round
// of each side in turn (troupe, peer, troupe, peer, ...) for rounds() rounds,
// and reports each side's median through the Reporter, which prints
// the one-line formats bench/README.md describes:
//   NAME: troupe X UNIT, PEER Y UNIT, ratio R      (R = troupe / peer, above 1: troupe ahead)
//   NAME: VALUE UNIT
// Interleaving makes drift on a shared machine hit both sides alike; the
// median drops the rounds that a neighbour's burst spoiled.
#pragma once

#include <cstdio>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

namespace troupe::bench {

// One side's figures, one per round.
struct Samples {
  std::vector<double> values;
  double median() const;
};

// Settings from the command line.
struct Settings {
  int rounds = 5;        // --rounds N: rounds per comparison (the figures count from 5)
  bool verbose = false;  // --verbose: every round's figure as a note
};
Settings& settings();

// Runs every side once per round, in the given order, for settings().rounds
// rounds, and returns each side's figures.
std::vector<Samples> interleaved(std::initializer_list<std::function<double()>> sides);

class Reporter {
 public:
  // Higher is better for `unit` (a rate); R = troupe / peer.
  void ratio(const std::string& name, const Samples& troupe, const std::string& peer, const Samples& peer_samples,
             const std::string& unit);
  // Lower is better for `unit` (a time); R = peer / troupe so above 1 is still troupe ahead.
  void ratio_lower_is_better(const std::string& name, const Samples& troupe, const std::string& peer,
                             const Samples& peer_samples, const std::string& unit);
  void figure(const std::string& name, const Samples& value, const std::string& unit);
  void note(const std::string& text);

 private:
  void print(const std::string& name, double troupe, const std::string& peer, double peer_value,
             const std::string& unit, double r);
  void rounds(const std::string& name, const Samples& samples, const std::string& unit);
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

// A helper process mode: `troupe-compare --child NAME` runs the registered
// child NAME in a fresh process (for figures such as RSS growth that an
// earlier comparison's heap would blur) and prints its figures, one number a
// line, on stdout.
struct ChildMode {
  std::string name;
  std::function<int()> run;
};
std::vector<ChildMode>& child_modes();
struct ChildRegistrar {
  ChildRegistrar(std::string name, std::function<int()> run) {
    child_modes().push_back(ChildMode{std::move(name), std::move(run)});
  }
};
// Runs `troupe-compare --child NAME` and returns the numbers it printed
// (empty when it failed; the reason goes to stderr).
std::vector<double> run_child(const std::string& name);

// One number printed by the Python peer bench/peers/SCRIPT run with
// ARGUMENTS, or a negative value when it failed.
double python_peer(const std::string& script, const std::string& arguments);

}  // namespace troupe::bench

#define TROUPE_DETAIL_CAT_(a, b) a##b
#define TROUPE_DETAIL_CAT(a, b) TROUPE_DETAIL_CAT_(a, b)
// TROUPE_COMPARISON("thread.empty_tasks", [](troupe::bench::Reporter& r) { ... });
#define TROUPE_COMPARISON(NAME, ...) \
  static ::troupe::bench::Registrar TROUPE_DETAIL_CAT(troupe_comparison_, __LINE__)(NAME, __VA_ARGS__)
// TROUPE_CHILD_MODE("lazy_map_rss", [] { ...; return 0; });
#define TROUPE_CHILD_MODE(NAME, ...) \
  static ::troupe::bench::ChildRegistrar TROUPE_DETAIL_CAT(troupe_child_mode_, __LINE__)(NAME, __VA_ARGS__)
