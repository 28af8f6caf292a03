// The recorded history of a gossip-bench run and the checkers over it: pure functions, so that
// each can be shown to fire on a crafted history (tests/bench_runner).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gossip_bench {

struct Op {
  enum class Kind { kWrite, kRead } kind = Kind::kWrite;
  int node = 0;
  std::int64_t key = 0;
  std::int64_t value = -1;      // write: the unique value; read: what it returned (-1: none)
  std::int64_t ts_us = 0;       // the version timestamp (write_ok ts, kv_read_ok ts)
  std::int64_t invoke_us = 0;
  std::int64_t complete_us = -1;  // -1: never answered
  bool ok = false;              // answered without error (a read of a missing key is ok)
};

// What each node holds at the end: key -> (value, ts_us), and its reported figures.
struct FinalState {
  std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> held;
  std::string digest;
  std::uint64_t total_gossip_msgs = 0;
  std::uint64_t routed_before_report = 0;  // node-to-node lines the router read before the reply
  std::uint64_t stale_reads = 0;
  std::uint64_t convergence_count = 0, convergence_pending = 0;
  std::int64_t convergence_p50 = 0, convergence_max = 0;
};

struct Checks {
  std::uint64_t writes_ok = 0, reads_ok = 0, ops = 0, answered = 0;
  std::uint64_t stale_reads = 0;       // returned older than a write acknowledged before it began
  std::uint64_t lost_writes = 0;       // acknowledged, yet a node ends older than it on its key
  int divergent_nodes = 0;             // digests differing from the most common one
  std::uint64_t routed = 0, reported_msgs = 0;
  bool msg_count_mismatch = false;
  std::int64_t stable_p50_ms = 0, stable_max_ms = 0;  // history estimate (Maelstrom's stable latency)
  std::int64_t latency_p50_ms = 0, latency_p99_ms = 0, latency_max_ms = 0;
};

Checks check(const std::vector<Op>& history, const std::vector<FinalState>& finals);

// p in [0,1] of a sample (0 when empty).
std::int64_t percentile(std::vector<std::int64_t> v, double p);

}  // namespace gossip_bench
