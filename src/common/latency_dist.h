// The one-way delay model shared by the simulator (tests/sim) and gossip-bench's router.
#pragma once

#include <random>

namespace gossip_kv {

// How a message's delay is drawn around the mean: exactly the mean; uniform on [0, 2 * mean];
// exponential with that mean (Maelstrom's default shape).
enum class LatencyDist { kConstant, kUniform, kExponential };

// One delay, microseconds, not rounded. REQUIRES: mean_us >= 0. An exponential with a zero
// mean gives 0 without drawing from rng.
inline double sample_delay_us(LatencyDist dist, double mean_us, std::mt19937_64& rng) {
  if (dist == LatencyDist::kUniform) {
    return std::uniform_real_distribution<double>(0, 2 * mean_us)(rng);
  }
  if (dist == LatencyDist::kExponential && mean_us > 0) {
    return std::exponential_distribution<double>(1.0 / mean_us)(rng);
  }
  return dist == LatencyDist::kExponential ? 0 : mean_us;
}

}  // namespace gossip_kv
