#include <cxxabi.h>

#include <exception>
#include <iostream>
#include <typeinfo>

#include "commands.hpp"
#include "troupe/sdk/type_name.hpp"

namespace troupe::cli {
namespace {

// The dynamic type of the exception being handled, without the
// std::_Nested_exception<> wrapper std::throw_with_nested adds.
std::string handled_exception_type() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  return type != nullptr ? detail::readable_type_name(type->name()) : "unknown";
}

void append_chain(std::string& out, const std::exception_ptr& error, int depth) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    out += (depth == 0 ? "" : "\n  caused by: ") + handled_exception_type() + ": " + e.what();
    try {
      std::rethrow_if_nested(e);
    } catch (...) {
      append_chain(out, std::current_exception(), depth + 1);
    }
  } catch (...) {
    out += (depth == 0 ? "" : "\n  caused by: ") + handled_exception_type();
  }
}

}  // namespace

void print_error(const std::string& message) {
  std::cerr << "troupe: error: " << message << '\n';
}

std::string describe_exception(const std::exception_ptr& error) {
  std::string out;
  append_chain(out, error, 0);
  return out;
}

}  // namespace troupe::cli
