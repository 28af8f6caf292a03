// ContentSync: anti-entropy that compares replica *contents*, not watermarks. It is the
// safety net under the fast path (GossipEngine's pushes and watermarks): whatever the fast
// path dropped, reordered, never had or was lied to about, two replicas that run an exchange
// end up holding the same (key, version, value) for every key either held, at a cost that
// follows the size of their difference (docs/REPLICATION.md, "Content anti-entropy", states
// the safety argument).
//
// The exchange (push-pull, one peer per round, messages in content_sync_codec.h):
//   1. start_round: the initiator sends its root's child digests (sync_tree, level 0).
//   2. A sync_tree receiver compares each listed node's children with its own. Children that
//      differ are descended: an inner child goes back as a sync_tree of the receiver's own
//      digests one level down (the two sides alternate, one level per message); a differing
//      leaf (bucket) goes back as a sync_keys group listing the receiver's (key, version,
//      hash) of that bucket, small values inline; a child whose digest on the other side is 0
//      (the other side holds nothing there) goes back as sync_keys groups with every entry
//      of the subtree, values included.
//   3. A sync_keys receiver merges the inline entries, compares each group with its own
//      entries of the same bucket and key range, and answers sync_entries: the entries it
//      holds that the sender lacks or holds older (values included, "e"), and the keys the
//      sender holds newer or it lacks ("w").
//   4. A sync_entries receiver merges "e" and answers the wanted keys with its entries.
//   Every reply is bounded (ContentSyncConfig); a sender that had to leave work undone marks
//   its last message "m", and the receiver starts a new exchange with it at once, so a large
//   difference (a restarted, empty replica) is repaired in consecutive exchanges without
//   waiting for the next round.
//
// Why nothing is lost: see the safety argument in the doc. In short, digests are sums over
// contents; a differing bucket is always found by descending differing nodes; LWW merge with
// the value tie-break is commutative, associative and idempotent; each exchange either finds
// no difference or repairs at least one differing entry before stopping at a bound.
//
// Sans-IO: no clock reads (now_us is passed in), no randomness (the caller picks the peer),
// no threads, no I/O. Messages out are appended to the caller's vector.
//
// Thread safety:
//  1. start_round, on_message and stats are called by one thread at a time (the gossip
//     thread in the node, the test's loop in tests).
//  2. The Store may be written by other threads meanwhile (Store invariant 5): a digest read
//     during a write can make one exchange see a transient difference or miss a write still
//     in progress; the next exchange sees it.
//
// Integration (for GossipEngine): every sync_interval, `start_round(pick_peer(rng()), out)`;
// for a peer message whose type is_sync_type(), `on_message(peer, body, now_us, out, fn)`
// where fn indexes each applied entry like a pushed one (by_origin_, acknowledgements) and
// observes its timestamp in the HybridClock; count kMalformed in gossip_msgs_malformed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "gossip_kv/gossip_io.h"
#include "gossip_kv/limits.h"
#include "gossip_kv/store.h"
#include "content_sync_codec.h"

namespace gossip_kv {

struct ContentSyncConfig {
  // Bytes of one message body. Half the line limit: the envelope (src, dest, msg_id) is under
  // 200 bytes, and the largest single entry stays under 140 KiB (a 1 KiB key, each byte
  // escaped as \u00XX at worst, and a 64 KiB value, which as valid JSON without line breaks
  // holds no control byte but tab, so escaping at most doubles it), so every message carries
  // at least one.
  std::size_t message_bytes_max = std::size_t{512} * 1024;
  // Messages sent in answer to one message: bounds the work and bytes one message can cause
  // (4 MiB). The rest waits for the continuation ("m").
  std::size_t reply_messages_max = 8;
  // Values up to this many bytes travel with their key in sync_keys (saving a round trip for
  // the small values of Maelstrom workloads); larger ones are sent only when wanted.
  std::size_t inline_value_bytes_max = 64;
  // Entries whose timestamp is further than this ahead of now_us are rejected (with their
  // whole message): 10 minutes of clock skew between replicas.
  std::int64_t future_ts_us_max = std::int64_t{600} * 1'000'000;

  static constexpr std::size_t kMessageBytesMin = std::size_t{300} * 1024;
  static constexpr std::size_t kMessageBytesMax = limits::kLineBytesMax - 4096;
};

class ContentSync {
 public:
  // Called for every entry merged and taken (MergeResult::applied), with its key and version.
  using AppliedFn =
      std::function<void(const Store::MergeResult& result, std::string_view key, Version v)>;
  enum class Outcome {
    kHandled,    // decoded and answered (the answer may be empty)
    kMalformed,  // rejected whole: nothing applied, nothing sent; see *error
  };
  struct Stats {  // totals since construction
    std::uint64_t rounds = 0;            // exchanges started (start_round, continuations)
    std::uint64_t msgs_sent = 0;
    std::uint64_t bytes_sent = 0;
    std::uint64_t msgs_received = 0;
    std::uint64_t bytes_received = 0;
    std::uint64_t malformed = 0;
    std::uint64_t entries_sent = 0;      // entries with values, inline or in sync_entries
    std::uint64_t entries_applied = 0;
    std::uint64_t capped = 0;            // replies that stopped at a bound (sent "m")
    std::size_t largest_msg_bytes = 0;
  };

  // REQUIRES: node_ids sorted and unique; 1 <= self <= node_ids.size() (origin numbering, as
  // GossipEngine's); config.message_bytes_max within [kMessageBytesMin, kMessageBytesMax];
  // config.reply_messages_max >= 1. `store` outlives this object.
  ContentSync(Store& store, std::vector<std::string> node_ids, std::uint32_t self,
              ContentSyncConfig config = {});

  // True for the message types this class handles.
  static bool is_sync_type(std::string_view type);

  // A peer (origin number != self) chosen by `random` (from the caller's seeded generator).
  // REQUIRES: at least two nodes.
  [[nodiscard]] std::uint32_t pick_peer(std::uint64_t random) const;

  // Starts an exchange with `peer`: appends one sync_tree (about 300 bytes) to out.
  // REQUIRES: peer != self, 1 <= peer <= node count.
  void start_round(std::uint32_t peer, std::vector<OutMessage>& out);

  // Handles one message body from `peer` (an origin number; an unknown peer is malformed):
  // decodes it whole, merges the entries it carries (calling `applied` for each one taken),
  // and appends the answer (at most reply_messages_max messages of at most message_bytes_max
  // bytes, plus one sync_tree when the peer marked "m") to out. Bad input is rejected whole:
  // returns kMalformed, applies and sends nothing, and says why in *error (when not null).
  Outcome on_message(std::uint32_t peer, std::string_view body, std::int64_t now_us,
                     std::vector<OutMessage>& out, const AppliedFn& applied,
                     std::string* error = nullptr);

  [[nodiscard]] const Stats& stats() const { return stats_; }

 private:
  class Reply;
  void answer_tree(const sync::Message& m, Reply& reply);
  void answer_keys(const sync::Message& m, std::int64_t now_us, const AppliedFn& applied,
                   Reply& reply);
  bool compare_group(const sync::Group& g, const Store::BucketEntries& mine,
                     Reply& reply);
  void answer_entries(const sync::Message& m, std::int64_t now_us, const AppliedFn& applied,
                      Reply& reply);
  bool write_bucket(std::uint32_t bucket, bool all_values, Reply& reply);
  void apply(const sync::Item& item, std::int64_t now_us, const AppliedFn& applied);
  void release_large_scratch();

  Store& store_;
  std::vector<std::string> ids_;  // ids_[origin - 1]
  std::uint32_t self_;
  ContentSyncConfig config_;
  Stats stats_;
  // Scratch kept between messages, so that listing and comparing buckets allocates nothing
  // per entry once grown: a bucket's entries, one rendered item, one value.
  Store::BucketEntries scratch_;
  std::string item_;
  std::string value_;
  sync::Message message_;  // the message being answered, decoded into the last one's room
  struct ReplyBuffers {  // Reply's parts (content_sync.cpp)
    std::string keys_msg, group_items, group_last_key, entries, wants, body, hex, quoted;
    std::array<std::string*, 8> all() {
      return {&keys_msg, &group_items, &group_last_key, &entries, &wants, &body, &hex, &quoted};
    }
  };
  ReplyBuffers reply_buffers_;
  std::vector<std::uint32_t> inner_;                     // answer_tree's scratch
  std::vector<std::pair<std::uint32_t, bool>> listed_;  // answer_tree's scratch
};

}  // namespace gossip_kv
