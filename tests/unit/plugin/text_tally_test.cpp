// The bundled text plugin's tally task: word counts into a pool's shared
// counter and dict, the same on a ThreadPool and a ProcessPool.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "support/paths.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/registry.hpp"
#include "troupe/thread_pool.hpp"

namespace {

using troupe::Value;

void tally_three_texts(troupe::Executor& pool) {
  const auto words = pool.counter("words");
  const auto counts = pool.dict("word_counts");
  std::vector<troupe::Future<Value>> runs;
  for (const char* text : {"the cat and the hat", "The cat", "a hat"}) {
    runs.push_back(pool.call("text.tally", text));
  }
  std::int64_t returned = 0;
  for (auto& f : runs) {
    returned += f.get().get<std::int64_t>();
  }
  EXPECT_EQ(returned, 9);
  EXPECT_EQ(words.load(), 9);
  EXPECT_EQ(counts.get("the"), Value(3));
  EXPECT_EQ(counts.get("cat"), Value(2));
  EXPECT_EQ(counts.get("hat"), Value(2));
  EXPECT_EQ(counts.snapshot().size(), 5u);
}

TEST(TextTally, CountsIntoSharedStateOnAThreadPool) {
  static troupe::Registry registry;
  if (registry.plugins().empty()) {
    registry.load(troupe::test::plugin_path("text"));
  }
  troupe::ThreadPool pool({.max_workers = 2, .registry = &registry});
  tally_three_texts(pool);
}

TEST(TextTally, CountsIntoSharedStateOnAProcessPool) {
  troupe::ProcessPool pool({troupe::test::plugin_path("text")},
                           {.max_workers = 2, .worker_executable = troupe::test::binary_path("troupe-worker")});
  tally_three_texts(pool);
}

TEST(TextTally, WithoutTheCounterOnThePoolTheTaskSaysWhich) {
  troupe::ProcessPool pool({troupe::test::plugin_path("text")},
                           {.max_workers = 1, .worker_executable = troupe::test::binary_path("troupe-worker")});
  pool.dict("word_counts");
  try {
    pool.call("text.tally", "x").get();
    FAIL() << "tally ran without the counter";
  } catch (const troupe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no shared counter 'words'"), std::string::npos) << e.what();
  }
}

}  // namespace
