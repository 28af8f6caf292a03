// Percentiles, defined once for the node, the simulator and the cluster runner: the p-quantile
// of n samples is the sample of nearest rank ceil(p * n) (at least 1), counted from the smallest.
#pragma once

#include <cstdint>
#include <vector>

namespace gossip_kv {

// The 1-based nearest rank of the p-quantile (p in 0..1) among n samples.
// REQUIRES: n > 0. ENSURES: 1 <= result; result <= n when p <= 1.
std::uint64_t nearest_rank(double p, std::uint64_t n);

// The p-quantile of a sample, by nearest rank; 0 when the sample is empty.
std::int64_t percentile(std::vector<std::int64_t> v, double p);

}  // namespace gossip_kv
