// An example plugin: word statistics over documents like those in
// examples/data/docs.jsonl ({"id": ..., "text": ...}).
//   troupe inspect libwordstats.so
//   troupe call libwordstats.so words '{"id": "d1", "text": "to be or not to be"}'
//   troupe call libwordstats.so wordstats.top '{"id": "d1", "text": "to be or not to be"}' --kw n=2
// A host maps "wordstats.words" over its documents the way
// examples/embed/embed_host.cpp maps "text.words".
#include <troupe/sdk.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace wordstats {

struct Doc {
  std::string id;
  std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Doc, id, text)

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string word; in >> word;) {
    std::string clean;
    for (unsigned char c : word) {
      if (std::isalnum(c) != 0) {
        clean.push_back(static_cast<char>(std::tolower(c)));
      }
    }
    if (!clean.empty()) {
      words.push_back(std::move(clean));
    }
  }
  return words;
}

std::size_t words(const Doc& doc) {
  return split(doc.text).size();
}

// The n most frequent words, most frequent first (ties alphabetical).
// Stops early when its future was cancelled, as a long task should (the
// result is discarded then).
std::vector<std::pair<std::string, std::size_t>> top(troupe::TaskContext& ctx, const Doc& doc, std::size_t n) {
  std::map<std::string, std::size_t> counts;
  for (const auto& word : split(doc.text)) {
    if (ctx.cancelled()) {
      return {};
    }
    ++counts[word];
  }
  std::vector<std::pair<std::string, std::size_t>> ranked(counts.begin(), counts.end());
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  ranked.resize(std::min(n, ranked.size()));
  return ranked;
}

}  // namespace wordstats

TROUPE_PLUGIN(wordstats, "1.0.0") {
  plugin.task("words", wordstats::words, "Number of words in a document", troupe::arg("doc"));
  plugin.task("top", wordstats::top, "The n most frequent words of a document, with their counts", troupe::arg("doc"),
              troupe::arg("n") = 10);
}
