// `troupe call`'s command line against arbitrary argument lists: CLI11's
// parse, then the checks that turn options into a call's arguments. Every
// list parses or is refused with CLI::ParseError, troupe::UsageError or
// troupe::ArgumentError, never anything else and never a crash; each task
// argument that is accepted is exactly one JSON value (never split), nested
// no deeper than the limit.
//
// Input: the arguments after `troupe`, separated by NUL bytes.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "call_inputs.hpp"
#include "fuzz_target.hpp"
#include "troupe/sdk/errors.hpp"

namespace {

std::vector<std::string> split_arguments(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args(1);
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == '\0') {
      args.emplace_back();
    } else {
      args.back().push_back(static_cast<char>(data[i]));
    }
  }
  return args;
}

int depth_of(const troupe::Value& value) {
  int deepest = 0;
  if (value.is_structured()) {
    for (const auto& element : value) {
      deepest = std::max(deepest, depth_of(element));
    }
    return deepest + 1;
  }
  return 0;
}

void check_inputs(const troupe::cli::CallOptions& options, const troupe::cli::CallInputs& inputs) {
  if (inputs.args.size() != options.args.size()) {
    troupe_fuzz_fail(std::to_string(options.args.size()) + " task arguments became " +
                     std::to_string(inputs.args.size()) + " values");
  }
  for (const auto& value : inputs.args) {
    if (depth_of(value) > troupe::cli::kMaxJsonDepth) {
      troupe_fuzz_fail("an argument nested past the limit was accepted");
    }
  }
  if (inputs.timeout && (!options.isolated || inputs.timeout->count() <= 0)) {
    troupe_fuzz_fail("--timeout '" + options.timeout + "' accepted without --isolated or not above 0");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args = split_arguments(data, size);
  CLI::App app{"troupe", "troupe"};
  app.require_subcommand(1);
  troupe::cli::CallOptions options;
  CLI::App* call = app.add_subcommand("call", "Run one plugin task");
  troupe::cli::add_call_options(*call, options);
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
    app.parse(reversed);
    troupe::cli::collect_call_arguments(*call, options);
    check_inputs(options, troupe::cli::read_call_inputs(options));
  } catch (const CLI::ParseError&) {
  } catch (const troupe::UsageError&) {
  } catch (const troupe::ArgumentError&) {
  } catch (const std::exception& e) {
    troupe_fuzz_fail(std::string("unexpected exception: ") + e.what());
  }
  return 0;
}

std::vector<std::string> troupe_fuzz_seeds() {
  using namespace std::string_literals;
  return {
      "call\0libtext.so\0add\0002\0003"s,
      "call\0p.so\0echo\0[1,2]"s,
      "call\0p.so\0echo\0[\"x\"]\0[]"s,
      "call\0--isolated\0--timeout\0250ms\0p.so\0t\0{\"a\":[1,{\"b\":null}]}\0--kw\0b=3"s,
      "call\0p.so\0t\0-5\0-0.5e3\0--\0\"x\""s,
      "call\0--pretty\0p.so\0t\0[[[[[[[[]]]]]]]]"s,
      "call\0p.so\0t\0001e999\0--kw\0x=1e300"s,
      "call\0--timeout\0000\0p.so\0t"s,
      "call\0p.so\0plugin.task\0true\0null\0\"\\u00e9\"\0--kw\0=1\0--kw\0a"s,
      "call\0--help"s,
      "call\0p.so"s,
  };
}
