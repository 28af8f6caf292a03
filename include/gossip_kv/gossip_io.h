// What flows between the node's runtime and the replication core (see docs/ARCHITECTURE.md).
//
// The runtime's workers take client writes and push one LocalDelta per taken write onto the
// gossip thread's delta queue. Lines from peers (src beginning with 'n') whose type is not a
// client request are handed, whole, to the gossip thread. The core answers with OutMessages,
// which the runtime wraps in an envelope and hands to the writer, which adds the msg_id.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

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

// What the runtime needs of a replication core. The gossip thread is the only caller of the
// first four methods; the last two may be called from any thread at any time.
class ReplicationEngine {
 public:
  virtual ~ReplicationEngine() = default;
  virtual void on_local_delta(const LocalDelta& delta, std::int64_t now_us) = 0;
  // Every local write with a version timestamp <= safe_us has been handed to on_local_delta:
  // the core may vouch for this node's own writes up to it and no further. The runtime derives
  // it from the workers' batch floors (several workers hand deltas over out of order).
  virtual void on_local_watermark(std::int64_t safe_us) = 0;
  // How many more deltas on_local_delta can take now; the runtime stops handing them over at 0
  // (and the workers then wait: backpressure).
  [[nodiscard]] virtual std::size_t delta_room() const = 0;
  virtual void on_peer_message(std::string_view src, std::string_view body_json,
                               std::int64_t now_us, std::vector<OutMessage>& out) = 0;
  virtual void tick(std::int64_t now_us, std::vector<OutMessage>& out) = 0;
  // When tick() wants to run next (wall clock, microseconds).
  [[nodiscard]] virtual std::int64_t next_deadline_us() const = 0;

  // Stale reads found when newer versions arrived from peers.
  [[nodiscard]] virtual std::uint64_t stale_reads() const = 0;
  // Writes the core's bench_stats members into an open JSON object. RapidJSON's Writer is part
  // of this interface on purpose: the members go straight into the reply being rendered.
  virtual void write_stats(rapidjson::Writer<rapidjson::StringBuffer>& w) const = 0;
  // Writes bench_figures' members: this node's latest convergence figures, one per write, so
  // that a runner can set each beside the truth it observed (docs/BENCHMARK.md).
  virtual void write_figures(rapidjson::Writer<rapidjson::StringBuffer>& w) const = 0;
};

}  // namespace gossip_kv
