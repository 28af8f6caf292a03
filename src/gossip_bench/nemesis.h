// The partition nemesis's faults, as Jepsen shapes them: which directed node-to-node links
// drop messages. Pure: a fault is made from the node count and a seeded generator.
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
  [[nodiscard]] int nodes() const { return nodes_; }
  // For people: "n3 isolated", "n1 n4 | n2 n3 n5", "ring n2 n5 n1 n3 n4 (each hears 3)".
  std::string description;

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

}  // namespace gossip_bench
