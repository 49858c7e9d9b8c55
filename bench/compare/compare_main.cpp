// troupe-compare [--only SUBSTRING]... [--rounds N] [--verbose] [--list]
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "compare.hpp"

namespace troupe::bench {

std::vector<Comparison>& comparisons() {
  static std::vector<Comparison> all;
  return all;
}

std::vector<ChildMode>& child_modes() {
  static std::vector<ChildMode> all;
  return all;
}

Settings& settings() {
  static Settings s;
  return s;
}

double Samples::median() const {
  if (values.empty()) {
    return 0;
  }
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t mid = sorted.size() / 2;
  return sorted.size() % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

std::vector<Samples> interleaved(std::initializer_list<std::function<double()>> sides) {
  std::vector<Samples> out(sides.size());
  for (int round = 0; round < settings().rounds; ++round) {
    std::size_t i = 0;
    for (const auto& side : sides) {
      out[i++].values.push_back(side());
    }
  }
  return out;
}

void Reporter::print(const std::string& name, double troupe, const std::string& peer, double peer_value,
                     const std::string& unit, double r) {
  std::printf("%s: troupe %.4g %s, %s %.4g %s, ratio %.2f\n", name.c_str(), troupe, unit.c_str(), peer.c_str(),
              peer_value, unit.c_str(), r);
  std::fflush(stdout);
}

void Reporter::rounds(const std::string& name, const Samples& samples, const std::string& unit) {
  if (!settings().verbose) {
    return;
  }
  std::string text = name + " rounds:";
  for (double v : samples.values) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, " %.4g", v);
    text += buffer;
  }
  note(text + " " + unit);
}

void Reporter::ratio(const std::string& name, const Samples& troupe, const std::string& peer,
                     const Samples& peer_samples, const std::string& unit) {
  const double t = troupe.median(), p = peer_samples.median();
  rounds(name + " troupe", troupe, unit);
  rounds(name + " " + peer, peer_samples, unit);
  print(name, t, peer, p, unit, p > 0 ? t / p : 0.0);
}

void Reporter::ratio_lower_is_better(const std::string& name, const Samples& troupe, const std::string& peer,
                                     const Samples& peer_samples, const std::string& unit) {
  const double t = troupe.median(), p = peer_samples.median();
  rounds(name + " troupe", troupe, unit);
  rounds(name + " " + peer, peer_samples, unit);
  print(name, t, peer, p, unit, t > 0 ? p / t : 0.0);
}

void Reporter::figure(const std::string& name, const Samples& value, const std::string& unit) {
  rounds(name, value, unit);
  std::printf("%s: %.4g %s\n", name.c_str(), value.median(), unit.c_str());
  std::fflush(stdout);
}

void Reporter::note(const std::string& text) {
  std::printf("# %s\n", text.c_str());
  std::fflush(stdout);
}

std::vector<double> run_child(const std::string& name) {
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) {
    std::fprintf(stderr, "troupe-compare: cannot find its own executable (/proc/self/exe): %s\n",
                 error.message().c_str());
    return {};
  }
  const std::string command = "'" + self.string() + "' --child " + name;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    std::fprintf(stderr, "troupe-compare: cannot run %s: %s\n", command.c_str(), std::strerror(errno));
    return {};
  }
  std::vector<double> values;
  double value = 0;
  while (std::fscanf(pipe, "%lf", &value) == 1) {
    values.push_back(value);
  }
  const int status = ::pclose(pipe);
  if (status != 0) {
    std::fprintf(stderr, "troupe-compare: %s ended with status %d\n", command.c_str(), status);
    return {};
  }
  return values;
}

double python_peer(const std::string& script, const std::string& arguments) {
  const std::string command =
      "/usr/bin/python3 " + std::string(TROUPE_SOURCE_DIR) + "/bench/peers/" + script + " " + arguments;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return -1;
  }
  double value = -1;
  if (std::fscanf(pipe, "%lf", &value) != 1) {
    value = -1;
  }
  ::pclose(pipe);
  return value;
}

}  // namespace troupe::bench

namespace {

int usage() {
  std::cerr << "usage: troupe-compare [--only SUBSTRING]... [--rounds N] [--verbose] [--list]\n"
               "  --only SUBSTRING  run the comparisons whose name contains it (repeatable)\n"
               "  --rounds N        interleaved rounds per comparison, each line their median (default 5)\n"
               "  --verbose         also print every round's figure as a # note\n"
               "  --list            list the comparisons\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using troupe::bench::settings;
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only.emplace_back(argv[++i]);
    } else if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      char* end = nullptr;
      const long n = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || n < 1 || n > 1000) {
        std::cerr << "troupe-compare: --rounds takes a whole number from 1 to 1000, got '" << argv[i] << "'\n";
        return 2;
      }
      settings().rounds = static_cast<int>(n);
    } else if (std::strcmp(argv[i], "--verbose") == 0) {
      settings().verbose = true;
    } else if (std::strcmp(argv[i], "--child") == 0 && i + 1 < argc) {
      const std::string name = argv[++i];
      for (const auto& mode : troupe::bench::child_modes()) {
        if (mode.name == name) {
          return mode.run();
        }
      }
      std::cerr << "troupe-compare: unknown --child mode '" << name << "'\n";
      return 2;
    } else if (std::strcmp(argv[i], "--list") == 0) {
      for (const auto& c : troupe::bench::comparisons()) {
        std::cout << c.name << '\n';
      }
      return 0;
    } else {
      return usage();
    }
  }
  troupe::bench::Reporter reporter;
  if (settings().rounds < 5) {
    reporter.note("fewer than 5 rounds: a quick look, not figures to quote");
  }
  for (const auto& c : troupe::bench::comparisons()) {
    bool selected = only.empty();
    for (const auto& o : only) {
      selected = selected || c.name.find(o) != std::string::npos;
    }
    if (selected) {
      c.run(reporter);
    }
  }
  return 0;
}
