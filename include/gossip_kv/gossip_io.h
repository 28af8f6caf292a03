// What flows between the node's runtime and the replication core (see docs/ARCHITECTURE.md).
//
// The runtime's workers take client writes and push one LocalDelta per taken write onto the
// gossip thread's delta queue. Lines from peers (src beginning with 'n') whose type is not a
// client request are handed, whole, to the gossip thread. The core answers with OutMessages,
// which the runtime wraps in an envelope and hands to the writer, which adds the msg_id.
#pragma once

#include <cstdint>
#include <string>

#include "gossip_kv/version.h"

namespace gossip_kv {

struct Entry;

// A write this node took (write, bench_write, cas, or a kv_merge entry it accepted).
struct LocalDelta {
  const Entry* entry = nullptr;  // stable for the Store's lifetime; read it with Store::load
  Version version;               // the version the write created
  std::int64_t taken_us = 0;     // when this node took it (wall clock, microseconds)
  bool client_write = true;      // false for kv_merge entries (not counted as client writes)
};

// A message for one peer. `body` is a complete JSON object with at least one member ("type")
// and without "msg_id": the writer stamps msg_id when the line goes out.
struct OutMessage {
  std::string dest;  // a node id from init's node_ids
  std::string body;
};

}  // namespace gossip_kv
