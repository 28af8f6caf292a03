// The nemesis's faults, as Jepsen shapes them: which directed node-to-node links drop
// messages (partitions), which node processes are stopped (pause), and what share of the
// node-to-node messages is lost or delivered twice (loss, duplicate). Pure: a fault is made
// from the node count and a seeded generator; the cluster carries it out.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "options.h"

namespace gossip_bench {

class Fault {
 public:
  Fault() = default;
  explicit Fault(int nodes);

  // True when messages from node `from` to node `to` (1-based) are dropped.
  [[nodiscard]] bool drops(int from, int to) const {
    return drops_[static_cast<std::size_t>(from * (nodes_ + 1) + to)] != 0;
  }
  void cut(int from, int to) { drops_[static_cast<std::size_t>(from * (nodes_ + 1) + to)] = 1; }
  [[nodiscard]] bool cuts_anything() const;
  // True when the fault changes anything here: a cut, a paused node, loss or duplication.
  [[nodiscard]] bool does_anything() const;
  [[nodiscard]] int nodes() const { return nodes_; }
  // The kind, for tables and plots: "one", "majority", "majorities-ring", "pause",
  // "loss", "duplicate".
  std::string kind;
  // For people: "n3 isolated", "n1 n4 | n2 n3 n5", "ring n2 n5 n1 n3 n4 (each hears 3)",
  // "n2 paused", "30% of messages lost".
  std::string description;
  // Nodes (1-based) stopped with SIGSTOP while the fault lasts, resumed with SIGCONT.
  std::vector<int> paused;
  // Nodes killed (SIGKILL) when the fault starts and restarted empty when it heals.
  std::vector<int> killed;
  // Probability that a node-to-node message is dropped when it arrives, and that one is
  // delivered twice (the copy after a latency of its own) when it is sent.
  double loss = 0;
  double duplicate = 0;

 private:
  int nodes_ = 0;
  std::vector<std::uint8_t> drops_;  // (nodes+1)^2, index 0 unused
};

// REQUIRES: nodes >= 1. kOne isolates a random node both ways; kMajority splits a random
// minority of floor(n/2) nodes from the rest, both ways; kMajoritiesRing orders the nodes in a
// random ring and lets each hear only the majority of consecutive ring nodes centred on itself
// (Jepsen's majorities-ring: every node hears a majority, no two the same one; for an even
// majority the cut is one-way on some links). A fault cuts nothing in a one-node cluster, and
// a ring cuts nothing in a two-node one (its majority is everyone).
Fault make_fault(FaultKind kind, int nodes, std::mt19937_64& rng);

// REQUIRES: nodes >= 1. kOne stops a random node; kMinority a random floor((n-1)/2) of them
// (at least one), so that a majority always runs. Nothing is paused in a one-node cluster.
Fault make_pause(PauseKind kind, int nodes, std::mt19937_64& rng);
// The same targets for the kill nemesis: the nodes are killed instead of paused.
Fault make_kill(PauseKind kind, int nodes, std::mt19937_64& rng);
// REQUIRES: 0 <= probability <= 1. Every link loses (or duplicates) that share of messages.
Fault make_loss(double probability, int nodes);
Fault make_duplicate(double probability, int nodes);

}  // namespace gossip_bench
