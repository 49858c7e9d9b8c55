// The engine's public headers that have no need of TBB do not bring it into
// a user's code (ThreadPool keeps its arena in engine/src/thread/).
#include "troupe/cpu_count.hpp"
#include "troupe/errors.hpp"
#include "troupe/executor.hpp"
#include "troupe/future.hpp"
#include "troupe/interrupt.hpp"
#include "troupe/map.hpp"
#include "troupe/outcome.hpp"
#include "troupe/parallelize.hpp"
#include "troupe/pool_stats.hpp"
#include "troupe/process_pool.hpp"
#include "troupe/progress.hpp"
#include "troupe/promise.hpp"
#include "troupe/registry.hpp"
#include "troupe/runner.hpp"
#include "troupe/thread_pool.hpp"
#include "troupe/wait.hpp"

#include <gtest/gtest.h>

namespace {

#if defined(TBB_VERSION_MAJOR) || defined(TBB_INTERFACE_VERSION) || defined(__TBB_tbb_stddef_H)
constexpr bool kTbbReachedUs = true;
#else
constexpr bool kTbbReachedUs = false;
#endif

TEST(PublicHeaders, BringNoTbbHeaderIntoUserCode) {
  EXPECT_FALSE(kTbbReachedUs);
}

}  // namespace
