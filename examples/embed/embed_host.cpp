// A host application embedding troupe: load a plugin, start a thread pool
// that resolves plugin tasks through the registry, and push every document
// of a JSON Lines file through `text.words` with a lazy, ordered map.
// Failed items are reported per item; the others go on.
//   embed_host PLUGIN.so DOCS.jsonl
#include <troupe/map.hpp>
#include <troupe/registry.hpp>
#include <troupe/thread_pool.hpp>

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: embed_host PLUGIN.so DOCS.jsonl\n";
    return 2;
  }
  try {
    troupe::Registry registry;
    registry.load(argv[1]);

    std::ifstream input(argv[2]);
    if (!input) {
      std::cerr << "embed_host: cannot open " << argv[2] << '\n';
      return 2;
    }
    std::vector<troupe::Value> docs;
    std::size_t line_number = 0;
    for (std::string line; std::getline(input, line);) {
      ++line_number;
      if (!line.empty()) {
        try {
          docs.push_back(troupe::Value::parse(line));
        } catch (const troupe::Value::parse_error& e) {
          std::cerr << argv[2] << ":" << line_number << ": not JSON: " << e.what() << '\n';
          return 2;
        }
      }
    }

    troupe::ThreadPool pool({.max_workers = 2, .name = "embed", .registry = &registry});
    int failed = 0;
    std::size_t index = 0;
    for (auto outcome : troupe::map(pool, "text.words", docs).outcomes()) {
      const troupe::Value& doc = docs[index++];
      const std::string key = doc.is_object() ? doc.value("id", std::to_string(index)) : std::to_string(index);
      if (outcome.ok()) {
        std::cout << troupe::Value{{"key", key}, {"ok", true}, {"value", outcome.value()}}.dump() << '\n';
      } else {
        ++failed;
        std::string message = "unknown error";
        try {
          std::rethrow_exception(outcome.error());
        } catch (const std::exception& e) {
          message = e.what();
        } catch (...) {
        }
        std::cout << troupe::Value{{"key", key}, {"ok", false}, {"error", {{"message", message}}}}.dump() << '\n';
      }
    }
    return failed == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "embed_host: " << e.what() << '\n';
    return 2;
  }
}
