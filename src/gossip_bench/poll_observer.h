// Convergence observed by polling reads, for nodes whose peer messages the router cannot read
// (`--bin THEIR_NODE`): the way Maelstrom's stable latency sees it. After a write is
// acknowledged, the runner reads its key on every node (as client c0, outside the
// node-to-node count) until each has shown it or a later write of the key; the write has
// converged when the last node did. Values are unique per write, so a read names the write it
// saw; "later" is in real time: a write invoked after this one was acknowledged. Without
// versions, concurrent writes are never taken for one another.
//
// A write that every node ends up showing a concurrent write for (one invoked before it was
// acknowledged) was superseded by it: settled, without a figure. A killed node shows nothing
// until it shows it again; a write only its killed node had shown is lost with the crash
// unless a node shows that very write later (a message in flight); a later write of its key
// does not save it.
//
// The resolution is the polling interval. Polls are sent only for keys with writes still
// pending, at most one in flight per node and key.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "history.h"

namespace gossip_bench {

class PollObserver {
 public:
  // REQUIRES: nodes >= 1; history outlives the observer and only grows.
  PollObserver(int nodes, const std::vector<Op>* history);

  // A write was issued (any outcome yet): its value names it in later reads.
  void on_issued(std::size_t op);
  // The write history[op] was acknowledged by its node, which therefore holds it.
  void on_acked(std::size_t op, std::int64_t now_us);
  // The (node, key) reads to send now: keys with pending writes, nodes that have not shown
  // them all, none with a read already in flight. Marks them in flight.
  std::vector<std::pair<int, std::int64_t>> polls_due();
  // A poll's answer: the value read (kUnknown for "key not found", or none readable).
  void on_answer(int node, std::int64_t key, std::int64_t value, std::int64_t now_us);
  // A node that will not answer its polls (killed, or gone): they are no longer in flight.
  void forget_polls_of(int node);
  // Nodes killed together: they hold nothing now.
  void on_killed(const std::vector<int>& nodes);

  // Nothing pending but writes lost with a crash.
  [[nodiscard]] bool idle() const { return pending_count_ == crash_candidates_; }
  // ms from each converged write's invocation until the last node showed it, and when each
  // was invoked (the start: without versions, when the node took it is unknown).
  [[nodiscard]] const std::vector<std::int64_t>& converged_ms() const { return converged_ms_; }
  [[nodiscard]] const std::vector<std::int64_t>& converged_taken_us() const { return converged_taken_us_; }
  [[nodiscard]] std::uint64_t unconverged() const { return pending_count_ - crash_candidates_; }
  // Acknowledged writes only their killed node had shown, never shown again.
  [[nodiscard]] std::vector<std::size_t> lost_with_crash() const;
  // When every node had shown history[op] (-1: never, or settled without a figure).
  [[nodiscard]] std::int64_t converged_at(std::size_t op) const;

 private:
  struct Tracked {
    std::size_t op;
    std::vector<bool> seen;  // [node]
    int seen_count = 0;
    bool crash_candidate = false;
  };
  void see(Tracked& t, int node);
  void unsee(Tracked& t, int node);
  void converge(const Tracked& t, std::int64_t now_us);
  // Every node last showed the same write of the key, concurrent with t's.
  bool superseded(const Tracked& t, std::int64_t key) const;

  int nodes_;
  const std::vector<Op>* history_;
  absl::flat_hash_map<std::int64_t, std::size_t> op_of_value_;
  std::map<std::int64_t, std::vector<Tracked>> pending_;  // key -> its writes not yet everywhere
  std::set<std::pair<int, std::int64_t>> in_flight_;
  std::map<std::int64_t, std::vector<std::size_t>> last_shown_;  // key -> [node] op + 1 (0: none)
  std::vector<std::int64_t> converged_ms_, converged_taken_us_;
  absl::flat_hash_map<std::size_t, std::int64_t> converged_at_;  // op -> when
  std::vector<std::size_t> lost_with_crash_;  // candidates settled without being shown again
  std::uint64_t pending_count_ = 0, crash_candidates_ = 0;
};

}  // namespace gossip_bench
