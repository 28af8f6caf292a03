// One condition of a gossip-bench run, from the nodes' start to their exit: init, client load
// (with the condition's nemesis), heal, the quiet period, the final read of every
// key on every node and the final bench_stats, then shutdown. Everything it saw is returned.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cluster.h"
#include "history.h"
#include "options.h"

namespace gossip_bench {

struct FaultSpan {
  double start_s = 0, end_s = 0;  // since the cluster started
  std::string kind;               // Fault::kind: "one", "majority", ..., "pause", "loss"
  std::string description;
};

// One burst of the burst condition: writes to distinct new keys sent to one node at once.
struct BurstSpan {
  double start_s = 0;  // since the cluster started
  int node = 0;
  std::uint64_t writes = 0, acked = 0;
  // From the burst until every replica held every acknowledged write of it (the router's
  // view); kUnknown when some write never got everywhere.
  std::int64_t spread_ms = -1;
};

// One write's convergence figure as its node gave it (bench_figures), beside the router's.
struct WriteFigure {
  int node = 0;          // the node that took the write
  std::int64_t ts_us = 0;  // its version
  std::int64_t node_ms = 0;
  // The router's; kUnknown: it registered no such write (its acknowledgement timed out);
  // ConvergenceObserver::kNever: it registered it and never saw it reach every replica.
  std::int64_t observed_ms = kUnknown;
};

// Every figure the nodes kept, set against the router's, write by write: a node's figure
// earlier than the truth beyond the clocks' spread fails the run (docs/BENCHMARK.md).
struct FigureCheck {
  std::uint64_t compared = 0;    // figures with a router figure beside them
  std::uint64_t unobserved = 0;  // figures of writes the router did not register
  std::uint64_t dropped = 0;     // older figures the nodes no longer kept (bench_figures' bound)
  std::uint64_t earlier = 0;     // node_ms + tolerance_ms < observed_ms (always, for kNever)
  std::uint64_t later = 0;       // node_ms above observed_ms by more than 10 % and 10 ms
  std::int64_t tolerance_ms = 1; // rounding, plus the spread of the clocks the nemesis skewed
};

struct ConditionRun {
  std::string condition;  // "normal" or one of kFaultConditions
  std::vector<Op> history;
  std::vector<NodeReport> nodes;  // n1..nN at index 0..N-1
  std::vector<FaultSpan> faults;
  std::vector<BurstSpan> bursts;
  std::vector<SecondCounts> seconds;  // node-to-node messages per second
  Checks checks;
  // Convergence as the router saw it (observer.h): per write, ms from its invocation until
  // every replica held it; writes some replica never held; false when the nodes' messages
  // were not understood (or the workload was bench_write).
  std::vector<std::int64_t> observed_ms;
  std::vector<std::int64_t> observed_taken_us;  // when each write of observed_ms was taken
  std::uint64_t observed_never = 0;
  bool observed = false;
  double load_start_s = 0, load_end_s = 0, total_s = 0;
  // Since the load ended: when every node first reported the same digest, and when, besides,
  // every write a node took had its convergence figure. kUnknown: not within the quiet period.
  std::int64_t identical_after_ms = kUnknown;
  std::int64_t settled_after_ms = kUnknown;
  std::uint64_t skipped_ops = 0;   // due while every client had a request in flight
  std::uint64_t late_replies = 0;  // replies after their request had timed out
  std::uint64_t load_msgs = 0;  // node-to-node messages the router read during the load
  std::map<std::string, std::uint64_t> load_msgs_by_type;  // the same, by body `type`
  std::uint64_t restarts = 0;  // nodes the kill nemesis restarted
  // The convergence figures each killed node reported just before its kill: merged into the
  // nodes' own, which would otherwise leave out every write its life had settled.
  std::vector<NodeConvergence> killed_lives;
  // The nodes' figures one by one (killed lives' included), and how they compare with the
  // router's; empty for nodes that do not answer bench_figures.
  std::vector<WriteFigure> figures;
  FigureCheck figure_check;
  // Node-to-node messages read from lives the kill nemesis ended: in no node's final count.
  std::uint64_t routed_by_earlier_lives = 0;
  // Every node-to-node message the router read, up to the final bench_stats.
  [[nodiscard]] std::uint64_t msgs_in_all() const {
    return foreign ? routed_at_end : checks.routed + routed_by_earlier_lives;
  }
  // The nodes did not answer bench_stats (not gossip-kv): convergence came from polling reads
  // (observed_by), the nodes' own figures are n/a, and "in all" counts to the end of the run.
  bool foreign = false;
  std::string observed_by = "router";
  std::uint64_t routed_at_end = 0;
  std::uint64_t dropped = 0, duplicated = 0, unroutable = 0, undeliverable = 0, overflowed = 0;
  WriteType write_type = WriteType::kWrite;
  std::vector<std::string> node_problems;  // nodes that died, hung or stayed silent
};

// Runs one condition in a fresh cluster whose stderr logs go to dir. Throws std::runtime_error
// when the nodes cannot be started.
ConditionRun run_condition(const Options& o, const std::string& condition, const std::string& dir);

}  // namespace gossip_bench
