// A batch host: every document of a JSON Lines file, keyed by its "id", run
// through `text.words` on a process pool with a troupe::Runner: retries for
// crashed workers, a progress line on stderr, and Ctrl-C handled (the first
// stops feeding and keeps what runs, the second interrupts running work).
// Prints one JSON line per key; exits 130 when interrupted.
//   runner_host PLUGIN.so DOCS.jsonl
#include <troupe/process_pool.hpp>
#include <troupe/runner.hpp>

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: runner_host PLUGIN.so DOCS.jsonl\n";
    return 2;
  }
  try {
    std::ifstream input(argv[2]);
    if (!input) {
      std::cerr << "runner_host: cannot open " << argv[2] << '\n';
      return 2;
    }
    troupe::ProcessPool pool({argv[1]}, {.max_workers = 2, .name = "docs"});
    troupe::Runner<std::string> runner(pool, {.retries = {.max = 2, .on = troupe::Retry::crash_or_timeout},
                                              .progress = troupe::Progress::to_terminal(),
                                              .label = "docs",
                                              .report_errors = true,
                                              .handle_interrupts = true});
    std::vector<std::string> keys;  // input order, for the output
    std::size_t line_number = 0;
    for (std::string line; std::getline(input, line);) {
      ++line_number;
      if (line.empty()) {
        continue;
      }
      const troupe::Value doc = troupe::Value::parse(line);
      const std::string key = doc.value("id", "line " + std::to_string(line_number));
      runner.add(key, troupe::Call{"text.words", {doc}, {}});  // a duplicate id is refused, naming both lines
      keys.push_back(key);
    }

    troupe::RunReport<std::string> report = runner.run();
    for (const auto& key : keys) {
      const auto found = report.outcomes.find(key);
      if (found == report.outcomes.end()) {
        continue;  // aborted: listed below
      }
      const troupe::RunOutcome& outcome = found->second;
      if (outcome.ok()) {
        std::cout << troupe::Value{{"key", key}, {"ok", true}, {"value", outcome.value}, {"attempts", outcome.attempts}}
                         .dump()
                  << '\n';
      } else {
        std::cout
            << troupe::Value{{"key", key}, {"ok", false}, {"error", troupe::describe_exception(outcome.error)}}.dump()
            << '\n';
      }
    }
    for (const auto& key : report.aborted) {
      std::cout << troupe::Value{{"key", key}, {"aborted", true}}.dump() << '\n';
    }
    if (report.interrupted) {
      return 130;
    }
    return report.failed == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "runner_host: " << e.what() << '\n';
    return 2;
  }
}
