// Convergence measurement: acknowledgements owed to each origin and sent (with pushes, digests
// or on their own), and the origin's side: a write is converged once every peer reported it,
// and its figure is taken after a grace period.
#include "replication/gossip_engine.h"

#include <algorithm>

#include "replication/wire.h"

namespace gossip_kv {

// "ra": [[origin, lo, hi, at_us], ...]: acknowledgements for other origins, for the relay to
// forward.
void GossipEngine::write_acks_for_others(std::uint32_t except) {
  writer_.Key("ra");
  writer_.StartArray();
  std::size_t room = kRelayAcksOutMax;  // the rest waits for the next message
  for (std::uint32_t o = 1; o < owed_acks_.size() && room > 0; ++o) {
    if (o == except) continue;
    Ring<AckSpan>& owed = owed_acks_[o];
    std::size_t n = std::min(room, owed.size());
    for (std::size_t i = 0; i < n; ++i) write_ints(writer_, {o, owed[i].lo, owed[i].hi, owed[i].at_us});
    carries_reports_ |= n > 0;
    owed.erase(owed.begin(), owed.begin() + static_cast<std::ptrdiff_t>(n));
    room -= n;
  }
  writer_.EndArray();
}

bool GossipEngine::owes_acks_older_than(std::int64_t cutoff_us) const {
  for (const auto& owed : owed_acks_) {
    if (!owed.empty() && owed.front().owed_at() < cutoff_us) return true;
  }
  return false;
}

void GossipEngine::send_due_acks(std::int64_t now_us, std::vector<OutMessage>& out) {
  std::int64_t delay_us = config_.ack_delay_max_ms * 1000;
  for (Ring<AckSpan>& recent : recent_acks_) {
    while (!recent.empty() && now_us - recent.front().owed_at() > recent_acks_kept_us()) {
      recent.pop_front();
    }
  }
  // My oldest unacknowledged write: acknowledgements for it may have been lost, so ask each
  // silent peer with a digest; its reply re-sends how far it holds my writes.
  // Four times the delay: a report may wait a delay at the replica and another at a relay.
  // (Twice fired routinely at 25 nodes with relays: 5 more messages per operation. Asking
  // about each of the 64 oldest waiting writes cost fast's 25-node partition run 1 more; a
  // report lost on a newer write is found by its number instead: ask_on_report_gaps.)
  if (!unconverged_.empty() && now_us - unconverged_.front().taken_us > 4 * delay_us) {
    const Unconverged& oldest = unconverged_.front();
    for (std::uint32_t p = 1; p <= ids_.size(); ++p) {
      if (p == me_ || oldest.reach_us[p] != 0 || now_us - last_repair_us_[p] < 4 * delay_us) {
        continue;
      }
      last_repair_us_[p] = now_us;
      send_digest(p, out);
    }
  }
  if (hub_ != 0) {  // everything goes by way of the relay
    if (!owes_acks_older_than(now_us - delay_us)) return;
    begin("ack");
    write_acks_for(hub_, false);
    write_acks_for_others(hub_);
    send(hub_, kAck, out);
    last_sent_to_us_[hub_] = now_us;
    return;
  }
  for (std::uint32_t p = 1; p <= ids_.size(); ++p) {
    if (p == me_ || owed_acks_[p].empty()) continue;
    if (now_us - owed_acks_[p].front().owed_at() < delay_us) continue;
    begin("ack");
    write_acks_for(p, false);
    send(p, kAck, out);
    last_sent_to_us_[p] = now_us;
  }
}

// "a": [[lo, hi, at_us], ...]: spans of the recipient's writes this node holds, and since when.
// With resend_held, also how the watermark for the recipient grew (held_steps_): the answer to
// an origin that asks again because acknowledgements were lost.
void GossipEngine::write_acks_for(std::uint32_t peer, bool resend_held) {
  Ring<AckSpan>& owed = owed_acks_[peer];
  const Ring<AckSpan>& held = held_steps_[peer];
  const Ring<AckSpan>& recent = recent_acks_[peer];
  if (owed.empty() && !(resend_held && (!held.empty() || !recent.empty()))) return;
  writer_.Key("a");
  writer_.StartArray();
  for (const AckSpan& a : owed) write_ints(writer_, {a.lo, a.hi, a.at_us});
  carries_reports_ |= !owed.empty();
  reports_for_recipient_ |= !owed.empty();
  if (resend_held) {
    for (const AckSpan& a : held) write_ints(writer_, {a.lo, a.hi, a.at_us});
    for (const AckSpan& a : recent) write_ints(writer_, {a.lo, a.hi, a.at_us});
  }
  writer_.EndArray();
  // Which life of the recipient they are about: the spans owed or kept for an earlier life
  // were dropped when a newer one was learned (learn_floor; a first floor clips them at it
  // instead, so they may reach into a life this node never knew where two overlap).
  if (floor_[peer] != 0) {
    writer_.Key("al");
    writer_.Int64(floor_[peer]);
  }
  // With a relay, reports go by way of it, and stay owed until they do: a direct message
  // (a digest, an answer) crosses a link the relay's may not, and nothing re-sends a report
  // lost on it before the origin asks every silent replica.
  if (hub_ == 0 || peer == hub_) owed.clear();
}

void GossipEngine::owe_ack(std::uint32_t origin, const AckSpan& given, bool remember) {
  if (origin == me_ || origin == 0 || origin > ids_.size()) return;
  AckSpan span = given;
  span.lo = std::max(span.lo, floor_[origin]);  // nothing of an earlier life
  if (span.hi <= span.lo) return;
  Ring<AckSpan>& owed = owed_acks_[origin];
  owed.push_back(span);
  if (owed.size() > kAckSpansMax) owed.pop_front();  // the held steps re-sent on digests cover it
  if (!remember) return;
  Ring<AckSpan>& recent = recent_acks_[origin];
  recent.push_back(span);
  if (recent.size() > kRecentAcksMax) recent.pop_front();
}

void GossipEngine::on_ack(std::uint32_t peer, const AckSpan& span, std::int64_t now_us) {
  auto first = std::upper_bound(unconverged_.begin(), unconverged_.end(), span.lo,
                                [](std::int64_t ts, const Unconverged& u) { return ts < u.ts_us; });
  if (peer == me_ || peer == 0 || peer > ids_.size()) return;
  // A report from the peer's earlier life (a relay's replay, a late round): that store is
  // gone, and what it held is not held now.
  if (span.at_us <= floor_[peer]) return;
  // A span reaching below my floor may be about an earlier life of mine (a peer that has not
  // learned my new floor yet, reporting that life's chain), and where two lives overlap in
  // time it does not say it holds my writes of this one: not taken. Spans of a peer that knows
  // my floor begin at or above it (owe_ack clips). A true one can reach below it too: a peer
  // that raised its chain of me from an answer before it knew any floor of mine reports
  // (0, x]. That report waits for my re-ask (a digest to a silent peer, after 4 ack delays),
  // which teaches it the floor; its answer re-sends the step clipped (never early, sometimes
  // late).
  if (span.lo < own_floor_) return;
  auto credit = [&](Unconverged& u) {
    std::int64_t& reach = u.reach_us[peer];
    if (reach != 0 && reach <= floor_[peer]) {  // an earlier life's, not swept yet
      forget_report(u, peer);
    }
    if (reach != 0) {  // spans overlap (duplicates, re-sent prefixes): keep the earliest
      // An earlier report (a lost one re-sent) while the figure waits for proof of life: the
      // figure kept from the end of the grace period is taken again, from this one.
      if (span.at_us < reach && !u.recorded) u.held_everywhere_us = 0;
      reach = std::min(reach, span.at_us);
      return;
    }
    reach = std::max<std::int64_t>(span.at_us, 1);
    if (++u.reached == peer_count()) {
      u.complete_us = now_us;
      ++converged_in_deque_;
    }
  };
  auto it = first;
  for (; it != unconverged_.end() && it->ts_us <= span.hi; ++it) {
    if (ack_work_left_ == 0) break;  // this message has had its share of work
    --ack_work_left_;
    credit(*it);
  }
  // A report on one write says the peer holds a version of its key at least as new since then:
  // so it holds my older writes of that key too. Those may never be reported on their own
  // (an entry lists at most kStandsForMax older writes, and a relay's entry of a hot key
  // stands for more), and their chain's report comes when the chain arrives, after the peer
  // took a newer version of the key (its own write, another origin's): late. (Never early:
  // since it held the newer one, it held the older.)
  if (span.hi - span.lo == 1 && it != first && std::prev(it)->ts_us == span.hi) {
    const Entry* key = std::prev(it)->entry;
    auto of_key = unconverged_of_key_.find(key);
    std::uint32_t others = of_key == unconverged_of_key_.end() ? 0 : of_key->second - 1;
    auto older = std::prev(it);
    for (std::size_t scanned = 0; others > 0 && older != unconverged_.begin() && scanned < kSameKeyScanMax;
         ++scanned) {
      if (same_key_work_left_ == 0) break;
      --same_key_work_left_;
      --older;
      if (older->entry != key) continue;
      credit(*older);
      --others;
    }
  }
  finalize(now_us, false);
}

void GossipEngine::finalize(std::int64_t now_us, bool full_scan) {
  const std::int64_t grace_us = convergence_grace_us();
  auto settle = [&](Unconverged& u) {
    if (u.recorded || u.complete_us == 0 || now_us - u.complete_us < grace_us) return;
    // The figure as it stands now, kept while proof of life is awaited: the clocks' offsets
    // move on meanwhile, and a later estimate is no truer.
    if (u.held_everywhere_us == 0) u.held_everywhere_us = held_everywhere_us(u, now_us);
    fill_proof_bounds(now_us);
    if (!lives_proven(u, nullptr)) return;
    record_convergence(u.ts_us, ms_between(u.taken_us, u.held_everywhere_us));
    u.recorded = true;
  };
  if (full_scan) {
    finish_floor_sweeps();
    for (Unconverged& u : unconverged_) settle(u);
  }
  while (!unconverged_.empty()) {
    settle(unconverged_.front());
    if (!unconverged_.front().recorded) break;
    pop_unconverged();
    --converged_in_deque_;
  }
  pending_count_.store(unconverged_.size() - converged_in_deque_, std::memory_order_relaxed);
}

std::int64_t GossipEngine::held_everywhere_us(const Unconverged& u, std::int64_t now_us) const {
  // Each report is in its replica's clock: into mine, as far as the offsets are known.
  std::int64_t last = u.taken_us;
  for (std::size_t p = 1; p < u.reach_us.size(); ++p) {
    if (u.reach_us[p] == 0) continue;
    last = std::max(last, u.reach_us[p] + offsets_.offset(static_cast<std::uint32_t>(p), now_us));
  }
  return last;
}

void GossipEngine::forget_report(Unconverged& u, std::uint32_t peer) {
  u.reach_us[peer] = 0;
  --u.reached;
  if (u.complete_us == 0) return;
  u.complete_us = 0;
  u.held_everywhere_us = 0;
  --converged_in_deque_;
  for (std::uint32_t p = 1; p < u.reach_us.size(); ++p) {  // kept: at or below the floor
    if (u.reach_us[p] != 0 && u.reach_us[p] <= floor_[p]) {
      u.reach_us[p] = 0;
      --u.reached;
    }
  }
}

void GossipEngine::finish_floor_sweeps() {
  for (std::uint32_t p = 1; p < floor_sweep_from_.size(); ++p) {
    if (floor_sweep_from_[p] == INT64_MAX) continue;
    auto first = std::lower_bound(unconverged_.begin(), unconverged_.end(), floor_sweep_from_[p],
                                  [](const Unconverged& u, std::int64_t ts) { return u.ts_us < ts; });
    for (auto it = first; it != unconverged_.end(); ++it) {
      // Of an earlier life by its time (a report above the floor may be the new life's, taken
      // since; the overlap of two lives is left to the message's own sweep).
      if (it->reach_us[p] != 0 && it->reach_us[p] <= floor_[p] && !it->recorded) forget_report(*it, p);
    }
    floor_sweep_from_[p] = INT64_MAX;
  }
}

void GossipEngine::fill_proof_bounds(std::int64_t now_us) {
  // Once per moment: on_ack settles after every span, and the front may wait for proof for
  // seconds (the offsets change only with take_clock_samples, which forgets these).
  if (now_us == proof_bounds_us_) return;
  proof_bounds_us_ = now_us;
  proof_lo_.resize(ids_.size() + 1);
  proof_hi_.resize(ids_.size() + 1);
  proof_known_.resize(ids_.size() + 1);
  for (std::uint32_t p = 1; p <= ids_.size(); ++p) {
    proof_known_[p] = offsets_.bounds(p, now_us, &proof_lo_[p], &proof_hi_[p]) ? 1 : 0;
  }
}

bool GossipEngine::lives_proven(const Unconverged& u, std::uint32_t* unproven) const {
  // The latest time, in my clock, each replica may have come to hold it: its report, at the
  // far end of its clock's offset interval. The largest two: a replica's proof is compared
  // with the others'.
  std::int64_t first = u.taken_us, second = u.taken_us;
  std::uint32_t first_peer = me_;
  for (std::uint32_t p = 1; p < u.reach_us.size(); ++p) {
    if (u.reach_us[p] == 0) continue;
    // A clock of unknown offset could be off by any skew: no proof until it is known (the
    // origin asks, and the answer gives an interval), nor while a restart's sweep is pending.
    if (proof_known_[p] == 0 || floor_sweep_from_[p] != INT64_MAX) {
      if (unproven != nullptr) *unproven = static_cast<std::uint32_t>(p);
      return false;
    }
    std::int64_t t = u.reach_us[p] + proof_hi_[p];
    if (t > first) {
      second = first;
      first = t;
      first_peer = p;
    } else {
      second = std::max(second, t);
    }
  }
  for (std::uint32_t p = 1; p < u.reach_us.size(); ++p) {
    std::int64_t reach = u.reach_us[p];
    // A report kept from an earlier life was kept for that proof (learn_floor).
    if (reach == 0 || reach <= floor_[p]) continue;
    std::int64_t alive = alive_us_[p];
    std::int64_t others = p == first_peer ? second : first;
    // Its own report in its own clock; everyone else's across clocks, at their latest against
    // its earliest.
    if (alive != 0 && alive >= reach && alive + proof_lo_[p] >= others) {
      continue;
    }
    if (unproven != nullptr) *unproven = p;
    return false;
  }
  return true;
}

void GossipEngine::ask_for_proof_of_life(std::int64_t now_us, std::vector<OutMessage>& out) {
  const std::int64_t grace_us = convergence_grace_us();
  std::size_t looked = 0, passed = 0;
  fill_proof_bounds(now_us);
  for (const Unconverged& u : unconverged_) {
    if (looked == kProofScanMax || ++passed > kProofPassMax) break;
    if (u.recorded || u.complete_us == 0 || now_us - u.complete_us < grace_us) continue;
    ++looked;
    std::uint32_t p = 0;
    if (lives_proven(u, &p)) continue;
    if (p == 0 || p == me_) continue;
    // Not while the replica's messages still come (the proof is on its way), nor before its
    // heartbeat could have come (send_heartbeats); a partition that cuts it off asks again only
    // as often. (At a quiet time of one acknowledgement delay, twice it sent frugal's 25-node
    // partition run a third more digests than four times.)
    // A clock of unknown offset is asked at once (its answer gives the interval).
    std::int64_t wait_us = 2 * quiet_us();
    bool silent = now_us - heard_us_[p] >= wait_us || proof_known_[p] == 0;
    if (!silent || now_us - last_life_probe_us_[p] < wait_us) continue;
    last_life_probe_us_[p] = now_us;
    send_digest(p, out);
  }
}

void GossipEngine::note_report_seq(std::uint32_t peer, std::int64_t n, std::int64_t now_us) {
  if (peer == 0 || peer == me_ || peer >= report_seq_.size()) return;
  ReportSeq& q = report_seq_[peer];
  q.highest = std::max(q.highest, n);
  if (n < q.next) return;  // a duplicate, or one a gap's ask settled
  if (n - q.next < 64) q.above |= std::uint64_t{1} << (n - q.next);
  while ((q.above & 1) != 0) {
    q.above >>= 1;
    ++q.next;
  }
  bool gap = q.above != 0 || q.highest >= q.next;
  if (!gap) {
    q.gap_since_us = 0;
  } else if (q.gap_since_us == 0) {
    q.gap_since_us = now_us;
  }
}

void GossipEngine::ask_on_report_gaps(std::int64_t now_us, std::vector<OutMessage>& out) {
  const std::int64_t delay_us = config_.ack_delay_max_ms * 1000;
  for (std::uint32_t p = 1; p < report_seq_.size(); ++p) {
    const ReportSeq& q = report_seq_[p];
    // A quarter of a delay (one acknowledgement check) for a reordered message to fill it;
    // and not within a delay of any digest to the peer (this one's, a four-delay ask, a gap
    // repair): its answer re-sends the same reports. The gap stays open until a message that
    // re-sends them comes (settle_report_gap), so a lost or refused answer is asked again.
    if (q.gap_since_us == 0 || now_us - q.gap_since_us < delay_us / 4) continue;
    if (now_us - last_repair_us_[p] < delay_us) continue;
    last_repair_us_[p] = now_us;
    send_digest(p, out);
  }
}

void GossipEngine::settle_report_gap(std::uint32_t peer) {
  if (peer == 0 || peer == me_ || peer >= report_seq_.size()) return;
  ReportSeq& q = report_seq_[peer];
  q = ReportSeq{q.highest + 1, 0, q.highest, 0};
}

void GossipEngine::send_heartbeats(std::int64_t now_us, std::vector<OutMessage>& out) {
  for (std::uint32_t p = 1; p <= ids_.size(); ++p) {
    if (heartbeat_owed_[p] == 0 || now_us - last_message_to_us_[p] < quiet_us()) continue;
    heartbeat_owed_[p] = 0;
    begin("ack");
    send(p, kAck, out);
  }
}

void GossipEngine::hear_life(std::uint32_t peer, std::int64_t floor, std::int64_t sent_at) {
  if (peer == 0 || peer >= heard_lives_.size() || peer == me_) return;
  HeardLife& h = heard_lives_[peer];
  if (floor < h.floor || (floor == h.floor && sent_at <= h.sent_at)) return;
  h = {floor, sent_at};
  if (life_changed_[peer] != 0) return;
  life_changed_[peer] = 1;
  lives_changed_.push_back(peer);
}

void GossipEngine::note_alive(std::uint32_t origin, std::int64_t floor, std::int64_t at_us,
                              std::int64_t now_us) {
  // (A floor of 0 names a life only where none is known, an engine started at time 0 in a
  // test; learn_floor keeps no report on such a proof.)
  if (origin == 0 || origin >= alive_us_.size() || floor != floor_[origin]) return;
  if (at_us <= alive_us_[origin]) return;
  alive_us_[origin] = at_us;
  heard_us_[origin] = now_us;
}

void GossipEngine::record_held(const Entry* e, Version v, std::int64_t now_us) {
  if (e == nullptr) return;
  auto& recs = held_recs_[e];
  if (!recs.empty() && !(recs.back().v < v)) return;  // held since earlier (deltas reorder)
  recs.push_back({v, now_us});
  if (recs.size() > kHeldRecsPerEntryMax) recs.erase(recs.begin());
  held_order_.emplace_back(e, now_us);
  while (held_order_.size() > kHeldRecsMax) {
    auto [old, at_us] = held_order_.front();
    held_order_.pop_front();
    auto it = held_recs_.find(old);
    if (it == held_recs_.end()) continue;
    auto& list = it->second;
    auto keep = std::find_if(list.begin(), list.end(),
                             [at_us = at_us](const HeldRec& r) { return r.at_us > at_us; });
    list.erase(list.begin(), keep);
    if (list.empty()) held_recs_.erase(it);
  }
}

std::pair<std::int64_t, bool> GossipEngine::held_since(const Entry* e, Version v) const {
  auto it = held_recs_.find(e);
  if (it == held_recs_.end()) return {INT64_MAX, false};
  // Versions only grow here: held at one as new as v means held at v or newer ever since.
  for (const HeldRec& r : it->second) {
    if (!(r.v < v)) return {r.at_us, r.v == v};
  }
  return {INT64_MAX, false};
}

// An entry stands for its own version's write and for the older writes it lists. This node
// has held each of them, or a newer version of its key, since it first held a version at
// least as new (kept by record_held for recent versions). Reported to the write's origin as
// the one-write span (ts - 1, ts]: an origin's writes have distinct timestamps. Not reported:
// the entry's own write when this node held that very version before (it was reported when it
// came), an older write it held as itself, and what the chain of this message reports now.
void GossipEngine::report_older_writes(const PeerEntry& e, const Store::MergeResult& r,
                                       std::uint32_t peer, std::int64_t now_us) {
  if (r.entry == nullptr) return;
  Version carried{e.ts_us, e.origin};
  if (!r.applied && carried < r.previous && e.origin != 0) {
    auto [since, exact] = held_since(r.entry, carried);
    if (!exact && since < now_us) owe_ack(e.origin, {e.ts_us - 1, e.ts_us, since, now_us});
  }
  for (std::uint32_t i = 0; i < e.stands_count; ++i) {
    Version older{e.stands[i].second, e.stands[i].first};
    if (!(older < carried)) continue;  // it does not stand for that
    auto [since, exact] = held_since(r.entry, older);
    if (exact || since == INT64_MAX) continue;
    if (since == now_us && msg_.has_chain && older.origin == peer) continue;
    owe_ack(older.origin, {older.ts_us - 1, older.ts_us, since, now_us});
  }
}

void GossipEngine::record_convergence(std::int64_t ts_us, std::int64_t ms) {
  MutexLock lock(stats_mu_);
  convergence_.add(ms);
  if (figures_.size() == kFiguresKept) {
    figures_.pop_front();
    ++figures_dropped_;
  }
  figures_.push_back({ts_us, ms});
}

}  // namespace gossip_kv
