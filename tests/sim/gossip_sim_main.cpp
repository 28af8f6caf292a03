// gossip-sim: runs the deterministic cluster simulator once and prints its figures.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "node/flags.h"
#include "workload.h"

int main(int argc, char** argv) {
  using namespace gossip_kv;
  CLI::App app{"gossip-sim: one-thread deterministic simulation of a gossip-kv cluster"};
  int nodes = 25;
  sim::NetConfig net;
  sim::Workload w;
  std::string dist = "exponential";
  std::uint64_t seed = 1;
  GossipConfig gossip;
  app.add_option("--nodes", nodes, "replicas")->capture_default_str()->check(CLI::Range(1, 2000));
  app.add_option("--latency-ms", net.latency_ms, "mean one-way latency")->capture_default_str();
  app.add_option("--latency-dist", dist, "constant|uniform|exponential")->capture_default_str();
  app.add_option("--loss", net.loss, "message loss probability")->capture_default_str();
  app.add_option("--duplicate", net.duplicate, "duplication probability")->capture_default_str();
  app.add_option("--rate", w.ops_per_s, "client operations per second")->capture_default_str();
  app.add_option("--read-fraction", w.read_fraction, "share of reads")->capture_default_str();
  app.add_option("--keys", w.keys, "key count")->capture_default_str();
  app.add_option("--duration-ms", w.duration_ms, "load duration")->capture_default_str();
  app.add_option("--quiet-ms", w.quiet_ms, "quiet period after the load")->capture_default_str();
  app.add_option("--partitioned", w.partitioned, "nodes cut off from the rest")->capture_default_str();
  app.add_option("--partition-from-ms", w.partition_from_ms, "cut start")->capture_default_str();
  app.add_option("--partition-to-ms", w.partition_to_ms, "heal time")->capture_default_str();
  app.add_option("--seed", seed, "seed")->capture_default_str();
  add_gossip_flags(app, gossip);
  CLI11_PARSE(app, argc, argv);
  net.dist = dist == "constant" ? sim::LatencyDist::kConstant
             : dist == "uniform" ? sim::LatencyDist::kUniform
                                 : sim::LatencyDist::kExponential;

  sim::Simulator s(nodes, gossip, net, seed);
  sim::Figures f = sim::run(s, w, seed);
  std::printf("nodes %d, latency %.0f ms %s, rate %.0f ops/s (reads %.0f%%), %lld ms + %lld ms quiet, seed %llu\n",
              nodes, net.latency_ms, dist.c_str(), w.ops_per_s, w.read_fraction * 100,
              static_cast<long long>(w.duration_ms), static_cast<long long>(w.quiet_ms),
              static_cast<unsigned long long>(seed));
  std::printf("operations %llu (writes %llu, reads %llu)\n", static_cast<unsigned long long>(f.ops),
              static_cast<unsigned long long>(f.writes), static_cast<unsigned long long>(f.reads));
  std::printf("node-to-node messages %llu = %.2f per operation, %.2f per write\n",
              static_cast<unsigned long long>(f.messages), f.msgs_per_op,
              f.writes ? double(f.messages) / double(f.writes) : 0.0);
  std::printf("convergence observed: p50 %lld ms, p95 %lld ms, max %lld ms (%llu writes, %llu never)\n",
              static_cast<long long>(f.observed_p50_ms), static_cast<long long>(f.observed_p95_ms),
              static_cast<long long>(f.observed_max_ms), static_cast<unsigned long long>(f.observed_count),
              static_cast<unsigned long long>(f.observed_pending));
  std::printf("convergence by the nodes: worst node p50 %lld ms, max %lld ms (%llu measured, %llu pending)\n",
              static_cast<long long>(f.core_p50_ms), static_cast<long long>(f.core_max_ms),
              static_cast<unsigned long long>(f.core_count), static_cast<unsigned long long>(f.core_pending));
  std::printf("stale reads %llu; replicas identical: %s; lost writes %llu\n",
              static_cast<unsigned long long>(f.stale_reads), f.converged ? "yes" : "NO",
              static_cast<unsigned long long>(f.lost_writes));
  return f.converged && f.lost_writes == 0 ? 0 : 1;
}
