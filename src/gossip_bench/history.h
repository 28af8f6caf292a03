// The recorded history of one gossip-bench condition and the checkers over it. The checkers are
// pure functions of the history and of what the nodes reported at the end, so that each can be
// shown to fire on a crafted history (tests/gossip_bench/checkers_test.cpp). docs/BENCHMARK.md
// defines every figure.
//
// Two clocks: the runner's steady clock orders operations (invoke_us, complete_us: since the
// cluster started); the wall clock (CLOCK_REALTIME, *_wall_us) is the one the nodes take their
// version timestamps from, so a write's version is never older than the wall clock when it was
// invoked (a hybrid logical clock never runs behind its wall clock).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/percentile.h"

namespace gossip_bench {

constexpr std::int64_t kUnknown = -1;

struct Op {
  enum class Kind : std::uint8_t { kWrite, kRead };
  enum class Outcome : std::uint8_t { kTimeout, kOk, kNotFound, kError };
  Kind kind = Kind::kWrite;
  Outcome outcome = Outcome::kTimeout;  // until a reply says otherwise
  int client = 0;
  int node = 0;
  std::int64_t key = 0;
  std::int64_t value = kUnknown;  // write: the unique value written; read: the value returned
  std::int64_t ts_us = kUnknown;  // the version: write_ok.ts or kv_read_ok.ts; for a bench_write,
                                  // learned from a read that returned its value (learn_versions)
  std::int64_t invoke_us = 0;
  std::int64_t complete_us = kUnknown;
  std::int64_t invoke_wall_us = 0;
  std::int64_t complete_wall_us = kUnknown;
  int error_code = 0;
  // The reply came after the request had timed out: the op counts as unanswered (its client
  // had given up), but what the reply says is kept, since the node did serve it.
  bool late = false;
  // An acknowledged write whose node was killed before any other replica held it (the router
  // saw it, ConvergenceObserver::lost_with_crash): gone with the node's memory, which gossip-kv
  // does not keep on disk, and reported apart from writes the protocol lost. The checkers
  // judge the history as if it had not been acknowledged.
  bool lost_with_crash = false;

  [[nodiscard]] bool answered() const { return outcome != Outcome::kTimeout && !late; }
  [[nodiscard]] bool acked_write() const { return kind == Kind::kWrite && outcome == Outcome::kOk && !late; }
  // A read that returned a stored version (not "key not found"), in time or late.
  [[nodiscard]] bool read_found() const { return kind == Kind::kRead && outcome == Outcome::kOk; }
};

// A node's answer to the final read of one key, after the quiet period.
struct FinalRead {
  std::int64_t value = kUnknown;  // kUnknown with ts_us == kUnknown: the key was missing
  std::int64_t ts_us = kUnknown;
  std::int64_t wall_us = 0;  // when the answer was read (wall clock)
};

// A node's convergence_ms from bench_stats.
struct NodeConvergence {
  std::uint64_t count = 0, pending = 0, unmeasured = 0;
  std::int64_t p50 = 0, p95 = 0, p99 = 0, max = 0;
  std::vector<std::pair<std::int64_t, std::uint64_t>> histogram;  // [lower_ms, count], ascending
};

// What one node said at the end: its final reads and its last bench_stats.
struct NodeReport {
  std::map<std::int64_t, FinalRead> held;
  bool final_reads_complete = false;  // every key's final read was answered
  bool answered_stats = false;
  std::string digest;
  std::uint64_t total_writes = 0;  // client writes it took
  std::uint64_t total_gossip_msgs = 0;
  std::uint64_t routed_before_report = 0;  // its peer lines the router read before that reply
  std::uint64_t stale_reads = 0;
  std::uint64_t reads = 0;
  NodeConvergence convergence;
};

// Percentiles of a sample, in its unit.
struct Summary {
  std::uint64_t count = 0;
  std::int64_t p50 = 0, p95 = 0, p99 = 0, max = 0;
};

struct Checks {
  // The workload.
  std::uint64_t ops = 0, answered = 0, timeouts = 0, errors = 0;  // timeouts include late replies
  std::uint64_t writes_ok = 0, reads_ok = 0, reads_not_found = 0;
  std::uint64_t writes_unversioned = 0;  // acknowledged writes whose version no read revealed
  Summary latency_us;                    // answered client requests
  // Stale reads.
  std::uint64_t stale_reads = 0;           // older than a write acknowledged before the read began
  std::vector<std::int64_t> stale_read_invoke_us;  // when each of them was invoked (timeline)
  std::uint64_t nodes_stale_reads = 0;     // the sum of the nodes' own counts
  std::uint64_t node_stale_possible = 0;   // the most the nodes' definition allows, from the history
  bool nodes_stale_beyond_history = false;
  // Safety after the quiet period.
  std::uint64_t lost_writes = 0;  // acknowledged writes some replica ended older than (replicas
                                  // that answered every final read), those lost with a crashed
                                  // node aside
  std::uint64_t lost_with_crash = 0;  // acknowledged writes marked Op::lost_with_crash
  // Acknowledged writes whose version is below a write acknowledged before they were invoked:
  // last-writer-wins keeps the older one (clock skew). Not a failure: the store's contract.
  std::uint64_t overwritten_by_older = 0;
  int divergent_nodes = 0;        // answering nodes whose digest differs from the most common one
  int silent_nodes = 0;           // nodes that did not answer the final bench_stats
  // Messages.
  std::uint64_t routed = 0, reported_msgs = 0;  // over the nodes that answered
  bool msg_count_mismatch = false;
  // Convergence.
  NodeConvergence nodes_convergence;  // merged across nodes: count, pending, percentiles, histogram
  std::uint64_t writes_taken = 0;     // the nodes' total_writes, summed
  std::uint64_t writes_unmeasured_yet = 0;  // taken, but no convergence figure (yet): pending,
                                            // or converged and inside the nodes' grace period
  Summary stable_ms;                  // the history's per-write estimate (a lower bound)
  std::vector<std::int64_t> stable_per_write_ms;
};

// Fills ts_us of writes (bench_write) from any read, in the history or final, that returned
// their unique value. Returns how many acknowledged writes stay unversioned.
std::uint64_t learn_versions(std::vector<Op>& history, const std::vector<NodeReport>& nodes);

Checks check(const std::vector<Op>& history, const std::vector<NodeReport>& nodes);

// Merges the nodes' histograms; percentiles as a node computes them (bucket lower bounds, the
// exact max for the top rank). `more`: killed lives' figures, whose pending and unmeasured
// writes are not carried over (they died with the life).
NodeConvergence merge_convergence(const std::vector<NodeReport>& nodes,
                                  const std::vector<NodeConvergence>& more = {});

// a / b, or 0 when b is 0: the tables' rates (per write, per operation, shares).
inline double ratio(std::uint64_t a, std::uint64_t b) {
  return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
}

// The p-quantile (0..1, nearest rank) of a sample; 0 when empty (common/percentile.h).
using gossip_kv::percentile;
Summary summarize(std::vector<std::int64_t> v);

}  // namespace gossip_bench
