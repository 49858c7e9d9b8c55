#include <iostream>

#include "commands.hpp"

namespace troupe::cli {

void print_error(const std::string& message) {
  std::cerr << "troupe: error: " + message + '\n';  // one write
}

}  // namespace troupe::cli
