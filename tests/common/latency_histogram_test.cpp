// The one latency histogram (node, simulator and gossip-bench) and the nearest-rank percentile.
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/latency_histogram.h"
#include "common/percentile.h"

namespace gossip_kv {
namespace {

TEST(LatencyHistogram, ExactPercentilesBelowTenSeconds) {
  LatencyHistogram h;
  EXPECT_EQ(h.percentile(0.5), 0);
  for (int ms = 1; ms <= 100; ++ms) h.add(ms);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.percentile(0.5), 50);
  EXPECT_EQ(h.percentile(0.95), 95);
  EXPECT_EQ(h.percentile(1.0), 100);
  EXPECT_EQ(h.max(), 100);
  h.add(12'345);
  EXPECT_EQ(h.max(), 12'345);
  EXPECT_EQ(h.percentile(1.0), 12'345) << "coarse buckets never report past the max";
  h.add_zeros(1000);
  EXPECT_EQ(h.percentile(0.5), 0);
}

TEST(LatencyHistogram, BucketsListEverySampleOnceInAscendingOrder) {
  LatencyHistogram h;
  for (std::int64_t ms : {7, 7, 3, 12'345, 12'349, 250'000}) h.add(ms);
  h.add_zeros(2);
  std::vector<std::pair<std::int64_t, std::uint32_t>> seen;
  h.for_each_bucket([&](std::int64_t lower_ms, std::uint32_t n) { seen.emplace_back(lower_ms, n); });
  std::vector<std::pair<std::int64_t, std::uint32_t>> want = {
      {0, 2}, {3, 1}, {7, 2}, {12'340, 2}, {99'990, 1}};  // 10 ms buckets past 10 s; the last holds the rest
  EXPECT_EQ(seen, want);
}

TEST(LatencyHistogram, MergingAnotherHistogramsBucketsKeepsItsPercentiles) {
  LatencyHistogram a;
  for (std::int64_t ms : {1, 5, 5, 9, 10'004, 10'017, 42'000}) a.add(ms);
  LatencyHistogram merged;
  a.for_each_bucket([&](std::int64_t lower_ms, std::uint32_t n) { merged.merge_bucket(lower_ms, n); });
  merged.raise_max(a.max());
  EXPECT_EQ(merged.count(), a.count());
  EXPECT_EQ(merged.max(), 42'000);
  for (double p : {0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0}) {
    EXPECT_EQ(merged.percentile(p), a.percentile(p)) << "p=" << p;
  }
}

TEST(Percentile, NearestRankOfASample) {
  EXPECT_EQ(percentile({}, 0.5), 0);
  EXPECT_EQ(percentile({5, 1, 3, 2, 4}, 0.0), 1) << "rank at least 1";
  EXPECT_EQ(percentile({5, 1, 3, 2, 4}, 0.5), 3) << "rank ceil(2.5) = 3";
  EXPECT_EQ(percentile({5, 1, 3, 2, 4}, 0.8), 4);
  EXPECT_EQ(percentile({5, 1, 3, 2, 4}, 1.0), 5);
  EXPECT_EQ(nearest_rank(0.95, 100), 95u);
}

}  // namespace
}  // namespace gossip_kv
