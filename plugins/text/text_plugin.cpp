// The bundled text plugin: small, useful tasks and a worker-local
// dictionary, written the way plugin authors are meant to copy.
#include <troupe/sdk.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "sha256.hpp"

namespace {

struct Doc {
  std::string id;
  std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Doc, id, text)

// Lowercased runs of letters, digits and apostrophes.
std::vector<std::string> tokenize(const std::string& text) {
  std::vector<std::string> tokens;
  std::string current;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '\'' || u >= 0x80) {
      current += static_cast<char>(std::tolower(u));
    } else if (!current.empty()) {
      tokens.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) {
    tokens.push_back(std::move(current));
  }
  return tokens;
}

std::size_t words(troupe::TaskContext&, const Doc& doc) {
  return tokenize(doc.text).size();
}

std::map<std::string, int> word_counts(const std::string& text, int min_count) {
  std::map<std::string, int> counts;
  for (auto& token : tokenize(text)) {
    ++counts[token];
  }
  std::erase_if(counts, [&](const auto& entry) { return entry.second < min_count; });
  return counts;
}

struct WordCount {
  std::string word;
  int count = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(WordCount, word, count)

// The n most frequent words of a word_counts result, most frequent first
// (ties alphabetical).
std::vector<WordCount> top_words(const std::map<std::string, int>& counts, int n) {
  if (n < 0) {
    throw std::invalid_argument("top_words: n must not be negative (got " + std::to_string(n) + ")");
  }
  std::vector<WordCount> all;
  all.reserve(counts.size());
  for (const auto& [word, count] : counts) {
    all.push_back({word, count});
  }
  const auto keep = std::min(all.size(), static_cast<std::size_t>(n));
  std::partial_sort(
      all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep), all.end(),
      [](const WordCount& a, const WordCount& b) { return a.count != b.count ? a.count > b.count : a.word < b.word; });
  all.resize(keep);
  return all;
}

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot open '" + path + "' for reading");
  }
  troupe_text::Sha256 hash;
  std::vector<char> buffer(1 << 16);
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
    hash.update(buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  return hash.hex_digest();
}

// Worker-local state left by the open_dict initializer.
struct Dictionary {
  std::set<std::string> words;
};

Dictionary load_dictionary(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot open dictionary '" + path + "'");
  }
  Dictionary dict;
  for (std::string line; std::getline(in, line);) {
    for (auto& token : tokenize(line)) {
      dict.words.insert(std::move(token));
    }
  }
  return dict;
}

struct KnownWords {
  std::size_t known = 0;
  std::size_t unknown = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(KnownWords, known, unknown)

KnownWords count_known(const Dictionary& dict, const std::string& text) {
  KnownWords out;
  for (const auto& token : tokenize(text)) {
    ++(dict.words.count(token) != 0 ? out.known : out.unknown);
  }
  return out;
}

KnownWords known_words(troupe::TaskContext& ctx, const std::string& text) {
  return count_known(ctx.worker().get<Dictionary>(), text);
}

// The same dictionary as a worker class: each worker loads its own once,
// when a method first needs it (or at start, when the pool's initializer
// names text.speller), and drops it when the worker retires.
class Speller {
 public:
  explicit Speller(const std::string& path) : dict_(load_dictionary(path)) {}

  KnownWords check(const std::string& text) const { return count_known(dict_, text); }
  bool is_word(const std::string& word) const { return dict_.words.count(word) != 0; }

 private:
  Dictionary dict_;
};

}  // namespace

// Counts a text's words into the pool's shared state: the counter gets the
// number of words, the dict each word's running count across every worker.
std::size_t tally(troupe::TaskContext& ctx, const std::string& text, const std::string& counter,
                  const std::string& dict) {
  const auto tokens = tokenize(text);
  const troupe::SharedDict counts = ctx.dict(dict);
  std::map<std::string, std::int64_t> seen;
  for (const auto& token : tokens) {
    ++seen[token];
  }
  for (const auto& [word, n] : seen) {
    counts.update(word, [n = n](std::optional<troupe::Value> old) -> std::optional<troupe::Value> {
      return (old ? old->get<std::int64_t>() : 0) + n;
    });
  }
  ctx.counter(counter).add(static_cast<std::int64_t>(tokens.size()));
  return tokens.size();
}

TROUPE_PLUGIN(text, "1.0.0") {
  plugin.task(
      "add",
      [](std::int64_t a, std::int64_t b) {
        std::int64_t sum = 0;
        if (__builtin_add_overflow(a, b, &sum)) {
          throw std::overflow_error("add: " + std::to_string(a) + " + " + std::to_string(b) + " overflows int64");
        }
        return sum;
      },
      "Add two integers", troupe::arg("a"), troupe::arg("b"));
  plugin.task("tokenize", tokenize, "Split text into lowercase word tokens", troupe::arg("text"));
  plugin.task("words", words, "Count the words of a document {id, text}", troupe::arg("doc"));
  plugin.task("word_counts", word_counts, "Count each word of a text, keeping those seen min_count times",
              troupe::arg("text"), troupe::arg("min_count") = 1);
  plugin.task("top_words", top_words, "The n most frequent words of a word_counts result, most frequent first",
              troupe::arg("counts"), troupe::arg("n") = 3);
  plugin.task(
      "upper",
      [](const std::string& text) {
        std::string out = text;
        for (char& c : out) {
          c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        return out;
      },
      "Uppercase ASCII letters", troupe::arg("text"));
  plugin.task(
      "sha256", [](const std::string& text) { return troupe_text::sha256_hex(text); }, "SHA-256 of a string, as hex",
      troupe::arg("text"));
  plugin.task("tally", tally,
              "Add a text's word count to the shared counter `counter` and each word's count to the shared dict "
              "`dict` (troupe/sdk/shared.hpp); the number of words",
              troupe::arg("text"), troupe::arg("counter") = "words", troupe::arg("dict") = "word_counts");
  plugin.task("sha256_file", sha256_file, "SHA-256 of a file's bytes, as hex", troupe::arg("path"));
  plugin.task("known_words", known_words, "Count known and unknown words against the worker's dictionary",
              troupe::arg("text"));
  plugin.initializer(
      "open_dict",
      [](troupe::Worker& worker, const std::string& path) { worker.emplace<Dictionary>(load_dictionary(path)); },
      "Load a word list into the worker (one or more words a line)", troupe::arg("path"));
  plugin.finalizer(
      "close_dict", [](troupe::Worker& worker) { worker.reset<Dictionary>(); }, "Drop the worker's dictionary");
  plugin
      .worker_class<Speller, std::string>("speller", "A word list loaded once per worker (one or more words a line)",
                                          troupe::arg("path") = "/usr/share/dict/words")
      .method("spell_check", &Speller::check, "Count known and unknown words against the worker's word list",
              troupe::arg("text"))
      .method("is_word", &Speller::is_word, "Whether a lowercase word is in the worker's word list",
              troupe::arg("word"));
}
