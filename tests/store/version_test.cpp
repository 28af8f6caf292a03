// The hybrid logical clock behind every version this node issues.
#include <algorithm>
#include <thread>

#include <gtest/gtest.h>

#include "gossip_kv/version.h"

namespace gossip_kv {
namespace {

TEST(HybridClock, StrictlyIncreasingAndNeverBehind) {
  HybridClock c;
  std::int64_t a = c.next(100, 0);
  EXPECT_EQ(a, 100);
  EXPECT_EQ(c.next(100, 0), 101) << "same wall clock: still newer";
  EXPECT_EQ(c.next(50, 0), 102) << "a clock that steps back does not move versions back";
  EXPECT_EQ(c.next(200, 500), 501) << "a version is newer than the one it replaces";
  c.observe(10'000);
  EXPECT_EQ(c.next(200, 0), 10'001);
}

TEST(HybridClock, UniqueAcrossThreads) {
  HybridClock c;
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::vector<std::int64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) got[t].push_back(c.next(1, 0));
    });
  }
  for (auto& th : threads) th.join();
  std::vector<std::int64_t> all;
  for (auto& g : got) {
    EXPECT_TRUE(std::is_sorted(g.begin(), g.end()));
    all.insert(all.end(), g.begin(), g.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "no timestamp twice";
}

TEST(Version, OrderAndConversion) {
  EXPECT_LT((Version{1, 9}), (Version{2, 0}));
  EXPECT_LT((Version{2, 1}), (Version{2, 2}));
  EXPECT_EQ(seconds_to_us(1704067201.0), 1704067201000000);
  EXPECT_EQ(seconds_to_us(1.0000005), 1000001) << "rounds to nearest";
  EXPECT_DOUBLE_EQ((Version{1500000, 1}).ts_seconds(), 1.5);
}

}  // namespace
}  // namespace gossip_kv
