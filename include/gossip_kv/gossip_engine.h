// GossipEngine: the replication core. Sans-IO: it is given local deltas, peer messages and the
// time, and returns the messages to send; it reads no clock, draws randomness only from the
// seeded generator it owns, starts no thread and does no I/O (see docs/REPLICATION.md).
//
// Thread safety:
//  1. on_local_delta, on_peer_message, tick and next_deadline_us are called by one thread at
//     a time (the node's gossip thread).
//  2. total_gossip_msgs, stale_reads and write_stats may be called from any thread: counters
//     are atomics, histograms sit behind stats_mu_.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>

#include "gossip_kv/mutex.h"
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>

#include "gossip_kv/gossip_io.h"
#include "gossip_kv/store.h"

namespace CLI {
class App;
}

namespace gossip_kv {

struct GossipConfig {
  // How often a node pushes the deltas it took since the last round, one message per peer.
  // Shorter converges faster and sends more messages; writes within one interval share them.
  std::int64_t gossip_interval_ms = 100;
  // How often a node sends its per-origin watermarks to one random peer, which answers with
  // exactly what the sender lacks. Bounds the idle cost: 2 messages per node per interval.
  std::int64_t anti_entropy_interval_ms = 1000;
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

// Registers --profile and the per-field flags; the profile applies first, explicit flags win.
void add_gossip_flags(CLI::App& app, GossipConfig& config);

// A latency histogram: 1 ms buckets up to 10 s, 10 ms buckets up to 100 s (larger samples land
// in the last bucket; max is exact). Percentiles are exact to the millisecond below 10 s, in
// 76 KB per histogram whatever the sample count.
class LatencyHistogram {
 public:
  void add(std::int64_t ms);
  void add_zeros(std::uint64_t n);
  [[nodiscard]] std::uint64_t count() const { return count_; }
  [[nodiscard]] std::int64_t percentile(double p) const;  // 0 when empty
  [[nodiscard]] std::int64_t max() const { return max_; }
  // Calls fn(lower_ms, count) for every bucket holding samples, in ascending order. A bucket
  // is 1 ms wide below 10 s and 10 ms wide above; the last one also holds everything beyond.
  template <typename Fn>
  void for_each_bucket(Fn&& fn) const {
    for (std::size_t b = 0; b < kBuckets; ++b) {
      if (buckets_[b] != 0) fn(lower_ms(b), buckets_[b]);
    }
  }

 private:
  static std::int64_t lower_ms(std::size_t bucket) {
    return static_cast<std::int64_t>(bucket < kFineBuckets ? bucket
                                                           : kFineBuckets + (bucket - kFineBuckets) * 10);
  }
  static constexpr std::size_t kFineBuckets = 10'000;
  static constexpr std::size_t kBuckets = kFineBuckets + 9'000;
  std::vector<std::uint32_t> buckets_ = std::vector<std::uint32_t>(kBuckets);
  std::uint64_t count_ = 0;
  std::int64_t max_ = 0;
};

class GossipEngine final : public ReplicationEngine {
 public:
  // REQUIRES: node_ids sorted, unique, containing self.
  GossipEngine(const GossipConfig& config, std::string self, std::vector<std::string> node_ids,
               Store& store, std::uint64_t seed, std::int64_t now_us);

  void on_local_delta(const LocalDelta& delta, std::int64_t now_us) override;
  void on_peer_message(std::string_view src, std::string_view body_json, std::int64_t now_us,
                       std::vector<OutMessage>& out) override;
  void tick(std::int64_t now_us, std::vector<OutMessage>& out) override;
  [[nodiscard]] std::int64_t next_deadline_us() const override;

  [[nodiscard]] std::uint64_t total_gossip_msgs() const override;
  [[nodiscard]] std::uint64_t stale_reads() const override;
  void write_stats(rapidjson::Writer<rapidjson::StringBuffer>& w) const override;

  // The watermark of an origin: every write it took with a timestamp up to this is held here,
  // or a newer version of its key. For tests and the simulator.
  [[nodiscard]] std::int64_t watermark(std::uint32_t origin) const { return wm_[origin]; }
  [[nodiscard]] std::size_t pending_writes() const { return unconverged_.size(); }

  // Bounds (docs/REPLICATION.md).
  static constexpr std::size_t kPendingDeltasMax = 1u << 16;   // then dropped: AE carries them
  static constexpr std::size_t kUnconvergedMax = 1u << 16;     // own writes awaiting acks
  // Per-peer report slots over all writes awaiting acks (8 bytes each): caps kUnconvergedMax
  // in large clusters (4,096 writes at 1,000 nodes).
  static constexpr std::size_t kReachSlotsMax = 1u << 22;
  static constexpr std::size_t kAckSpansMax = 256;  // per origin; beyond, the oldest is dropped (re-sent as a prefix)
  static constexpr std::size_t kSpansMax = 32;  // early push spans kept per origin
  static constexpr std::size_t kRelayAcksMax = 1u << 16;  // acknowledgements a relay forwards

 private:
  // "This node holds every write of the recipient with lo < ts <= hi (or a newer version of
  // its key) since at_us."
  struct AckSpan {
    std::int64_t lo = 0;
    std::int64_t hi = 0;
    std::int64_t at_us = 0;
  };
  // One of my writes on its way everywhere. Acknowledgements can overtake one another, so each
  // peer's earliest report counts, and the figure is taken a grace period after the last peer
  // reported (finalize()).
  struct Unconverged {
    std::int64_t ts_us = 0;
    std::int64_t taken_us = 0;
    std::uint32_t reached = 0;          // peers that reported holding it
    std::vector<std::int64_t> reach_us; // by origin index: earliest report, 0 = none yet
    std::int64_t complete_us = 0;       // local time the last peer reported; 0 = not yet
  };
  enum Kind { kGossip, kDigest, kAck, kKinds };

  void push_round(std::int64_t now_us, std::vector<OutMessage>& out);
  void write_entry(rapidjson::Writer<rapidjson::StringBuffer>& w, const Entry& entry);
  void anti_entropy_round(std::vector<OutMessage>& out);
  void send_digest(std::uint32_t peer, std::vector<OutMessage>& out);
  // At most one gap repair per peer per this long: twice the push interval, so the reply to
  // one repair has time to arrive before the next push could ask again.
  [[nodiscard]] std::int64_t repair_backoff_us() const {
    return 2 * config_.gossip_interval_ms * 1000;
  }
  void send_due_acks(std::int64_t now_us, std::vector<OutMessage>& out);
  void answer_digest(std::uint32_t peer, const std::vector<std::int64_t>& their_wm,
                     std::vector<OutMessage>& out);
  // False for a malformed entry; *applied tells whether it was newer and taken.
  bool apply_entry(std::string_view key, std::string_view value, Version v,
                   std::int64_t now_us, bool* applied);
  void index(const Entry* e, Version v);
  void raise_watermark(std::uint32_t origin, std::int64_t wm, std::int64_t now_us);
  void on_ack(std::uint32_t peer, const AckSpan& span, std::int64_t now_us);
  void finalize(std::int64_t now_us);
  void owe_ack(std::uint32_t origin, const AckSpan& span);
  void write_acks_for(std::uint32_t peer, bool resend_last);
  void record_convergence(std::int64_t ms);
  void send(std::uint32_t peer, Kind kind, std::vector<OutMessage>& out);
  void on_span(std::uint32_t origin, std::int64_t from, std::int64_t to, std::int64_t now_us,
               std::vector<OutMessage>& out);
  void read_relay_members(std::uint32_t peer, const rapidjson::Value& d, std::int64_t now_us,
                          std::vector<OutMessage>& out);
  void write_acks_for_others(std::uint32_t except);
  bool owes_acks_older_than(std::int64_t cutoff_us) const;
  void begin(const char* type);
  [[nodiscard]] std::uint32_t peer_count() const {
    return static_cast<std::uint32_t>(ids_.size() - 1);
  }

  GossipConfig config_;
  std::string self_;
  std::vector<std::string> ids_;  // ids_[origin - 1]
  std::uint32_t me_;              // my origin
  Store& store_;
  std::mt19937_64 rng_;

  absl::flat_hash_map<const Entry*, Version> pending_;  // deltas for the next push round
  std::vector<std::int64_t> wm_;                        // per origin (index 0 unused)
  std::vector<std::int64_t> sent_wm_;  // per peer: my watermark carried by my last push to it
  // The anti-entropy index: per origin, the entries whose current version it wrote, by ts.
  std::vector<absl::btree_set<std::pair<std::int64_t, const Entry*>>> by_origin_;
  absl::flat_hash_map<const Entry*, Version> indexed_;  // the version each entry is indexed at
  std::vector<std::deque<AckSpan>> owed_acks_;  // per origin: what to report it holds here
  std::vector<AckSpan> last_ack_;  // per origin: the watermark as a span, re-sent on digests
  std::vector<std::int64_t> last_sent_to_us_;    // per peer
  std::vector<std::int64_t> last_repair_us_;     // per peer: the last gap-triggered digest
  // Per origin: (from, to] spans of pushes that arrived before the chain reached their from.
  std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>> spans_;
  std::deque<Unconverged> unconverged_;          // my writes by ts
  std::size_t converged_in_deque_ = 0;           // complete, not yet finalized
  std::size_t unconverged_max_;

  std::uint32_t hub_ = 0;  // the relay this node pushes to; 0 when it pushes to everyone
  bool is_relay_ = false;
  struct RelaySpan {
    std::uint32_t origin;
    std::int64_t from, to;
  };
  struct RelayAck {
    std::uint32_t acker, origin;
    std::int64_t lo, hi, at_us;
  };
  std::vector<RelaySpan> relay_spans_;  // chains to forward with the next relay round
  std::vector<RelayAck> relay_acks_;    // acknowledgements to forward

  std::int64_t next_push_us_;
  std::int64_t next_ae_us_;
  std::int64_t next_ack_check_us_;
  bool push_due_ = false;

  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
  std::string scratch_;

  std::atomic<std::uint64_t> msgs_sent_[kKinds] = {};
  std::atomic<std::uint64_t> bytes_sent_{0};
  std::atomic<std::uint64_t> bytes_sent_by_[kKinds] = {};
  std::atomic<std::uint64_t> msgs_received_by_[kKinds] = {};
  std::atomic<std::uint64_t> bytes_received_by_[kKinds] = {};
  std::atomic<std::uint64_t> msgs_received_{0};
  std::atomic<std::uint64_t> bytes_received_{0};
  std::atomic<std::uint64_t> malformed_{0};
  std::atomic<std::uint64_t> deltas_sent_{0};
  std::atomic<std::uint64_t> deltas_applied_{0};
  std::atomic<std::uint64_t> deltas_ignored_{0};
  std::atomic<std::uint64_t> deltas_dropped_{0};
  std::atomic<std::uint64_t> stale_reads_{0};
  std::atomic<std::uint64_t> unmeasured_{0};
  std::atomic<std::uint64_t> pending_count_{0};
  mutable Mutex stats_mu_;
  mutable LatencyHistogram convergence_ GOSSIP_KV_GUARDED_BY(stats_mu_);
  mutable std::atomic<std::uint64_t> converged_alone_{0};
  LatencyHistogram lag_ GOSSIP_KV_GUARDED_BY(stats_mu_);
};

}  // namespace gossip_kv
