// LatencyHistogram: the one latency histogram, used by the replication engine for its own
// convergence and lag figures and by gossip-bench to merge the nodes' histograms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gossip_kv {

// A latency histogram: 1 ms buckets up to 10 s, 10 ms buckets up to 100 s (larger samples land
// in the last bucket; max is exact). Percentiles are exact to the millisecond below 10 s, in
// 76 KB per histogram whatever the sample count.
class LatencyHistogram {
 public:
  void add(std::int64_t ms);
  void add_zeros(std::uint64_t n);
  // Merges a bucket another histogram listed with for_each_bucket: n samples in the bucket
  // holding lower_ms. The max stays as it is: pass the other histogram's to raise_max.
  void merge_bucket(std::int64_t lower_ms, std::uint64_t n);
  void raise_max(std::int64_t ms) { max_ = ms > max_ ? ms : max_; }
  [[nodiscard]] std::uint64_t count() const { return count_; }
  // The bucket's lower bound at the nearest rank (common/percentile.h), the exact max for the
  // top rank and never more than the max; 0 when empty.
  [[nodiscard]] std::int64_t percentile(double p) const;
  [[nodiscard]] std::int64_t max() const { return max_; }
  // Calls fn(lower_ms, count) for every bucket holding samples, in ascending order. A bucket
  // is 1 ms wide below 10 s and 10 ms wide above; the last one also holds everything beyond.
  template <typename Fn>
  void for_each_bucket(Fn&& fn) const {
    for (std::size_t b = 0; b < kBuckets; ++b) {
      if (buckets_[b] != 0) fn(lower_ms(b), buckets_[b]);
    }
  }

 private:
  static std::size_t bucket_of(std::int64_t ms);
  static std::int64_t lower_ms(std::size_t bucket) {
    return static_cast<std::int64_t>(bucket < kFineBuckets ? bucket
                                                           : kFineBuckets + (bucket - kFineBuckets) * 10);
  }
  static constexpr std::size_t kFineBuckets = 10'000;
  static constexpr std::size_t kBuckets = kFineBuckets + 9'000;
  std::vector<std::uint32_t> buckets_ = std::vector<std::uint32_t>(kBuckets);
  std::uint64_t count_ = 0;
  std::int64_t max_ = 0;
};

}  // namespace gossip_kv
