#include "common/latency_histogram.h"

#include <algorithm>

#include "common/percentile.h"

namespace gossip_kv {

std::size_t LatencyHistogram::bucket_of(std::int64_t ms) {
  ms = std::max<std::int64_t>(ms, 0);
  auto fine = static_cast<std::int64_t>(kFineBuckets);
  return ms < fine ? static_cast<std::size_t>(ms)
                   : std::min(kBuckets - 1, kFineBuckets + static_cast<std::size_t>((ms - fine) / 10));
}

void LatencyHistogram::add_zeros(std::uint64_t n) {
  buckets_[0] += static_cast<std::uint32_t>(n);
  count_ += n;
}

void LatencyHistogram::add(std::int64_t ms) {
  ms = std::max<std::int64_t>(ms, 0);
  ++buckets_[bucket_of(ms)];
  ++count_;
  max_ = std::max(max_, ms);
}

void LatencyHistogram::merge_bucket(std::int64_t lower_ms, std::uint64_t n) {
  buckets_[bucket_of(lower_ms)] += static_cast<std::uint32_t>(n);
  count_ += n;
}

std::int64_t LatencyHistogram::percentile(double p) const {
  if (count_ == 0) return 0;
  std::uint64_t rank = nearest_rank(p, count_);
  if (rank >= count_) return max_;
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < kBuckets; ++b) {
    seen += buckets_[b];
    if (seen < rank) continue;
    return std::min(lower_ms(b), max_);
  }
  return max_;
}

}  // namespace gossip_kv
