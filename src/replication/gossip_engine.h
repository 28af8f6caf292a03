// GossipEngine: the replication core, internal to gossip_kv_core (a program builds one with
// make_gossip_engine, include/gossip_kv/gossip_config.h; the simulator and the tests use the
// class directly). Sans-IO: it is given local deltas, peer messages and the time, and returns
// the messages to send; it reads no clock, draws randomness only from the seeded generator it
// owns, starts no thread and does no I/O (see docs/REPLICATION.md). One class, its methods
// split by concern over gossip_engine.cpp (glue), wire.cpp, dissemination.cpp,
// anti_entropy.cpp, convergence.cpp and stats.cpp.
//
// Thread safety:
//  1. on_local_delta, on_peer_message, tick and next_deadline_us are called by one thread at
//     a time (the node's gossip thread).
//  2. stale_reads and write_stats may be called from any thread: counters
//     are atomics, histograms sit behind stats_mu_.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/container/inlined_vector.h>
#include <absl/types/span.h>
#include <rapidjson/document.h>

#include "common/latency_histogram.h"
#include "common/ring.h"
#include "replication/clock_offsets.h"
#include "replication/content_sync.h"
#include "replication/peer_wire.h"
#include "gossip_kv/gossip_config.h"
#include "gossip_kv/gossip_io.h"
#include "gossip_kv/mutex.h"
#include "gossip_kv/store.h"

namespace gossip_kv {

class GossipEngine final : public ReplicationEngine {
 public:
  // REQUIRES: node_ids sorted, unique, containing self.
  GossipEngine(const GossipConfig& config, std::string self, std::vector<std::string> node_ids,
               Store& store, std::uint64_t seed, std::int64_t now_us);

  void on_local_delta(const LocalDelta& delta, std::int64_t now_us) override;
  void on_local_watermark(std::int64_t safe_us) override;
  [[nodiscard]] std::size_t delta_room() const override;
  void on_peer_message(std::string_view src, std::string_view body_json, std::int64_t now_us,
                       std::vector<OutMessage>& out) override;
  void tick(std::int64_t now_us, std::vector<OutMessage>& out) override;
  [[nodiscard]] std::int64_t next_deadline_us() const override;

  [[nodiscard]] std::uint64_t stale_reads() const override;
  void write_stats(rapidjson::Writer<rapidjson::StringBuffer>& w) const override;
  void write_figures(rapidjson::Writer<rapidjson::StringBuffer>& w) const override;

  // Bounds (docs/REPLICATION.md).
  // Local deltas awaiting a push round; at the bound delta_room() is 0 and the runtime holds
  // further deltas back (the workers wait): never dropped.
  static constexpr std::size_t kPendingDeltasMax = 1u << 16;
  // With the writes a push held back (above its span, waiting for the safe watermark), which
  // do not count against kPendingDeltasMax: a hard bound on memory.
  static constexpr std::size_t kPendingHeldMax = 2 * kPendingDeltasMax;
  // The pause between two pushes while a backlog remains (each of them a full message).
  static constexpr std::int64_t kBacklogPushIntervalMs = 10;
  static constexpr std::size_t kUnconvergedMax = 1u << 16;     // own writes awaiting acks
  // Per-peer report slots over all writes awaiting acks (8 bytes each): caps kUnconvergedMax
  // in large clusters (4,096 writes at 1,000 nodes).
  static constexpr std::size_t kReachSlotsMax = 1u << 22;
  static constexpr std::size_t kAckSpansMax = 256;  // per origin; beyond, the oldest is dropped (re-sent as held steps)
  static constexpr std::size_t kSpansMax = 32;  // early push spans kept per origin
  // What a relay forwards in one round, within the wire caps that keep every message under
  // the receiver's line limit (peer_wire.h); beyond, chains and acknowledgements wait or are
  // dropped (the origin re-asks, and content sync repairs).
  static constexpr std::size_t kRelaySpansMax = peer_wire::kWireCaps.relay_spans;
  static constexpr std::size_t kRelayAcksMax = peer_wire::kWireCaps.forwarded_acks;  // per round
  static constexpr std::size_t kRelayAcksQueuedMax = 8 * kRelayAcksMax;  // waiting; beyond, dropped
  // Reports a relay keeps per origin to give again when the origin asks (forwarded_).
  static constexpr std::size_t kForwardedKeptMax = 512;
  static constexpr std::size_t kForwardedTotalMax = 16384;  // over all origins (about 1.5 MB)
  // held_recs_: versions remembered over all entries, and per entry (the oldest go first).
  static constexpr std::size_t kHeldRecsMax = 16384;
  static constexpr std::size_t kHeldRecsPerEntryMax = 8;
  // superseded_: per origin, its writes lately replaced here by a newer version of their key.
  static constexpr std::size_t kSupersededPerOriginMax = 64;
  static_assert(kForwardedKeptMax <= peer_wire::kWireCaps.forwarded_acks);
  // Acknowledgements for other origins carried to the relay in one message ("ra").
  static constexpr std::size_t kRelayAcksOutMax = peer_wire::kWireCaps.relay_acks;
  // Restarted origins a digest splits its claim for, and an answer says how far the asker
  // now holds ("bf"); beyond, claimed whole, and not moved on.
  static constexpr std::size_t kBeforeFloorClaimsMax = peer_wire::kWireCaps.before_floor;
  static constexpr std::size_t kHeldStepsMax = 32;  // per origin: re-sent on digests
  static constexpr std::size_t kRecentAcksMax = 256;  // per origin: re-sent on digests
  static constexpr std::int64_t kRecentAckAgeDelays = 8;
  static_assert(kAckSpansMax + kHeldStepsMax + kRecentAcksMax <= peer_wire::kWireCaps.ack_spans,
                "the spans written for one peer fit the wire caps");
  static constexpr std::uint32_t kSyncAnswersMax = 32;  // per peer per sync interval
  // Digest answers (each up to a full line) per peer per anti-entropy interval. An honest peer
  // asks about a dozen times an interval at most (its round, gap repairs a backoff apart,
  // re-asks, ask-backs); more is refused and counted.
  static constexpr std::uint32_t kDigestAnswersMax = 32;
  // Convergence figures kept one by one for bench_figures, the newest (16 bytes each): a
  // runner sets each beside the truth it observed. Older ones are dropped and counted.
  static constexpr std::size_t kFiguresKept = 8192;
  static constexpr std::size_t kAckWorkPerMessageMax = std::size_t{1} << 17;
  // How far back a report on one write looks for my older writes of its key (on_ack), when
  // unconverged_of_key_ says there are any, and the steps of that search one message may
  // cause: a budget of its own, so that a relay's round of reports on a hot key never uses up
  // the acknowledgement work its other reports need (it did: writes waited 4 s for a re-ask).
  static constexpr std::size_t kSameKeyScanMax = 256;
  static constexpr std::size_t kSameKeyWorkPerMessageMax = std::size_t{1} << 16;
  // A node's first content-sync exchange comes this soon after it starts (a restarted node
  // is refilled at once), at a random point so a cluster started together does not pulse.
  static constexpr std::int64_t kFirstSyncDelayMaxMs = 200;
  // A complete write's figure waits this long for an earlier report still on its way (at most;
  // 2 x ack_delay_max_ms when that is shorter).
  static constexpr std::int64_t kConvergenceGraceMaxMs = 500;

 private:
  // "This node holds every write of the recipient with lo < ts <= hi (or a newer version of
  // its key) since at_us."
  struct AckSpan {
    std::int64_t lo = 0;
    std::int64_t hi = 0;
    std::int64_t at_us = 0;
    // When it was owed (0: at_us). A report on an older write may be owed long after it was
    // held; it waits for a message to ride on from then, like any other.
    std::int64_t owed_us = 0;
    [[nodiscard]] std::int64_t owed_at() const { return owed_us != 0 ? owed_us : at_us; }
  };
  // One of my writes on its way everywhere. Acknowledgements can overtake one another, so each
  // peer's earliest report counts, and the figure is taken a grace period after the last peer
  // reported (finalize()).
  struct Unconverged {
    std::int64_t ts_us = 0;
    std::int64_t taken_us = 0;
    const Entry* entry = nullptr;       // its key's (compared, never read: on_ack)
    std::uint32_t reached = 0;          // peers that reported holding it
    std::vector<std::int64_t> reach_us; // by origin index: earliest report, 0 = none yet
    std::int64_t complete_us = 0;       // local time the last peer reported; 0 = not yet
    // When every replica held it, as the reports said at the end of the grace period (the
    // figure, then waiting for proof of life); 0 = not yet.
    std::int64_t held_everywhere_us = 0;
    bool recorded = false;              // its figure is taken (it waits to leave the front)
  };
  // The three peer messages, indexing the per-kind counters (docs/REPLICATION.md).
  enum PeerMsgKind { kGossip, kDigest, kAck, kSync, kKinds };

  // Glue (gossip_engine.cpp). False for a malformed entry; *result tells whether it was
  // newer and taken, and the version held.
  bool apply_entry(std::string_view key, std::string_view value, Version v,
                   std::int64_t now_us, Store::MergeResult* result);
  // The bookkeeping of an entry taken from a peer (by a push or by content sync).
  void on_taken(const Store::MergeResult& r, Version v, std::int64_t now_us);

  // When this node first held each entry's recent versions (held_recs_): an entry that stands
  // for an older write (its own version, or the older writes a sender lists with it) is
  // reported to that write's origin from when this node held it or a newer version of its
  // key, which may be long before the origin's chain reaches it (docs/REPLICATION.md,
  // "Reports for older writes").
  void record_held(const Entry* e, Version v, std::int64_t now_us);
  // The earliest time this node is known to have held e at v or newer (INT64_MAX: not known),
  // and whether that was v itself.
  [[nodiscard]] std::pair<std::int64_t, bool> held_since(const Entry* e, Version v) const;
  // A relay's: the older writes an entry from a served node stands for go with its next round.
  void pass_on_older_writes(const PeerEntry& e, const Store::MergeResult& r, std::uint32_t peer);
  // Reports, to their origins, the older writes an entry from a peer stands for.
  void report_older_writes(const PeerEntry& e, const Store::MergeResult& r, std::uint32_t peer,
                           std::int64_t now_us);

  // Content anti-entropy, the safety net (anti_entropy.cpp; the protocol is ContentSync's).
  void sync_round(std::int64_t now_us, std::vector<OutMessage>& out);
  void on_sync_message(std::uint32_t peer, std::string_view body, std::int64_t now_us,
                       std::vector<OutMessage>& out);
  // Counts the messages appended to out since `first` as sent, of `kind`.
  void count_sent(const std::vector<OutMessage>& out, std::size_t first, PeerMsgKind kind);

  // The peer wire format (wire.cpp).
  void begin(const char* type);
  void send(std::uint32_t peer, PeerMsgKind kind, std::vector<OutMessage>& out);
  void write_entry(rapidjson::Writer<rapidjson::StringBuffer>& w, const Entry& entry);
  // The same, for a version just loaded into scratch_, listing the older writes it stands for
  // (those of `stands` below v).
  void write_loaded_entry(rapidjson::Writer<rapidjson::StringBuffer>& w, const Entry& entry,
                          Version v, const Version* stands = nullptr, std::size_t stands_count = 0);
  void take_clock_samples(std::uint32_t peer, std::int64_t now_us);
  void take_entries(std::uint32_t peer, std::int64_t now_us);
  void take_chain(std::uint32_t peer, std::int64_t now_us, std::vector<OutMessage>& out);
  void on_digest(std::uint32_t peer, std::int64_t now_us, std::vector<OutMessage>& out);

  // Dissemination (dissemination.cpp).
  void push_round(std::int64_t now_us, std::vector<OutMessage>& out);
  void on_span(std::uint32_t origin, std::int64_t from, std::int64_t to, std::int64_t now_us,
               std::vector<OutMessage>& out);
  void raise_watermark(std::uint32_t origin, std::int64_t wm, std::int64_t now_us);
  void extend_chain(std::uint32_t origin, std::int64_t held_from, std::int64_t wm,
                    std::int64_t now_us);

  // Anti-entropy (anti_entropy.cpp).
  void index(const Entry* e, Version v);
  void note_superseded(const Entry* e, Version older);
  void note_superseded_in(const PeerEntry& e, const Store::MergeResult& r);
  void anti_entropy_round(std::vector<OutMessage>& out);
  // With resend_since_us (a gap repair to the relay), also this node's acknowledgements for
  // other origins held since then ("ra"): they may have gone in messages lost with the gap.
  void send_digest(std::uint32_t peer, std::vector<OutMessage>& out,
                   std::int64_t resend_since_us = kNoResend);
  static constexpr std::int64_t kNoResend = INT64_MAX;
  void write_acks_held_since(std::uint32_t except, std::int64_t since_us);
  bool answer_digest(std::uint32_t peer, const std::vector<std::int64_t>& their_wm,
                     std::int64_t now_us, std::vector<OutMessage>& out);
  // A peer silent this long on a write of mine, with no push to it for as long, gets a probe
  // (find_silent_peers): longer than a report takes. A report waits up to an ack delay for a
  // message to ride on (then goes alone, checked every quarter delay), or a push and a relay
  // round: twice either. (One ack delay fired on the normal network: `default` sent 7 % more
  // messages.)
  [[nodiscard]] std::int64_t probe_after_us() const {
    return 2 * std::max(config_.ack_delay_max_ms * 1000, push_and_relay_us());
  }
  bool find_silent_peers(std::int64_t now_us);  // O(peers) a round
  // My newest write taken before before_us, if it is not yet everywhere; else null.
  [[nodiscard]] const Unconverged* newest_unconverged_before(std::int64_t before_us) const;
  // Direct pushes only. The first message from a peer silent for early_probe_after_us() that
  // still lacks a report of my write pushed long enough ago for the report to ride on it shows
  // a lost push, most often a cut that just healed. Unless a push of new writes shows every
  // peer its gap first, an early probe follows one such wait later, instead of a probe
  // interval after the write: to that peer and to the peers as silent (a peer that spoke since
  // sees its gap in my next push). At most one per wait. Probing at once cost 5 % more
  // messages under partitions; waiting for a push costs 0.5 % (BENCHMARKS.md).
  void check_lost_push(std::uint32_t peer, std::int64_t now_us);
  // Two push rounds for the push to arrive and the report to come back on the peer's next
  // message: any report takes a message, and this one was a message.
  [[nodiscard]] std::int64_t early_probe_after_us() const { return 2 * own_lag_us(); }
  // How old a peer's newest own write may be before this node, its chain for the peer still
  // short of it, takes its push for lost: two push intervals and two relay rounds.
  [[nodiscard]] std::int64_t own_lag_us() const { return 2 * push_and_relay_us(); }
  // A push interval, and a relay round when there are relays: how long a write may wait to go.
  [[nodiscard]] std::int64_t push_and_relay_us() const {
    return (config_.gossip_interval_ms + (config_.relays > 0 ? config_.relay_interval_ms : 0)) * 1000;
  }
  // How long recent acknowledgements and a relay's forwarded reports are kept (and re-sent).
  [[nodiscard]] std::int64_t recent_acks_kept_us() const {
    return kRecentAckAgeDelays * config_.ack_delay_max_ms * 1000;
  }
  // At most one gap repair per peer per this long: twice the push interval, so the reply to
  // one repair has time to arrive before the next push could ask again.
  [[nodiscard]] std::int64_t repair_backoff_us() const {
    return 2 * config_.gossip_interval_ms * 1000;
  }

  // Convergence measurement (convergence.cpp).
  // remember: keep it in recent_acks_ too (all but the chain's steps, kept in held_steps_).
  void owe_ack(std::uint32_t origin, const AckSpan& span, bool remember = true);
  void write_acks_for(std::uint32_t peer, bool resend_last);
  void write_acks_for_others(std::uint32_t except);
  bool owes_acks_older_than(std::int64_t cutoff_us) const;
  void send_due_acks(std::int64_t now_us, std::vector<OutMessage>& out);
  void on_ack(std::uint32_t peer, const AckSpan& span, std::int64_t now_us);
  // Takes the figures of complete writes once their grace period is over: those at the front,
  // or with full_scan every one (so a write that cannot complete holds none back).
  void finalize(std::int64_t now_us, bool full_scan);
  // When the last replica came to hold u's write, by their reports brought into this node's
  // clock (at least when it was taken).
  [[nodiscard]] std::int64_t held_everywhere_us(const Unconverged& u, std::int64_t now_us) const;
  // Whether each report u counts comes from a life of its replica known to have been alive
  // after every replica held the write (alive_us_, across clocks with the offsets' error
  // bounds): a life killed before then lost the write, and the figure waits for the next one
  // (docs/REPLICATION.md, "Figures wait for proof of life"). Else false, with *unproven (when
  // given) a peer whose proof is missing.
  // Drops peer's report on u (and, if u was complete, the earlier lives' reports kept for it).
  void forget_report(Unconverged& u, std::uint32_t peer);
  // Per peer: where learn_floor's sweep of an earlier life's reports stopped for want of the
  // message's work (INT64_MAX: none pending); finish_floor_sweeps completes them.
  std::vector<std::int64_t> floor_sweep_from_;
  void finish_floor_sweeps();
  // REQUIRES: fill_proof_bounds() at this time.
  [[nodiscard]] bool lives_proven(const Unconverged& u, std::uint32_t* unproven) const;
  // Where each peer's clock offset lies now, for lives_proven.
  void fill_proof_bounds(std::int64_t now_us);
  std::vector<std::int64_t> proof_lo_, proof_hi_;
  std::vector<char> proof_known_;
  std::int64_t proof_bounds_us_ = INT64_MIN;  // when they were filled (INT64_MIN: offsets moved since)
  // A node that fell quiet after sending reports (no message to that peer for quiet_us())
  // sends it one message of nothing else, a heartbeat: its reports' figures wait for a message
  // of its life sent after every replica held the write, and at the end of a load nothing else
  // would come. Behind a relay it goes to the relay, whose next round passes it on to all.
  void send_heartbeats(std::int64_t now_us, std::vector<OutMessage>& out);
  // Twice the acknowledgement delay: while a load runs, a replica owing reports sends them
  // alone within one, and those are proof enough (at one, heartbeats raced them: default's
  // 25-node run sent 900 more messages).
  // How long a complete write waits for a reordered earlier report before its figure is taken.
  [[nodiscard]] std::int64_t convergence_grace_us() const {
    return std::min(2 * config_.ack_delay_max_ms, kConvergenceGraceMaxMs) * 1000;
  }
  [[nodiscard]] std::int64_t quiet_us() const { return 2 * config_.ack_delay_max_ms * 1000; }
  std::vector<char> heartbeat_owed_;               // per peer: reports went since the last one
  std::vector<std::int64_t> last_message_to_us_;   // per peer: the last message of any kind
  bool carries_reports_ = false;  // the message being written carries a or ra spans
  bool reports_for_recipient_ = false;  // ... owed "a" spans for its recipient: numbered (rq)
  // Report numbers ("rq", docs/REPLICATION.md "Numbered reports"), counted per pair of lives:
  // per peer, how many messages carrying reports for its life I know (floor_) this life of
  // mine sent it; and of its numbered messages about this life of mine, the first number not
  // yet heard, which of the next 64 were heard (bit i: next + i), the highest heard, and since
  // when a gap shows (a number heard past one missing; 0: none). Both restart when a peer's
  // new life is learned.
  std::vector<std::int64_t> report_msgs_sent_;
  struct ReportSeq {
    std::int64_t next = 1;
    std::uint64_t above = 0;
    std::int64_t highest = 0;
    std::int64_t gap_since_us = 0;
  };
  std::vector<ReportSeq> report_seq_;
  void note_report_seq(std::uint32_t peer, std::int64_t n, std::int64_t now_us);
  // Asks, with a digest, each peer whose numbered reports show a gap that outlasted a
  // reordering (its answer re-sends them with the times first held), at most once per
  // acknowledgement delay per peer, counting every digest to it.
  void ask_on_report_gaps(std::int64_t now_us, std::vector<OutMessage>& out);
  // A message from the peer that re-sends its reports for me (its digest, or its answer to
  // mine): every number heard so far is settled.
  void settle_report_gap(std::uint32_t peer);
  bool lives_due_ = false;        // a relay's: a heartbeat came, the next round goes to all
  // Asks, with a digest, the replicas whose proof of life the oldest waiting figures lack
  // (their answers carry it): at the end of a load nothing else may come from them.
  void ask_for_proof_of_life(std::int64_t now_us, std::vector<OutMessage>& out);
  void record_held_step(std::uint32_t origin, std::int64_t lo, std::int64_t hi,
                        std::int64_t now_us);
  void record_convergence(std::int64_t ts_us, std::int64_t ms);

  [[nodiscard]] std::uint32_t peer_count() const {
    return static_cast<std::uint32_t>(ids_.size() - 1);
  }

  GossipConfig config_;
  std::string self_;
  std::vector<std::string> ids_;  // ids_[origin - 1]
  std::uint32_t me_;              // my origin
  Store& store_;
  std::mt19937_64 rng_;

  // Deltas for the next push round: per entry the newest version pending (the one sent is the
  // entry's current version, whatever is pending) and the oldest write of mine among them (a
  // push's span must not cover it unless the push carries the entry).
  struct PendingDelta {
    Version newest;
    std::int64_t oldest_own_us = INT64_MAX;  // INT64_MAX: none of mine
    std::int64_t newest_own_us = INT64_MIN;  // INT64_MIN: none of mine
    bool relayed = false;  // a relay forwards it: a span it forwards may cover it
    // Writes of the key the push stands for (those older than the version it carries are
    // listed with the entry, at most kStandsForMax): the newest, with room for the carried one.
    std::uint8_t stands_count = 0;
    std::array<Version, peer_wire::kStandsForMax + 1> stands{};
    void stand_for(Version v);
  };
  // The entry's pending delta, with v among what it stands for.
  PendingDelta& add_pending(const Entry* entry, Version v, bool relayed = false);
  absl::flat_hash_map<const Entry*, PendingDelta> pending_;
  std::vector<std::int64_t> wm_;                        // per origin (index 0 unused)
  // This node holds every write of its own life (versions above own_floor_, the time it
  // started); of an earlier life (a restart: the store came back empty), those up to own_held_,
  // which a peer's digest answer vouched for. Its digests claim own_held_ for itself, and
  // answers send back its own writes above that and at or below its floor.
  std::int64_t own_floor_;
  std::int64_t own_held_ = 0;
  // Per origin: the start of its current life, as its pushes say ("fl"; a relay forwards it
  // with the chain). A node restarted empty starts a new life: its peers' watermarks for it
  // skip to the floor (the earlier life's writes are the safety net's), nothing below it is
  // acknowledged, and reports from its earlier life on this node's writes no longer count.
  std::vector<std::int64_t> floor_;
  // Per origin: how far this node's chain stood when it skipped to the origin's floor (what it
  // truly holds of the earlier life); INT64_MAX when the chain never skipped.
  std::vector<std::int64_t> before_floor_;
  // Per origin: 1 when this node knows the origin had a life before its current floor (it
  // knew an earlier floor or chain, or a peer that knew split its claim). Such a node answers
  // a whole claim past the floor as split at 0, and takes no answer's word that a split claim
  // is whole (only a node whose chain crossed the floor could say so; one that took the floor
  // for a first life says so wrongly).
  std::vector<std::uint8_t> knows_earlier_;
  // Per origin: where this node's chain stood when it went back to a floor below it (two lives
  // overlapping in time), else 0. Up to there, the origin's entries may be of its earlier life
  // though above its floor: an answer to the origin sends them back too, and an answer's
  // watermark for the origin is not taken there (its sender may not have learned the floor).
  std::vector<std::int64_t> overlap_top_;
  // Per origin: the latest time, in its clock, its current life is known to have been alive,
  // from its own messages that name that life (a push's or digest's send time "st" with its
  // floor; not a relay's forwarded chain end, a version that may run ahead of its clock); 0
  // before one. At a new floor, reports of the earlier life on writes every replica held
  // before then still count (learn_floor).
  std::vector<std::int64_t> alive_us_;
  void note_alive(std::uint32_t origin, std::int64_t floor, std::int64_t at_us, std::int64_t now_us);
  std::vector<std::int64_t> heard_us_;            // per peer: when alive_us_ last grew, my clock
  std::vector<std::int64_t> last_life_probe_us_;  // per peer: when it was last asked for one
  // Figures of complete writes looked at per tick for missing proofs of life, among at most
  // kProofPassMax writes from the oldest.
  static constexpr std::size_t kProofScanMax = 64;
  static constexpr std::size_t kProofPassMax = 4096;
  // A relay's: the floor and "st" of the newest message it had from each node, and the nodes
  // whose entry changed since its last round ("lv": every node's proof of life goes to all).
  struct HeardLife {
    std::int64_t floor = 0, sent_at = 0;
  };
  std::vector<HeardLife> heard_lives_;
  std::vector<std::uint32_t> lives_changed_;
  std::vector<char> life_changed_;  // per node: listed in lives_changed_
  void hear_life(std::uint32_t peer, std::int64_t floor, std::int64_t sent_at);
  // How far apart the nodes of a cluster started together may have taken their floors
  // (start-up, and clocks apart): a first floor heard of within it, or later, is an origin's
  // first life (learn_floor).
  static constexpr std::int64_t kStartSpreadUs = 1'000'000;

  // An answer's scratch: per origin, the asker's split claim (INT64_MAX: none).
  std::vector<std::int64_t> split_held_, split_floor_;
  // An answer's "bf": the asker now holds the origin's writes up to held.
  void take_split_answer();
  void learn_floor(std::uint32_t origin, std::int64_t floor, std::int64_t now_us);
  // A chain sent with floor `floor` is of the origin's current life, as far as this node
  // knows; one of an earlier life, arriving late, covers writes of that life only (its entries
  // are taken, not acknowledged: the new life would take the report for its own writes).
  [[nodiscard]] bool of_current_life(std::uint32_t origin, std::int64_t floor) const {
    return origin < floor_.size() && floor >= floor_[origin];
  }
  std::vector<std::int64_t> sent_wm_;  // per peer: my watermark carried by my last push to it
  // The anti-entropy index: per origin, the entries whose current version it wrote, by ts.
  // The version each entry is indexed at is its Store::index_mark, and the index orders by
  // the mark's timestamp, so an element is a bare pointer (8 bytes a key, not 16: about
  // 10 bytes per key less at 1M keys). An entry's mark changes only while it is out of the
  // index (index()).
  struct ByIndexedTs {
    using is_transparent = void;
    struct At {  // sorts before every entry indexed at ts_us
      std::int64_t ts_us;
    };
    static std::int64_t ts(const Entry* e) { return Store::index_mark_ts(*e); }
    bool operator()(const Entry* a, const Entry* b) const {
      std::int64_t ta = ts(a), tb = ts(b);
      return ta < tb || (ta == tb && std::less<>()(a, b));
    }
    bool operator()(const Entry* a, At b) const { return ts(a) < b.ts_us; }
    bool operator()(At a, const Entry* b) const { return a.ts_us <= ts(b); }
  };
  // The index's btree nodes come from a pool of the engine's own, so the splits and merges of
  // steady overwrites (an entry leaves its place and goes to the end) reuse freed nodes rather
  // than calling malloc, and a node costs no malloc header. The pool keeps what the index
  // shrank from until the engine goes (the index shrinks only when entries go to other origins).
  std::pmr::unsynchronized_pool_resource index_pool_;
  using IndexSet = absl::btree_set<const Entry*, ByIndexedTs, std::pmr::polymorphic_allocator<const Entry*>>;
  std::vector<IndexSet> by_origin_;
  // Per origin, its writes this node holds only as a newer version of their key (ts, entry):
  // replaced in the index, or only ever held superseded (an entry that came after a newer
  // version, or a write an entry listed); the newest kSupersededPerOriginMax. An answer sends
  // the entry for each one in the asker's range, listing the write, so that the asker reports
  // it from when it held the newer version, not from when its chain reaches it.
  // Sorted by (ts, entry) in a Ring (a btree split and merged nodes as the oldest went): once
  // grown it never allocates again.
  using SupersededItem = std::pair<std::int64_t, const Entry*>;
  std::vector<Ring<SupersededItem>> superseded_;
  struct Replaced {  // answer_digest's scratch: a replaced write in the asker's range
    std::string_view key;
    const Entry* entry;
    Version older;
  };
  std::vector<Replaced> replaced_;
  struct HeldRec {
    Version v;
    std::int64_t at_us;
  };
  // Per entry, the versions this node took lately, ascending, with when (record_held); and all
  // of them in the order taken, to bound the total.
  absl::flat_hash_map<const Entry*, absl::InlinedVector<HeldRec, 2>> held_recs_;
  Ring<std::pair<const Entry*, std::int64_t>> held_order_;
  // Entries holding a version newer than indexed, whose local delta is on its way: a peer's
  // older version was turned down for it. At most one per local delta in flight (the delta
  // queue's bound); each leaves when its delta is indexed.
  absl::flat_hash_map<const Entry*, Version> unindexed_;
  std::vector<Ring<AckSpan>> owed_acks_;  // per origin: what to report it holds here
  // Per origin: how this node's watermark for it grew, as spans (lo, hi] with the time each
  // was reached, oldest first and contiguous; re-sent on digests so that acknowledgements lost
  // on the way are reported again with the times the writes were first held, not the time of
  // the re-send. At most kHeldStepsMax: beyond, the two oldest merge (at the later time: a
  // figure may come out late, never early).
  std::vector<Ring<AckSpan>> held_steps_;
  // Per origin: the other acknowledgements this node sent it lately (entries taken one by
  // one, spans ahead of a gap, content sync), re-sent with the held steps: in a partition
  // they are lost as often as the chain's, and the steps alone would report those writes at
  // the time the chain reached them, later than they were held. Kept kRecentAckAgeDelays x
  // ack_delay_max_ms (the origin asks again after 4), at most kRecentAcksMax.
  std::vector<Ring<AckSpan>> recent_acks_;
  std::vector<std::int64_t> last_sent_to_us_;    // per peer
  std::vector<std::int64_t> last_repair_us_;     // per peer: the last gap-triggered digest
  std::vector<std::int64_t> last_push_us_;       // per peer: the last push (a probe included)
  std::vector<std::uint8_t> silent_;             // per peer: probed this round
  bool probe_early_ = false;                      // check_lost_push saw a lost push
  std::uint32_t early_probe_peer_ = 0;            // ... in a message from this peer
  // ... and probes then, unless a push came first; no new trigger before (one per wait)
  std::int64_t early_probe_at_us_ = 0;
  std::vector<std::int64_t> last_heard_us_;       // per peer: its last message (check_lost_push)
  // Per origin: (from, to] spans of pushes that arrived before the chain reached their from.
  std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>> spans_;
  Ring<Unconverged> unconverged_;          // my writes by ts
  // How many of them each key has: a report on one write looks for older ones of its key
  // only where there are (on_ack), so a key written once costs a lookup, not a scan.
  absl::flat_hash_map<const Entry*, std::uint32_t> unconverged_of_key_;
  static constexpr std::size_t kOfKeyCapacityKept = 4096;  // beyond, freed once empty
  // The reach arrays of writes that left unconverged_, for the next ones: no allocation per
  // write once warm. Kept up to kSpareSlotsKept slots (256 KiB), or as many as writes in flight.
  std::vector<std::vector<std::int64_t>> spare_reach_;
  static constexpr std::size_t kSpareSlotsKept = std::size_t{1} << 15;
  void pop_unconverged();  // the front, keeping its array
  std::size_t converged_in_deque_ = 0;           // complete, not yet finalized
  std::size_t unconverged_max_;

  std::uint32_t hub_ = 0;  // the relay this node pushes to; 0 when it pushes to everyone
  bool is_relay_ = false;
  struct RelaySpan {
    std::uint32_t origin;
    std::int64_t from, to, floor;
  };
  struct RelayAck {
    std::uint32_t acker, origin;
    std::int64_t lo, hi, at_us;
  };
  std::vector<RelaySpan> relay_spans_;  // chains to forward with the next relay round
  Ring<RelayAck> relay_acks_;    // acknowledgements to forward, oldest first
  // A relay's memory, per origin, of the acknowledgements it forwarded to it lately (with
  // when): a relay round lost in a partition took them along, and the origin's digest gets
  // them again in the answer ("r":{"fa"}) instead of asking every silent replica. Kept
  // kRecentAckAgeDelays x ack_delay_max_ms, at most kForwardedKeptMax per origin. A report
  // forwarded already is not forwarded again (replicas re-send theirs after a gap).
  struct Forwarded {
    RelayAck ack;
    std::int64_t forwarded_us;
  };
  using ForwardedKey = std::tuple<std::uint32_t, std::uint32_t, std::int64_t, std::int64_t, std::int64_t>;
  static ForwardedKey key_of(const RelayAck& a) { return {a.acker, a.origin, a.lo, a.hi, a.at_us}; }
  std::vector<Ring<Forwarded>> forwarded_;
  absl::flat_hash_set<ForwardedKey> forwarded_keys_;
  std::uint32_t resend_start_ = 0;  // the origin a gap repair's re-sent reports start at
  std::int64_t forwarded_swept_us_ = INT64_MIN / 2;  // the last sweep of a full forwarded_
  // Remembers a report to forward; false when it was forwarded already.
  bool remember_forwarded(const RelayAck& a, std::int64_t now_us);
  void forget_forwarded_before(std::uint32_t origin, std::int64_t cutoff_us);
  // A relay that learned a newer life of origin: drops the steps of chains (spans of several
  // versions) it holds to forward or give again to that origin (learn_floor).
  void drop_relayed_steps(std::uint32_t origin);

  PeerDecoder decoder_;
  // Peers' clock offsets, from "st"/"mo" on every message (clock_offsets.h): figures settle in
  // this node's clock. send_now_us_ is the time of the call that sends (tick, on_peer_message).
  ClockOffsets offsets_;
  std::int64_t send_now_us_ = 0;
  // A relay's last published table and when: it goes again when it changes (by 1 ms or more)
  // or after kClockTablePeriodUs; table_sent_ of it went (a long one goes in turns).
  // relay_table_: the scratch for a received one.
  std::size_t table_sent_ = 0;
  std::vector<ClockOffsets::Published> published_, relay_table_;
  std::vector<ClockOffsets::Published> table_scratch_;  // clock_table_due's, kept
  std::int64_t published_at_us_ = INT64_MIN / 2;
  static constexpr std::int64_t kClockTablePeriodUs = 5'000'000;
  // A view into published_, valid until the next call.
  [[nodiscard]] absl::Span<const ClockOffsets::Published> clock_table_due(std::int64_t now_us);
  PeerMessage msg_;  // the message being handled (reused: no allocation per message)
  // Unconverged writes one message's acknowledgements may still visit: a forged span over
  // every timestamp costs at most this much work, not O(pending) per span.
  std::size_t ack_work_left_ = 0;
  std::size_t same_key_work_left_ = 0;  // kSameKeyWorkPerMessageMax, the same way
  std::unique_ptr<ContentSync> sync_;  // null in a one-node cluster
  // Per peer: content-sync messages answered this sync interval. A peer can make a node send
  // up to 4 MiB per message it sends (a refill); at most kSyncAnswersMax of them an interval.
  std::vector<std::uint32_t> sync_answers_;
  std::vector<std::uint32_t> digest_answers_;  // per peer, this anti-entropy interval
  std::vector<std::int64_t> last_cut_answer_us_;  // per peer: the last answer cut at the cap
  std::atomic<std::uint64_t> digests_throttled_{0};
  std::atomic<std::uint64_t> sync_throttled_{0};
  // ContentSync's own totals, mirrored after each call for readers on other threads.
  std::atomic<std::uint64_t> sync_rounds_{0};
  std::atomic<std::uint64_t> sync_entries_sent_{0};
  std::atomic<std::uint64_t> sync_entries_applied_{0};
  std::atomic<std::uint64_t> sync_capped_{0};

  std::int64_t next_push_us_;
  std::int64_t next_ae_us_;
  std::int64_t next_sync_us_;
  std::int64_t next_ack_check_us_;
  // The last push left part of its entries for the next (the byte cap): the next follows soon.
  bool backlog_ = false;
  std::size_t held_back_count_ = 0;  // writes of mine the last push held back
  // The oldest write of mine the last push held back (above its span): once the safe
  // watermark reaches it, a push_on_write node pushes at once.
  std::int64_t held_back_min_ts_ = INT64_MAX;
  struct CarriedOwn {  // an entry a push carried that stood for writes of mine
    const Entry* entry;
    Version version;             // the version carried
    std::int64_t oldest_own_us;  // the oldest and newest writes of mine it stood for
    std::int64_t newest_own_us;
  };
  std::vector<CarriedOwn> carried_own_;  // push_round's scratch
  struct Ordered {  // push_round's sending order
    std::int64_t sort_us;  // the oldest write of mine, INT64_MIN for relayed or others' entries
    PendingDelta delta;
    const Entry* entry;
  };
  std::vector<Ordered> order_;
  // push_round's scratch keeps at most this capacity once nothing is pending.
  static constexpr std::size_t kScratchKeptMax = 1024;
  // push_round's entries and what a relay forwards, rendered once for every recipient: kept
  // between rounds (growing each afresh reallocated about ten times a push), and given back
  // beyond kPushBufferKeptBytes once nothing is pending.
  rapidjson::StringBuffer push_entries_;
  rapidjson::Writer<rapidjson::StringBuffer> push_entries_writer_;
  rapidjson::StringBuffer push_relayed_;
  rapidjson::Writer<rapidjson::StringBuffer> push_relayed_writer_;
  static constexpr std::size_t kPushBufferKeptBytes = 64 * 1024;
  std::atomic<std::uint64_t> relay_spans_dropped_{0};
  std::atomic<std::uint64_t> relay_acks_dropped_{0};
  std::atomic<std::uint64_t> answers_cut_{0};  // digest answers cut at the byte cap
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
  bool floor_written_ = false;  // the message being written carries "fl" already
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
  std::atomic<std::uint64_t> stale_reads_{0};
  std::atomic<std::uint64_t> unmeasured_{0};
  std::atomic<std::uint64_t> pending_count_{0};
  mutable Mutex stats_mu_;
  mutable LatencyHistogram convergence_ GOSSIP_KV_GUARDED_BY(stats_mu_);
  // The latest figures one by one, oldest first, for bench_figures (kFiguresKept).
  struct Figure {
    std::int64_t ts_us;  // the write's version
    std::int64_t ms;
  };
  Ring<Figure> figures_ GOSSIP_KV_GUARDED_BY(stats_mu_);
  std::uint64_t figures_dropped_ GOSSIP_KV_GUARDED_BY(stats_mu_) = 0;
  mutable std::atomic<std::uint64_t> converged_alone_{0};
  LatencyHistogram lag_ GOSSIP_KV_GUARDED_BY(stats_mu_);
};

}  // namespace gossip_kv
