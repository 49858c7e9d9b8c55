// troupe-compare [--only SUBSTRING]... [--list]
#include <cstring>
#include <iostream>

#include "compare.hpp"

namespace troupe::bench {
std::vector<Comparison>& comparisons() {
  static std::vector<Comparison> all;
  return all;
}
}  // namespace troupe::bench

int main(int argc, char** argv) {
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only.emplace_back(argv[++i]);
    } else if (std::strcmp(argv[i], "--list") == 0) {
      for (const auto& c : troupe::bench::comparisons()) {
        std::cout << c.name << '\n';
      }
      return 0;
    } else {
      std::cerr << "usage: troupe-compare [--only SUBSTRING]... [--list]\n";
      return 2;
    }
  }
  troupe::bench::Reporter reporter;
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
