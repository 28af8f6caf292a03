// Whole clusters in one thread: convergence after partitions, no lost writes, and the nodes'
// own convergence figures against what the simulator saw. Every test prints its seed when it
// fails; GOSSIP_SIM_SEED=<n> runs that seed alone, GOSSIP_SIM_LARGE=1 adds 1,000 replicas.
#include <cstdlib>

#include <gtest/gtest.h>

#include "workload.h"

namespace gossip_kv::sim {
namespace {

std::vector<std::uint64_t> seeds(int count) {
  if (const char* s = std::getenv("GOSSIP_SIM_SEED")) return {std::strtoull(s, nullptr, 10)};
  std::vector<std::uint64_t> out;
  for (int i = 1; i <= count; ++i) out.push_back(static_cast<std::uint64_t>(i) * 7919);
  return out;
}

GossipConfig profile(const char* name) {
  GossipConfig c;
  EXPECT_TRUE(GossipConfig::from_profile(name, &c));
  return c;
}

TEST(Sim, PartitionedClustersConvergeAndLoseNoWrite) {
  for (std::uint64_t seed : seeds(12)) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " (GOSSIP_SIM_SEED to replay)");
    NetConfig net;
    net.latency_ms = 50;
    net.loss = 0.05;
    net.duplicate = 0.02;
    Workload w;
    w.ops_per_s = 80;
    w.keys = 30;
    w.duration_ms = 6000;
    w.partitioned = 2 + static_cast<int>(seed % 3);
    w.partition_from_ms = 1000;
    w.partition_to_ms = 4000;
    // frugal's anti-entropy runs every 3 s: give it as many rounds as fast gets in 3 s.
    w.quiet_ms = seed % 2 ? 3000 : 18000;
    Simulator s(7, profile(seed % 2 ? "fast" : "frugal"), net, seed);
    Figures f = run(s, w, seed);
    EXPECT_TRUE(f.converged) << "replicas differ after the heal and the quiet period";
    EXPECT_EQ(f.lost_writes, 0u) << "a key does not end at its newest write everywhere";
    EXPECT_EQ(f.observed_pending, 0u);
    EXPECT_GT(f.writes, 100u);
  }
}

TEST(Sim, ReplicasIdenticalWithinTwoSecondsOfTheHeal) {
  for (std::uint64_t seed : seeds(6)) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    NetConfig net;
    Workload w;
    w.ops_per_s = 50;
    w.duration_ms = 5000;
    w.partitioned = 3;
    w.partition_from_ms = 500;
    w.partition_to_ms = 5000;  // heals as the load ends
    w.quiet_ms = 2000;         // the figures are taken 2 s after the heal
    Simulator s(8, profile("fast"), net, seed);
    Figures f = run(s, w, seed);
    EXPECT_TRUE(f.converged);
    EXPECT_EQ(f.lost_writes, 0u);
  }
}

TEST(Sim, CoreConvergenceMatchesWhatTheSimulatorObserved) {
  // No loss, no partition, no reordering (constant latency), and a key space so large that no
  // key is written twice: each replica acknowledges a write on the message that carries it,
  // so the nodes' own figures must equal what the simulator saw, to the millisecond.
  for (std::uint64_t seed : seeds(6)) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    NetConfig net;
    net.dist = LatencyDist::kConstant;
    Workload w;
    w.keys = 1'000'000;
    w.duration_ms = 4000;
    Simulator s(6, profile("fast"), net, seed);
    Figures f = run(s, w, seed);
    EXPECT_EQ(f.core_count, f.writes) << "every write measured by its node";
    EXPECT_EQ(f.core_pending, 0u);
    EXPECT_EQ(f.observed_count, f.writes);
    EXPECT_EQ(f.core_max_ms, f.observed_max_ms);
  }
}

TEST(Sim, CoreConvergenceIsNeverEarlierThanObserved) {
  // With reordering, loss and keys overwritten across nodes, a replica can hold a write (or a
  // newer version of its key) before it can vouch for it, and acknowledgements can overtake
  // each other: the nodes' figures may then be later than what the simulator saw, never
  // earlier.
  for (std::uint64_t seed : seeds(6)) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    NetConfig net;
    net.loss = 0.02;
    net.dist = LatencyDist::kUniform;
    Workload w;
    w.keys = 20;
    w.duration_ms = 4000;
    Simulator s(6, profile("fast"), net, seed);
    Figures f = run(s, w, seed);
    EXPECT_EQ(f.core_pending, 0u);
    EXPECT_GE(f.core_max_ms, f.observed_max_ms);
    EXPECT_GE(f.core_p50_ms, f.observed_p50_ms);
  }
}

TEST(Sim, SameSeedSameRun) {
  auto once = [] {
    NetConfig net;
    net.loss = 0.1;
    Workload w;
    w.duration_ms = 2000;
    Simulator s(5, profile("fast"), net, 99);
    Figures f = run(s, w, 99);
    return std::tuple{f.messages, f.observed_max_ms, s.store(1).digest()};
  };
  EXPECT_EQ(once(), once());
}

TEST(Sim, LargeClusterWithPartitions) {
  bool large = std::getenv("GOSSIP_SIM_LARGE") != nullptr;
  int nodes = large ? 1000 : 60;
  NetConfig net;
  Workload w;
  w.ops_per_s = large ? 200 : 60;
  w.duration_ms = 4000;
  w.partitioned = nodes / 3;
  w.partition_from_ms = 1000;
  w.partition_to_ms = 3000;
  w.quiet_ms = 12000;  // frugal's anti-entropy round is 5 s
  Simulator s(nodes, profile("frugal"), net, 4242);
  Figures f = run(s, w, 4242);
  EXPECT_TRUE(f.converged);
  EXPECT_EQ(f.lost_writes, 0u);
}

}  // namespace
}  // namespace gossip_kv::sim
