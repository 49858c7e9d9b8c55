// The one exception printer: library logs, the CLI and (through
// exception_chain) error records all read a chain the same way.
#include <cxxabi.h>

#include <exception>
#include <string>
#include <typeinfo>
#include <vector>

#include "troupe/errors.hpp"
#include "troupe/process_errors.hpp"
#include "troupe/sdk/type_name.hpp"

namespace troupe {
namespace {

// Deep enough for any real chain; a longer one is cut rather than followed
// for ever (a cause that nests itself).
constexpr int kMaxDepth = 64;

// Called inside a catch block: the handled exception's dynamic type, which
// typeid on a std::exception& also gives, but this works for any type.
std::string handled_type() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  return type != nullptr ? detail::readable_type_name(type->name()) : "unknown exception";
}

void append_unique(std::vector<ExceptionInfo>& chain, ExceptionInfo link) {
  for (const auto& earlier : chain) {
    if (earlier == link) {
      return;
    }
  }
  chain.push_back(std::move(link));
}

}  // namespace

std::vector<ExceptionInfo> exception_chain(const std::exception_ptr& error) {
  std::vector<ExceptionInfo> chain;
  std::exception_ptr current = error;
  for (int depth = 0; current && depth < kMaxDepth; ++depth) {
    std::exception_ptr next;
    try {
      std::rethrow_exception(current);
    } catch (const RemoteError& e) {
      append_unique(chain, {e.remote_type(), e.remote_message()});
      next = nested_cause(e);
    } catch (const std::exception& e) {
      append_unique(chain, {handled_type(), e.what()});
      next = nested_cause(e);
    } catch (...) {
      append_unique(chain, {handled_type(), ""});
    }
    current = next;
  }
  return chain;
}

std::string describe_exception(const std::exception_ptr& error) {
  if (!error) {
    return "no error";
  }
  std::string out;
  for (const auto& link : exception_chain(error)) {
    if (!out.empty()) {
      out += "\n  caused by: ";
    }
    out += link.type;
    if (!link.message.empty()) {
      out += ": " + link.message;
    }
  }
  return out;
}

}  // namespace troupe
