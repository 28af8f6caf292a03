// The gossip replication core's configuration and its factory: what a program needs to build
// the node's replication engine (docs/REPLICATION.md). The engine itself is internal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gossip_kv/gossip_io.h"

namespace gossip_kv {

class Store;

struct GossipConfig {
  // How often a node pushes the deltas it took since the last round, one message per peer.
  // Shorter converges faster and sends more messages; writes within one interval share them.
  std::int64_t gossip_interval_ms = 100;
  // How often a node sends its per-origin watermarks to one random peer, which answers with
  // exactly what the sender lacks. Bounds the idle cost: 2 messages per node per interval.
  std::int64_t anti_entropy_interval_ms = 1000;
  // How often a node compares replica *contents* with one random peer: content anti-entropy,
  // the safety net under pushes and watermarks (src/replication/content_sync.h). It repairs
  // whatever the fast path dropped, reordered or was lied to about, at a cost that follows the
  // size of the difference: identical replicas cost one message. A node also runs an exchange
  // right after it starts, so a restarted, empty node is refilled at once. Under load two
  // replicas differ by the writes still in flight, so each exchange also chases those: at 25
  // nodes and 100 ops/s, every 2 s cost 0.43 messages per operation, every 5 s 0.17.
  std::int64_t sync_interval_ms = 5000;
  // Bytes of entries in one gossip message; what does not fit waits for the next round.
  std::size_t batch_bytes_max = 256 * 1024;
  // A peer that owes an origin acknowledgements and has sent it nothing for this long sends
  // them in a message of their own, so convergence is measured also on an idle cluster.
  std::int64_t ack_delay_max_ms = 1000;
  // Dissemination. 0: every node pushes its writes to every peer (N-1 messages a round per
  // writing node). k > 0: the first k nodes (by id) are relays; every other node pushes only to
  // its relay, which forwards everything it got in one message per peer per relay round, and
  // forwards acknowledgements the same way. Relays cut messages per write from N-1 to about
  // 1 + (N-1)/(writes per relay round), for one more hop of latency.
  int relays = 0;
  // How often a relay forwards what it gathered (and pushes its own writes).
  std::int64_t relay_interval_ms = 100;
  // Push a write at once instead of waiting for the round: one message per write to the relay,
  // for the lowest latency (the fast profile).
  bool push_on_write = false;

  // Named profiles: "fast" (low convergence time) and "frugal" (fewer messages per write).
  // Returns false for an unknown name.
  static bool from_profile(std::string_view name, GossipConfig* out);
};

// Builds the gossip replication core for node `self` of the cluster `node_ids`, replicating
// `store`. Sans-IO: it reads no clock (now_us is the wall clock at construction, microseconds)
// and draws randomness only from `seed`.
// REQUIRES: node_ids sorted, unique, containing self; store outlives the engine.
std::unique_ptr<ReplicationEngine> make_gossip_engine(const GossipConfig& config, std::string self,
                                                      std::vector<std::string> node_ids,
                                                      Store& store, std::uint64_t seed,
                                                      std::int64_t now_us);

}  // namespace gossip_kv
