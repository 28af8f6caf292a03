// The hybrid logical clock behind every version this node issues.
#include <algorithm>
#include <thread>

#include <gtest/gtest.h>

#include "gossip_kv/limits.h"
#include "gossip_kv/version.h"

#include <cmath>

namespace gossip_kv {
namespace {

TEST(HybridClock, StrictlyIncreasingAndNeverBehind) {
  HybridClock c;
  std::int64_t a = c.next(100, 0);
  EXPECT_EQ(a, 100);
  EXPECT_EQ(c.next(100, 0), 101) << "same wall clock: still newer";
  EXPECT_EQ(c.next(50, 0), 102) << "a clock that steps back does not move versions back";
  EXPECT_EQ(c.next(200, 500), 501) << "a version is newer than the one it replaces";
  c.observe(10'000, 200);
  EXPECT_EQ(c.next(200, 0), 10'001);
}

// A version far ahead (issue 10: kv_merge with ts 1e11) cannot drag the clock beyond the
// window, and no input overflows.
TEST(HybridClock, NeverDraggedBeyondTheWindowAndNeverOverflows) {
  const std::int64_t now = 1'700'000'000'000'000;
  HybridClock c;
  c.observe(100'000'000'000'000'000, now);
  EXPECT_EQ(c.last(), now + limits::kVersionAheadMaxUs);
  EXPECT_EQ(c.next(now, 0), now + limits::kVersionAheadMaxUs + 1);
  c.observe(INT64_MAX, INT64_MAX);
  EXPECT_EQ(c.last(), INT64_MAX);
  EXPECT_EQ(c.next(INT64_MAX, INT64_MAX), INT64_MAX) << "saturates instead of wrapping";
  HybridClock d;
  d.observe(INT64_MIN, INT64_MIN);
  EXPECT_EQ(d.next(INT64_MIN, INT64_MIN), 1) << "the clock starts at 0";
  EXPECT_EQ(d.next(0, INT64_MAX), INT64_MAX);
}

TEST(Version, SecondsToUsSaturates) {
  EXPECT_EQ(seconds_to_us(1.5), 1'500'000);
  EXPECT_EQ(seconds_to_us(1e300), INT64_MAX);
  EXPECT_EQ(seconds_to_us(-1e300), INT64_MIN);
  EXPECT_EQ(seconds_to_us(std::nan("")), 0);
  EXPECT_EQ(add_saturating(INT64_MAX, 1), INT64_MAX);
  EXPECT_EQ(add_saturating(INT64_MIN, -1), INT64_MIN);
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
