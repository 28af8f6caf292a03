// gossip-bench's options: Maelstrom's flag names and meanings where Maelstrom has them, and the
// defaults that make `bash scripts/bench.sh` a useful 30-second demonstration.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/latency_dist.h"

namespace gossip_bench {

using gossip_kv::LatencyDist;  // common/latency_dist.h
enum class WriteType { kWrite, kBenchWrite };
// Jepsen's partition targets (jepsen.nemesis.combined): isolate one node, split into a
// majority and a minority, or a ring in which every node hears a different majority.
enum class FaultKind { kOne, kMajority, kMajoritiesRing };
// The pause nemesis's targets: one node, or a minority (Jepsen's :one and :minority).
enum class PauseKind { kOne, kMinority };

struct Options {
  // The node binary; empty means the gossip-kv next to gossip-bench.
  std::string bin;
  // Arguments for every node, split on spaces. `--profile fast`: the low-latency profile is
  // what a first run should show; compare with `--profile frugal`.
  std::string node_args = "--profile fast";
  int node_count = 5;
  // Seconds of client load per condition (Maelstrom's --time-limit).
  double time_limit_s = 10;
  // Client operations per second over the whole cluster (Maelstrom's --rate).
  double rate = 50;
  // Clients c1..cK, each with at most one request in flight (Maelstrom's --concurrency; "2n"
  // means twice the node count).
  int concurrency = 10;
  // Mean one-way node-to-node latency in ms; client messages are not delayed.
  double latency_ms = 100;
  LatencyDist latency_dist = LatencyDist::kConstant;
  // Every fault condition (kFaultConditions) runs its nemesis on one schedule: a fault on for
  // an interval, then healed for one. 1.5 s: the default 10 s of load sees each of the three
  // partition kinds once.
  double nemesis_interval_s = 1.5;
  std::vector<FaultKind> fault_kinds = {FaultKind::kOne, FaultKind::kMajority,
                                        FaultKind::kMajoritiesRing};
  std::vector<PauseKind> pause_kinds = {PauseKind::kOne, PauseKind::kMinority};
  // The kill condition's targets, in turn (the same shapes as pauses).
  std::vector<PauseKind> kill_kinds = {PauseKind::kOne};
  // The loss and duplicate conditions: the share of node-to-node messages dropped, or
  // delivered twice, while a fault is on.
  double loss = 0.3;
  double duplicate = 0.3;
  // The clock-skew condition: each node's clock runs ahead or behind by an offset drawn
  // uniformly from [-clock_skew_ms, +clock_skew_ms], for the whole condition (the node needs
  // gossip-kv's --clock-offset-ms).
  double clock_skew_ms = 500;
  // The burst condition: at each fault time, this many writes to distinct new keys go to one
  // random node at once, on top of the load.
  int burst_writes = 2000;
  std::uint64_t seed = 1;
  int key_count = 20;
  double read_fraction = 0.5;
  WriteType write_type = WriteType::kWrite;
  // After the load: the longest wait for identical replicas and settled convergence figures.
  // 15 s covers `frugal`'s slowest acknowledgement path (3 s delay, 6 s grace) with room.
  double quiet_period_s = 15;
  // A request unanswered for this long counts as a timeout and frees its client.
  double request_timeout_s = 1;
  // Conditions to run, in order: "normal" or one of kFaultConditions.
  std::vector<std::string> conditions = {"normal", "partition"};
  std::string store_dir = "store";
  // Measure as for a node without bench_stats (polling reads, stand-in versions), even when
  // the nodes have it: a like-for-like comparison of gossip-kv with another node.
  bool poll_reads = false;
  // A sweep (`--sweep NAME=v1,v2,...`): one run per value of NAME, which is node-count, rate,
  // latency, or a node flag without its dashes (passed to every node as --NAME v), and per
  // profile of sweep_profiles (empty: the node args as given). sweep.h.
  std::string sweep_name;
  std::vector<std::string> sweep_values;
  std::vector<std::string> sweep_profiles;
  bool plots = true;
};

// The conditions with a nemesis, in the order `--nemesis all` runs them.
inline const std::vector<std::string> kFaultConditions = {"partition", "pause", "kill", "loss", "duplicate",
                                                           "clock-skew", "burst"};

// Parses argv into *out. Returns -1 to go on, or an exit code (0 after --help, 2 on a usage
// error, with the message already printed).
int parse_options(int argc, char** argv, Options* out);

std::string to_string(LatencyDist d);
std::string to_string(WriteType t);
std::string to_string(FaultKind k);
std::string to_string(PauseKind k);

}  // namespace gossip_bench
