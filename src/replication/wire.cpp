// The peer wire format: rendering a message (begin/send, entries) and decoding every message a
// peer sends, then handing each part to its concern (docs/REPLICATION.md lists the members).
#include "replication/gossip_engine.h"

#include <algorithm>


#include "gossip_kv/limits.h"
#include "replication/wire.h"

namespace gossip_kv {

void GossipEngine::begin(const char* type) {
  buf_.Clear();
  writer_.Reset(buf_);
  writer_.StartObject();
  writer_.Key("type");
  writer_.String(type);
  floor_written_ = false;
  carries_reports_ = false;
  reports_for_recipient_ = false;
}

void GossipEngine::send(std::uint32_t peer, PeerMsgKind kind, std::vector<OutMessage>& out) {
  // Every message names the sender's life: with "st", it proves that life alive then
  // (lives_proven), and a restart is learned from whatever message comes first.
  if (!floor_written_) {
    writer_.Key("fl");
    writer_.Int64(own_floor_);
  }
  // Numbered only about a life of the recipient I know (with "al"): each restarts the count.
  // Not with relays: a relay's rounds go every interval to everyone, and their own gap repair
  // carries the reports again (docs/REPLICATION.md); numbering them too cost fast's 25-node
  // partition run 1.1 messages per operation more in digests.
  if (reports_for_recipient_ && config_.relays == 0 && floor_[peer] != 0 &&
      report_msgs_sent_[peer] < peer_wire::kReportSeqMax) {
    writer_.Key("rq");
    writer_.Int64(++report_msgs_sent_[peer]);
  }
  writer_.Key("st");
  writer_.Int64(send_now_us_);
  if (std::int64_t seen = offsets_.seen_min(peer, send_now_us_); seen != ClockOffsets::kUnknown) {
    writer_.Key("mo");
    writer_.Int64(seen);
  }
  writer_.EndObject();
  out.push_back({ids_[peer - 1], std::string(buf_.GetString(), buf_.GetSize())});
  last_message_to_us_[peer] = send_now_us_;
  // (Behind a relay, reports count when they go to the relay; a direct digest that carries
  // them too owes no heartbeat.)
  if (carries_reports_ && (hub_ == 0 || peer == hub_)) heartbeat_owed_[peer] = 1;
  msgs_sent_[kind].fetch_add(1, std::memory_order_relaxed);
  bytes_sent_.fetch_add(buf_.GetSize(), std::memory_order_relaxed);
  bytes_sent_by_[kind].fetch_add(buf_.GetSize(), std::memory_order_relaxed);
}

// Entries travel as [key, ts_us, origin, value-as-a-JSON-string]: the string keeps the value's
// exact text through any JSON parser. The entry's current version goes, whatever was pending.
void GossipEngine::write_entry(Writer& w, const Entry& entry) {
  write_loaded_entry(w, entry, store_.load(entry, &scratch_));
}

void GossipEngine::write_loaded_entry(Writer& w, const Entry& entry, Version v,
                                      const Version* stands, std::size_t stands_count) {
  std::string_view key = Store::key_of(entry);
  w.StartArray();
  w.String(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.Int64(v.ts_us);
  w.Uint(v.origin);
  w.String(scratch_.data(), static_cast<rapidjson::SizeType>(scratch_.size()));
  // Only older writes, of an origin; beyond room, the one stand_for would let go first stays
  // out, not the last in order.
  auto listable = [&](std::size_t i) { return stands[i] < v && stands[i].origin != 0; };
  std::size_t count = 0;
  for (std::size_t i = 0; i < stands_count; ++i) count += listable(i) ? 1 : 0;
  std::size_t skip =
      count > peer_wire::kStandsForMax ? listed_write_to_drop(stands, stands_count, listable) : stands_count;
  std::size_t listed = 0;
  for (std::size_t i = 0; i < stands_count && listed < peer_wire::kStandsForMax; ++i) {
    if (!listable(i) || i == skip) continue;
    w.Uint(stands[i].origin);
    w.Int64(stands[i].ts_us);
    ++listed;
  }
  w.EndArray();
}

void GossipEngine::on_peer_message(std::string_view src, std::string_view body_json,
                                   std::int64_t now_us, std::vector<OutMessage>& out) {
  msgs_received_.fetch_add(1, std::memory_order_relaxed);
  bytes_received_.fetch_add(body_json.size(), std::memory_order_relaxed);
  send_now_us_ = now_us;
  auto it = std::lower_bound(ids_.begin(), ids_.end(), src);
  if (it == ids_.end() || *it != src || *it == self_) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto peer = static_cast<std::uint32_t>(it - ids_.begin() + 1);
  PeerBounds bounds = PeerBounds::for_cluster(static_cast<std::uint32_t>(ids_.size()), 0,
                                              now_us + limits::kVersionAheadMaxUs);
  PeerDecodeResult r = decoder_.decode(body_json, bounds, &msg_);
  if (r.status == PeerStatus::kUnknownType) {  // content sync has its own messages and decoder
    msgs_received_by_[kSync].fetch_add(1, std::memory_order_relaxed);
    bytes_received_by_[kSync].fetch_add(body_json.size(), std::memory_order_relaxed);
    return on_sync_message(peer, body_json, now_us, out);
  }
  if (!r.ok()) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  PeerMsgKind kind = msg_.kind == PeerKind::kGossip ? kGossip
                     : msg_.kind == PeerKind::kDigest ? kDigest
                                                      : kAck;
  msgs_received_by_[kind].fetch_add(1, std::memory_order_relaxed);
  bytes_received_by_[kind].fetch_add(body_json.size(), std::memory_order_relaxed);
  ack_work_left_ = kAckWorkPerMessageMax;
  same_key_work_left_ = kSameKeyWorkPerMessageMax;
  take_clock_samples(peer, now_us);
  // The sender's life first: its reports in this message are of that life, and a restart must
  // be known before them (learn_floor forgets what the earlier life reported).
  if (msg_.has_floor) learn_floor(peer, msg_.floor, now_us);
  // A message of an earlier life (delayed, or replayed) reports for a store that is gone.
  const bool stale_life = msg_.has_floor && msg_.floor < floor_[peer];
  // A relay's word on the others' lives, before the reports it forwards: only relays pass it on.
  if (msg_.has_relay_lives && peer <= static_cast<std::uint32_t>(std::max(config_.relays, 0))) {
    for (const PeerRelayLife& l : msg_.relay_lives) {
      if (l.node == me_) continue;
      learn_floor(l.node, l.floor, now_us);
      note_alive(l.node, l.floor, l.sent_at, now_us);
    }
  }
  take_entries(peer, now_us);
  if (msg_.has_chain) take_chain(peer, now_us, out);
  // Chains forwarded by a relay: only relays forward them (any other sender's are ignored).
  if (msg_.has_relay_spans && peer <= static_cast<std::uint32_t>(std::max(config_.relays, 0))) {
    for (const PeerRelaySpan& sp : msg_.relay_spans) {
      learn_floor(sp.origin, sp.floor, now_us);
      if (of_current_life(sp.origin, sp.floor)) on_span(sp.origin, sp.from, sp.to, now_us, out);
    }
  }
  if (msg_.has_forwarded_acks) {
    for (const PeerForwardedAck& a : msg_.forwarded_acks) {
      // Only reports on this node's writes, by someone else than this node.
      if (a.origin == me_ && a.acker != me_) on_ack(a.acker, {a.lo, a.hi, a.at_us}, now_us);
    }
  }
  if (msg_.has_relay_acks && is_relay_ && !stale_life) {
    for (const PeerRelayAck& a : msg_.relay_acks) {
      if (a.origin == me_) {
        on_ack(peer, {a.lo, a.hi, a.at_us}, now_us);
      } else if (a.origin != peer) {
        RelayAck forward{peer, a.origin, a.lo, a.hi, a.at_us};
        if (relay_acks_.size() >= kRelayAcksQueuedMax) {  // not remembered: a re-send may pass
          relay_acks_dropped_.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        if (!remember_forwarded(forward, now_us)) continue;  // forwarded already
        relay_acks_.push_back(forward);
      }
    }
  }
  // An answer vouches only for the life whose digest it answers: one to a digest sent before
  // a restart (delayed, or from a paused peer) went by claims this store never had.
  if (msg_.kind == PeerKind::kGossip && msg_.has_wm && msg_.has_asker_floor &&
      msg_.asker_floor == own_floor_) {
    for (std::uint32_t o = 1; o < msg_.wm.size(); ++o) {
      if (wm_[o] < overlap_top_[o]) continue;  // see overlap_top_
      raise_watermark(o, msg_.wm[o], now_us);
    }
    // The answer sent every write of mine the asker lacked by my digest: I hold those.
    own_held_ = std::max(own_held_, std::min(msg_.wm[me_], wm_[me_]));
    if (msg_.has_before_floor) take_split_answer();
  }
  if (msg_.has_acks && !stale_life) {
    // From a peer that has not learned this life of mine yet: a span of several versions is a
    // step of its chain of my earlier life, which may span versions this life took again (a
    // clock behind at the restart). A report on one version is true whichever life wrote it
    // (entries of this life reach such a peer through others; two lives that overlap in time
    // could both have written at that very microsecond, which this does not tell apart).
    bool other_life = msg_.has_ack_life && msg_.ack_life != own_floor_;
    for (const PeerAckSpan& a : msg_.acks) {
      if (other_life && a.hi - a.lo != 1) continue;
      on_ack(peer, {a.lo, a.hi, a.at_us}, now_us);
    }
  }
  if (msg_.has_report_seq && !stale_life && msg_.has_ack_life && msg_.ack_life == own_floor_) {
    note_report_seq(peer, msg_.report_seq, now_us);
  }
  // Its digest, or its answer to my digest: both re-send all it still has of its reports for
  // me (write_acks_for: the held steps and recent acknowledgements; none, and no "a", when it
  // has none left), whatever numbered messages were lost. A throttled digest is not answered:
  // the gap stays, and is asked again.
  const bool resends_reports =
      msg_.kind == PeerKind::kDigest ||
      (msg_.kind == PeerKind::kGossip && msg_.has_wm && msg_.has_asker_floor && msg_.asker_floor == own_floor_);
  if (resends_reports && !stale_life && (!msg_.has_ack_life || msg_.ack_life == own_floor_)) {
    settle_report_gap(peer);
  }
  if (msg_.kind == PeerKind::kDigest) on_digest(peer, now_us, out);
  if (msg_.has_floor && msg_.has_sent_at) {
    note_alive(peer, msg_.floor, msg_.sent_at, now_us);
    if (is_relay_) {
      hear_life(peer, msg_.floor, msg_.sent_at);
      // A heartbeat (a message of nothing else): the node fell quiet, and its last reports
      // wait for this proof; the next round goes to everyone with it.
      bool heartbeat = msg_.kind == PeerKind::kAck && !msg_.has_acks && !msg_.has_relay_acks;
      lives_due_ |= heartbeat;
    }
  }
  check_lost_push(peer, now_us);  // after the reports this message carried
}

// The message's send time and the sender's least delay from me: clock offsets
// (clock_offsets.h), by which reports settle in my clock.
void GossipEngine::take_clock_samples(std::uint32_t peer, std::int64_t now_us) {
  proof_bounds_us_ = INT64_MIN;  // the proof bounds are refilled from the new offsets
  if (msg_.has_sent_at) offsets_.on_message(peer, msg_.sent_at, now_us);
  if (msg_.has_seen_min) offsets_.on_told(peer, msg_.seen_min);
  // A relay's table: only relays publish one (anyone else's is ignored).
  if (msg_.has_clock_offsets && peer <= static_cast<std::uint32_t>(std::max(config_.relays, 0))) {
    relay_table_.clear();
    for (const PeerClockOffset& c : msg_.clock_offsets) relay_table_.push_back({c.node, c.mid, c.half_width});
    offsets_.on_relay_table(peer, relay_table_);
  }
}

// Entries of a push, a relay's round or a digest's answer. A push's chain covers the sender's
// own writes; every other entry is acknowledged to its origin on its own. (One held already
// was acknowledged when it first arrived.)
void GossipEngine::take_entries(std::uint32_t peer, std::int64_t now_us) {
  for (const PeerEntry& e : msg_.entries) {
    Store::MergeResult r;
    Version v{e.ts_us, e.origin};
    if (!apply_entry(e.key, e.value, v, now_us, &r)) continue;
    if (r.applied && !(msg_.has_chain && e.origin == peer)) {
      owe_ack(e.origin, {e.ts_us - 1, e.ts_us, now_us});
    }
    report_older_writes(e, r, peer, now_us);
    note_superseded_in(e, r);
    if (is_relay_) pass_on_older_writes(e, r, peer);
  }
}

// A relay passes on what an entry stands for, from a chainless message of a node it serves (a
// digest answer from the origin after a partition, above all): otherwise a replica that took a
// newer version from another side of the cut reports the older write only when its origin's
// chain reaches it. (A served node's push is forwarded whole, its listings included:
// take_chain.) Not from another relay, which sent the entry to every node itself (two relays
// would bounce it for good), and not as a relayed entry: no chain covers it, so a round that
// leaves it out for the byte cap drops no chain. At most up to the bound on pending deltas.
void GossipEngine::pass_on_older_writes(const PeerEntry& e, const Store::MergeResult& r,
                                        std::uint32_t peer) {
  if (r.entry == nullptr || msg_.has_chain || peer <= static_cast<std::uint32_t>(config_.relays) ||
      pending_.size() >= kPendingHeldMax) {
    return;
  }
  Version carried{e.ts_us, e.origin};
  auto add = [&](Version older) {  // none of mine: add_pending counts no write of mine for it
    if (older.origin != 0 && older.origin != me_ && older.origin <= ids_.size()) {
      add_pending(r.entry, older);
    }
  };
  if (!r.applied && carried < r.previous) add(carried);
  for (std::uint32_t i = 0; i < e.stands_count; ++i) {
    Version older{e.stands[i].second, e.stands[i].first};
    if (older < carried) add(older);
  }
}

// A push's chain (from, to] of the sender's own writes. A relay forwards the entries and the
// chain of the nodes it serves.
void GossipEngine::take_chain(std::uint32_t peer, std::int64_t now_us,
                              std::vector<OutMessage>& out) {
  if (is_relay_ && peer > static_cast<std::uint32_t>(config_.relays)) {
    for (const PeerEntry& e : msg_.entries) {
      const Entry* entry = store_.find(e.key);
      if (entry == nullptr) continue;
      Version v{e.ts_us, e.origin};
      PendingDelta& pending = add_pending(entry, v, /*relayed=*/true);
      for (std::uint32_t i = 0; i < e.stands_count; ++i) {
        pending.stand_for({e.stands[i].second, e.stands[i].first});
      }
    }
    if (relay_spans_.size() < kRelaySpansMax) {
      // Forwarded no further than half the version window past this node's clock (as
      // raise_watermark): a claim far ahead would put the whole round outside the window of a
      // recipient whose clock runs behind, and it would reject every entry with it.
      std::int64_t cap = now_us + limits::kVersionAheadMaxUs / 2;
      std::int64_t to = std::min(msg_.to, cap);
      relay_spans_.push_back({peer, std::min(msg_.from, to), to,
                              msg_.has_floor ? std::min(msg_.floor, cap) : 0});
    }
  }
  // (The sender's floor was learned first thing, on_peer_message.)
  if (of_current_life(peer, msg_.has_floor ? msg_.floor : 0)) {
    on_span(peer, msg_.from, msg_.to, now_us, out);
  }
}

// A digest: answer with what the asker lacks by its watermarks and, push-pull, ask back when
// it holds writes this node lacks.
void GossipEngine::on_digest(std::uint32_t peer, std::int64_t now_us,
                             std::vector<OutMessage>& out) {
  const std::vector<std::int64_t>& their_wm = msg_.wm;
  // The asker's floor was learned first thing (on_peer_message): the answer sends back its
  // writes of an earlier life only, and must know where its current one began.
  // At most kDigestAnswersMax answers per interval, and one cut at the byte cap: a cut answer
  // vouches for nothing, so the asker's watermarks stay and the next answer would resend the
  // same entries (content sync refills a replica that far behind).
  bool recently_cut = now_us - last_cut_answer_us_[peer] < config_.anti_entropy_interval_ms * 1000;
  if (digest_answers_[peer] >= kDigestAnswersMax || recently_cut) {
    digests_throttled_.fetch_add(1, std::memory_order_relaxed);  // its acks were taken above
    return;
  }
  ++digest_answers_[peer];
  if (answer_digest(peer, their_wm, now_us, out)) last_cut_answer_us_[peer] = now_us;
  bool they_know_more = false;
  for (std::size_t o = 1; o < wm_.size(); ++o) {
    they_know_more |= o != me_ && their_wm[o] > wm_[o];
  }
  // The asker's own writes beyond my chain for it, the newest older than a push and a relay
  // round could take: its push was lost. (While it keeps writing, its pushes fill the chain.)
  // (My chain for it never sits below its floor: learn_floor skips it there.)
  if (msg_.has_own && msg_.own > wm_[peer] && now_us - msg_.own > own_lag_us()) {
    they_know_more = true;
  }
  if (they_know_more && now_us - last_repair_us_[peer] >= repair_backoff_us()) {
    last_repair_us_[peer] = now_us;
    send_digest(peer, out);
  }
}

}  // namespace gossip_kv
