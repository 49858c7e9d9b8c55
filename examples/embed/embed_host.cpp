// A host application embedding troupe: load a plugin, look a task up by
// name and run it on every document of a JSON Lines file.
//   embed_host PLUGIN.so DOCS.jsonl
#include <troupe/registry.hpp>

#include <fstream>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: embed_host PLUGIN.so DOCS.jsonl\n";
    return 2;
  }
  try {
    troupe::Registry registry;
    registry.load(argv[1]);
    const troupe::TaskInfo& words = registry.task("text.words");

    std::ifstream input(argv[2]);
    if (!input) {
      std::cerr << "embed_host: cannot open " << argv[2] << '\n';
      return 2;
    }
    troupe::Worker worker(0, "embed");
    std::size_t line_number = 0;
    for (std::string line; std::getline(input, line);) {
      ++line_number;
      if (line.empty()) {
        continue;
      }
      troupe::Value doc = troupe::Value::parse(line);
      troupe::TaskContext ctx(words.signature.qualified_name, worker);
      troupe::Value count = words.invoke(ctx, {doc}, {});
      std::cout
          << troupe::Value{{"key", doc.value("id", std::to_string(line_number))}, {"ok", true}, {"value", count}}.dump()
          << '\n';
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "embed_host: " << e.what() << '\n';
    return 1;
  }
}
