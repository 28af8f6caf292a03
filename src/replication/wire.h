// Helpers of the peer wire format shared by the engine's files (docs/REPLICATION.md describes
// the messages). Internal to src/replication.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "gossip_kv/version.h"

namespace gossip_kv {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// The "type" of each PeerMsgKind, in its order.
inline constexpr const char* kPeerMsgKindNames[] = {"gossip", "digest", "ack", "sync"};

// Writes one small JSON array of integers: the shape of every span and acknowledgement.
inline void write_ints(Writer& w, std::initializer_list<std::int64_t> values) {
  w.StartArray();
  for (std::int64_t v : values) w.Int64(v);
  w.EndArray();
}

// Whole milliseconds from from_us to to_us, rounded; 0 when to_us is not later.
// Overflow-free for any pair (timestamps from peers are bounded, but this is the last line).
inline std::int64_t ms_between(std::int64_t from_us, std::int64_t to_us) {
  if (to_us <= from_us) return 0;
  auto diff = static_cast<std::uint64_t>(to_us) - static_cast<std::uint64_t>(from_us);
  return static_cast<std::int64_t>(diff / 1000 + (diff % 1000 >= 500 ? 1 : 0));
}

// Of the older writes an entry lists (list[i] for which in(i)), the one to leave out first
// when there is no room: the oldest of those whose origin has a newer one among them (a report
// on the newer counts for it too: GossipEngine::on_ack), so every origin keeps its newest,
// else the oldest. n when in() takes none.
template <typename In>
std::size_t listed_write_to_drop(const Version* list, std::size_t n, In in) {
  std::size_t oldest = n, shadowed = n;
  for (std::size_t i = 0; i < n; ++i) {
    if (!in(i)) continue;
    if (oldest == n || list[i] < list[oldest]) oldest = i;
    bool has_newer = false;
    for (std::size_t j = 0; j < n && !has_newer; ++j) {
      has_newer = in(j) && list[j].origin == list[i].origin && list[i] < list[j];
    }
    if (has_newer && (shadowed == n || list[i] < list[shadowed])) shadowed = i;
  }
  return shadowed != n ? shadowed : oldest;
}

}  // namespace gossip_kv
