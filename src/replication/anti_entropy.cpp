// Anti-entropy: the per-origin index of entries by timestamp, the digest of watermarks sent to
// one random peer per round, and the answer carrying exactly what the asker lacks.
#include "replication/gossip_engine.h"

#include <algorithm>
#include <array>
#include <tuple>

#include "common/assert.h"
#include "gossip_kv/limits.h"
#include "replication/content_sync_codec.h"
#include "replication/wire.h"

namespace gossip_kv {

void GossipEngine::index(const Entry* e, Version v) {
  if (std::optional<Version> old = Store::index_mark(*e)) {
    if (!(*old < v)) return;
    if (old->origin != 0 && old->origin < by_origin_.size()) {
      // Found by its mark, still the old one: a mark changed anywhere else would leave the
      // entry here under a key it no longer has.
      std::size_t erased = by_origin_[old->origin].erase(e);
      GOSSIP_KV_ASSERT(erased == 1);
    }
    note_superseded(e, *old);
  }
  Store::set_index_mark(*e, v);
  // Origin 0 (kv_merge without a node) is never asked for by a digest.
  if (v.origin != 0 && v.origin < by_origin_.size()) {
    // Most often the origin's newest write yet: at the end, which the hint takes without a
    // descent (a wrong hint costs a compare or two, then the usual insert).
    IndexSet& set = by_origin_[v.origin];
    std::size_t before = set.size();
    set.insert(set.end(), e);
    GOSSIP_KV_ASSERT(set.size() == before + 1);
  }
  if (!unindexed_.empty()) {
    auto u = unindexed_.find(e);
    if (u != unindexed_.end() && !(v < u->second)) unindexed_.erase(u);
  }
}

void GossipEngine::note_superseded(const Entry* e, Version older) {
  if (e == nullptr || older.origin == 0 || older.origin >= superseded_.size()) return;
  Ring<SupersededItem>& kept = superseded_[older.origin];
  SupersededItem item{older.ts_us, e};
  // Older than every one kept in a full list: it would be the one dropped at once.
  if (kept.size() >= kSupersededPerOriginMax && item < kept.front()) return;
  auto at = std::lower_bound(kept.begin(), kept.end(), item);  // most often the end
  if (at != kept.end() && *at == item) return;
  kept.insert(at, item);
  if (kept.size() > kSupersededPerOriginMax) kept.pop_front();
}

// A peer's entry that tells of writes this node holds only superseded: the carried version
// when a newer one was here already, and the older writes it stands for. An answer lists them
// to an asker whose range they fall in (answer_digest), as it does the writes its own index
// replaced: the asker may have taken the newer version from elsewhere before it ever heard of
// the older write (a cut), and would otherwise report it only when its chain got there.
void GossipEngine::note_superseded_in(const PeerEntry& e, const Store::MergeResult& r) {
  if (r.entry == nullptr) return;
  Version carried{e.ts_us, e.origin};
  if (!r.applied && carried < r.previous) note_superseded(r.entry, carried);
  for (std::uint32_t i = 0; i < e.stands_count; ++i) {
    Version older{e.stands[i].second, e.stands[i].first};
    if (older < carried) note_superseded(r.entry, older);
  }
}

void GossipEngine::anti_entropy_round(std::vector<OutMessage>& out) {
  std::fill(digest_answers_.begin(), digest_answers_.end(), 0);
  if (peer_count() == 0) return;
  auto pick = static_cast<std::uint32_t>(rng_() % peer_count()) + 1;
  send_digest(pick >= me_ ? pick + 1 : pick, out);
}

void GossipEngine::send_digest(std::uint32_t peer, std::vector<OutMessage>& out,
                               std::int64_t resend_since_us) {
  begin("digest");
  writer_.Key("fl");
  writer_.Int64(own_floor_);
  floor_written_ = true;
  // What this node truly holds: for an origin whose chain skipped to its floor, the writes
  // up to where the chain stood (before_floor_) and the current life's up to wm, as "bf"
  // (the answer sends the earlier life's entries between the two). Past the cap, the claim
  // stays whole, as before split claims: claiming only the first part would have every answer
  // send those origins' current lives again, for good (a split is rarely made whole).
  writer_.Key("wm");
  writer_.StartArray();
  bool any_split = false;
  for (std::uint32_t o = 0; o < wm_.size(); ++o) {
    writer_.Int64(o == me_ ? own_held_ : wm_[o]);
    any_split |= o != me_ && before_floor_[o] != INT64_MAX;
  }
  writer_.EndArray();
  if (any_split) {
    writer_.Key("bf");
    writer_.StartArray();
    std::size_t room = kBeforeFloorClaimsMax;
    for (std::uint32_t o = 1; o < wm_.size() && room > 0; ++o) {
      if (o == me_ || before_floor_[o] == INT64_MAX) continue;
      write_ints(writer_, {o, before_floor_[o], floor_[o]});
      --room;
    }
    writer_.EndArray();
  }
  // How far this life's own writes go: a peer whose chain for me is behind it asks back, so
  // a write whose push was lost spreads even if it was my last (wm claims only own_held_).
  if (wm_[me_] > own_floor_) {
    writer_.Key("ow");
    writer_.Int64(wm_[me_]);
  }
  write_acks_for(peer, true);
  if (resend_since_us != kNoResend) write_acks_held_since(peer, resend_since_us);
  send(peer, kDigest, out);
}

// "ra" again: how far this node's watermarks grew (held steps) and the other reports it sent
// (recent acks), for every origin but `except`, as far as held since since_us. Written when a
// gap in the relay's pushes shows that messages were lost: in a partition, those this node
// sent the relay went the same way. Newest first per origin; the held steps of every origin
// before any recent acknowledgement (at most 32 per origin, they cover the most), and each
// pass starts at the next origin, so that a cap reached leaves out different origins each time.
void GossipEngine::write_acks_held_since(std::uint32_t except, std::int64_t since_us) {
  writer_.Key("ra");
  writer_.StartArray();
  std::size_t room = kRelayAcksOutMax;
  auto n = static_cast<std::uint32_t>(ids_.size());
  std::uint32_t start = resend_start_++ % n;
  for (const auto* lists : {&held_steps_, &recent_acks_}) {
    for (std::uint32_t i = 0; i < n && room > 0; ++i) {
      std::uint32_t o = 1 + (start + i) % n;
      if (o == except || o == me_) continue;
      const Ring<AckSpan>& spans = (*lists)[o];
      for (auto a = spans.rbegin(); a != spans.rend() && room > 0 && a->owed_at() >= since_us; ++a) {
        write_ints(writer_, {o, a->lo, a->hi, a->at_us});
        --room;
      }
    }
  }
  writer_.EndArray();
}

// A relay keeps what it forwarded to each origin for a while (forwarded_).
bool GossipEngine::remember_forwarded(const RelayAck& a, std::int64_t now_us) {
  std::int64_t cutoff_us = now_us - recent_acks_kept_us();
  forget_forwarded_before(a.origin, cutoff_us);
  if (!forwarded_keys_.insert(key_of(a)).second) return false;  // one lookup per report
  if (forwarded_keys_.size() > kForwardedTotalMax) {
    // Other origins' reports age out only when they are touched: sweep them all (O(N), when
    // full, at most once an ack delay). Still full: forwarded without being kept (no dedupe,
    // no replay for it).
    if (now_us - forwarded_swept_us_ >= config_.ack_delay_max_ms * 1000) {
      forwarded_swept_us_ = now_us;
      for (std::uint32_t o = 1; o < forwarded_.size(); ++o) forget_forwarded_before(o, cutoff_us);
    }
    if (forwarded_keys_.size() > kForwardedTotalMax) {
      forwarded_keys_.erase(key_of(a));
      return true;
    }
  }
  Ring<Forwarded>& kept = forwarded_[a.origin];
  kept.push_back({a, now_us});
  if (kept.size() > kForwardedKeptMax) {
    forwarded_keys_.erase(key_of(kept.front().ack));
    kept.pop_front();
  }
  return true;
}

void GossipEngine::drop_relayed_steps(std::uint32_t origin) {
  auto step = [origin](const RelayAck& a) { return a.origin == origin && a.hi - a.lo != 1; };
  relay_acks_.erase(std::remove_if(relay_acks_.begin(), relay_acks_.end(), step), relay_acks_.end());
  if (origin >= forwarded_.size()) return;
  Ring<Forwarded>& kept = forwarded_[origin];
  for (const Forwarded& f : kept) {
    if (step(f.ack)) forwarded_keys_.erase(key_of(f.ack));
  }
  kept.erase(std::remove_if(kept.begin(), kept.end(), [&step](const Forwarded& f) { return step(f.ack); }),
             kept.end());
}

void GossipEngine::forget_forwarded_before(std::uint32_t origin, std::int64_t cutoff_us) {
  Ring<Forwarded>& kept = forwarded_[origin];
  while (!kept.empty() && kept.front().forwarded_us < cutoff_us) {
    forwarded_keys_.erase(key_of(kept.front().ack));
    kept.pop_front();
  }
}

// Sends the peer every entry it lacks by its watermarks, and the watermarks it may take.
// Returns whether the answer was cut at the byte cap.
// Only a complete answer vouches for anything: "you now hold every write of o up to my
// watermark, or a newer version of its key" rests on every newer version having gone too, and
// a newer version of one origin's write may be any origin's entry, one of those the byte cap
// left out, or a newer version of this node's own still on its way from a worker (unindexed_).
// Such an answer sends entries (each acknowledged on its own) and vouches for nothing.
bool GossipEngine::answer_digest(std::uint32_t peer, const std::vector<std::int64_t>& their_wm,
                                 std::int64_t now_us, std::vector<OutMessage>& out) {
  // The asker's split claims (bf): it holds origin o's writes up to held and above fl.
  for (const PeerBeforeFloor& b : msg_.before_floor) {
    if (b.origin == peer || b.origin >= wm_.size()) continue;
    if (b.held < split_held_[b.origin]) {
      split_held_[b.origin] = b.held;
      split_floor_[b.origin] = b.floor;
    }
  }
  // A whole claim past the floor of an origin this node knows had an earlier life: the asker
  // may never have seen that life (it took the floor for the first: see learn_floor).
  // Answered as a split claim holding nothing of it; the answer's bf tells the asker how far
  // it now holds it.
  for (std::uint32_t o = 1; o < wm_.size(); ++o) {
    if (o != peer && split_held_[o] == INT64_MAX && knows_earlier_[o] != 0 &&
        their_wm[o] >= floor_[o]) {
      split_held_[o] = 0;
      split_floor_[o] = floor_[o];
    }
  }
  begin("gossip");
  writer_.Key("e");
  writer_.StartArray();
  bool truncated = false;
  std::size_t sent = 0;
  using At = ByIndexedTs::At;
  auto send_range = [&](auto from, auto end) {
    for (auto it = from; it != end; ++it) {
      if (buf_.GetSize() >= config_.batch_bytes_max) return false;
      write_entry(writer_, **it);
      ++sent;
    }
    return true;
  };
  for (std::uint32_t o = 1; o < wm_.size() && !truncated; ++o) {
    const auto& idx = by_origin_[o];
    // Entries above their watermark: an entry at exactly it is held there already. Of the
    // asker's own, only those of an earlier life (at or below its floor): it holds its writes
    // since it started.
    // (With lives overlapping in time, the earlier life's may lie above the floor, up to
    // where this node's chain stood: overlap_top_.)
    std::int64_t own_top = std::max(floor_[o], overlap_top_[o]);
    auto from = their_wm[o] == INT64_MAX ? idx.end() : idx.lower_bound(At{their_wm[o] + 1});
    auto end = o == peer ? idx.lower_bound(At{own_top + 1}) : idx.end();
    if (o == peer && their_wm[o] >= own_top) from = end;
    // A split claim: also the earlier life's writes between the two parts.
    if (split_held_[o] != INT64_MAX) {
      std::int64_t top = std::min(split_floor_[o], their_wm[o]);
      if (top > split_held_[o]) {
        truncated = !send_range(idx.lower_bound(At{split_held_[o] + 1}),
                                idx.lower_bound(At{top + 1}));
      }
    }
    if (!truncated) truncated = !send_range(from, end);
  }
  // Writes in the asker's ranges that a newer version of their key replaced here: the entry
  // goes again listing them (report_older_writes), up to kStandsForMax a copy, as room is
  // left; a cut here cuts nothing the answer vouches for. In key order: the same bytes on
  // every run.
  replaced_.clear();
  for (std::uint32_t o = 1; o < wm_.size() && !truncated; ++o) {
    if (o == peer || their_wm[o] == INT64_MAX) continue;
    const auto& replaced = superseded_[o];
    for (auto it = std::lower_bound(replaced.begin(), replaced.end(), SupersededItem{their_wm[o] + 1, nullptr});
         it != replaced.end() && it->first <= wm_[o]; ++it) {
      replaced_.push_back({Store::key_of(*it->second), it->second, Version{it->first, o}});
    }
  }
  std::sort(replaced_.begin(), replaced_.end(), [](const Replaced& a, const Replaced& b) {
    return std::tie(a.key, a.older) < std::tie(b.key, b.older);
  });
  std::array<Version, peer_wire::kStandsForMax> listed{};
  for (std::size_t i = 0; i < replaced_.size() && !truncated;) {
    if (buf_.GetSize() >= config_.batch_bytes_max) break;
    const Entry* entry = replaced_[i].entry;
    std::size_t n = 0;
    for (; i < replaced_.size() && replaced_[i].entry == entry && n < listed.size(); ++i) {
      listed[n++] = replaced_[i].older;
    }
    Version current = store_.load(*entry, &scratch_);
    write_loaded_entry(writer_, *entry, current, listed.data(), n);
    ++sent;
  }
  writer_.EndArray();
  if (truncated) answers_cut_.fetch_add(1, std::memory_order_relaxed);
  bool vouch = !truncated && unindexed_.empty();
  writer_.Key("wm");
  writer_.StartArray();
  // Entries past this node's own watermark came by pushes beyond a gap: they are sent, but
  // the gap is not vouched for.
  for (std::uint32_t o = 0; o < wm_.size(); ++o) {
    // Not across a floor the asker has not learned: it would acknowledge the earlier life's
    // writes. (The asker's own: it learns where it stands.)
    bool behind_floor = their_wm[o] < floor_[o] && o != peer;
    // My own writes: every one above the asker's watermark went (behind_floor keeps a claim
    // from reaching into an earlier life of mine the asker has not skipped).
    std::int64_t give = wm_[o];
    // The asker's own earlier life: only as far as this node truly holds it.
    if (o == peer) give = std::min({give, floor_[o], before_floor_[o]});
    writer_.Int64(!vouch || o == 0 || behind_floor ? 0 : give);
  }
  writer_.EndArray();
  writer_.Key("af");  // which life of the asker this answers
  writer_.Int64(msg_.has_floor ? msg_.floor : 0);
  // Split claims: how far the asker now holds the earlier life, as far as this node does
  // (within the decoder's bound; an origin left out is only not moved on).
  bool any_split = false;
  std::size_t echo_room = kBeforeFloorClaimsMax;
  for (std::uint32_t o = 1; o < wm_.size(); ++o) {
    if (split_held_[o] == INT64_MAX) continue;
    if (vouch && echo_room > 0) {
      --echo_room;
      if (!any_split) {
        writer_.Key("bf");
        writer_.StartArray();
        any_split = true;
      }
      std::int64_t held_here = o == me_ ? own_held_ : std::min(wm_[o], before_floor_[o]);
      std::int64_t fl = split_floor_[o];
      write_ints(writer_, {o, std::max(split_held_[o], std::min(held_here, fl)), fl});
    }
    split_held_[o] = INT64_MAX;  // leaves the scratch clean
  }
  if (any_split) writer_.EndArray();
  write_acks_for(peer, true);
  if (is_relay_ && !forwarded_.empty() && !forwarded_[peer].empty()) {
    // What this relay forwarded to the asker lately: asking, it may have missed a round.
    forget_forwarded_before(peer, now_us - recent_acks_kept_us());
    const Ring<Forwarded>& kept = forwarded_[peer];
    writer_.Key("r");
    writer_.StartObject();
    writer_.Key("fa");
    writer_.StartArray();
    for (const Forwarded& f : kept) {
      write_ints(writer_, {f.ack.acker, f.ack.origin, f.ack.lo, f.ack.hi, f.ack.at_us});
    }
    writer_.EndArray();
    writer_.EndObject();
  }
  send(peer, kGossip, out);
  deltas_sent_.fetch_add(sent, std::memory_order_relaxed);
  return truncated;
}

// An answer to a split claim: it sent the origin's earlier-life writes above the first part,
// as far as its sender holds them; the first part grows that far, and once it reaches the
// floor the claim is whole again.
void GossipEngine::take_split_answer() {
  for (const PeerBeforeFloor& b : msg_.before_floor) {
    std::uint32_t o = b.origin;
    if (o == me_ || o >= wm_.size()) continue;
    std::int64_t held = std::min(b.held, b.floor);
    if (before_floor_[o] == INT64_MAX) {
      // This node claimed it whole, and the answerer knows of an earlier life: split.
      if (held < floor_[o]) {
        before_floor_[o] = held;
        knows_earlier_[o] = 1;
      }
      continue;
    }
    if (held >= floor_[o] && knows_earlier_[o] != 0) continue;  // see knows_earlier_
    before_floor_[o] = std::max(before_floor_[o], held);
    if (before_floor_[o] >= floor_[o]) before_floor_[o] = INT64_MAX;
  }
}

// ---- content anti-entropy: the safety net ---------------------------------------------------

void GossipEngine::count_sent(const std::vector<OutMessage>& out, std::size_t first,
                              PeerMsgKind kind) {
  if (kind == kSync) {
    const ContentSync::Stats& cs = sync_->stats();
    sync_rounds_.store(cs.rounds, std::memory_order_relaxed);
    sync_entries_sent_.store(cs.entries_sent, std::memory_order_relaxed);
    sync_entries_applied_.store(cs.entries_applied, std::memory_order_relaxed);
    sync_capped_.store(cs.capped, std::memory_order_relaxed);
  }
  for (std::size_t i = first; i < out.size(); ++i) {
    msgs_sent_[kind].fetch_add(1, std::memory_order_relaxed);
    bytes_sent_.fetch_add(out[i].body.size(), std::memory_order_relaxed);
    bytes_sent_by_[kind].fetch_add(out[i].body.size(), std::memory_order_relaxed);
  }
}

void GossipEngine::sync_round(std::int64_t now_us, std::vector<OutMessage>& out) {
  (void)now_us;
  std::fill(sync_answers_.begin(), sync_answers_.end(), 0);
  std::size_t first = out.size();
  sync_->start_round(sync_->pick_peer(rng_()), out);
  count_sent(out, first, kSync);
}

// Entries taken by content sync are acknowledged one by one to their origin, like entries a
// relay forwards: this replica holds them from now on.
void GossipEngine::on_sync_message(std::uint32_t peer, std::string_view body,
                                   std::int64_t now_us, std::vector<OutMessage>& out) {
  if (sync_ == nullptr) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (sync_answers_[peer] >= kSyncAnswersMax) {
    // Refused unanswered; still counted as malformed when it is no sync message at all (any
    // unknown type comes here), so the malformed count does not depend on the budget.
    sync::Message m;
    sync::DecodeLimits bounds{static_cast<std::uint32_t>(ids_.size()), now_us + limits::kVersionAheadMaxUs};
    bool valid = sync::decode(body, bounds, &m).empty();
    (valid ? sync_throttled_ : malformed_).fetch_add(1, std::memory_order_relaxed);
    return;
  }
  ++sync_answers_[peer];
  std::size_t first = out.size();
  auto applied = [&](const Store::MergeResult& r, std::string_view, Version v) {
    on_taken(r, v, now_us);
    if (v.origin != me_) owe_ack(v.origin, {v.ts_us - 1, v.ts_us, now_us});
  };
  if (sync_->on_message(peer, body, now_us, out, applied) == ContentSync::Outcome::kMalformed) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
  }
  count_sent(out, first, kSync);
}

}  // namespace gossip_kv
