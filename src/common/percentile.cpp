#include "common/percentile.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace gossip_kv {

std::uint64_t nearest_rank(double p, std::uint64_t n) {
  assert(n > 0);
  auto rank = static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(n)));
  return std::max<std::uint64_t>(rank, 1);
}

std::int64_t percentile(std::vector<std::int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::uint64_t rank = std::min<std::uint64_t>(nearest_rank(p, v.size()), v.size());
  return v[rank - 1];
}

}  // namespace gossip_kv
