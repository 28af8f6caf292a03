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
    std::deque<AckSpan>& owed = owed_acks_[o];
    std::size_t n = std::min(room, owed.size());
    for (std::size_t i = 0; i < n; ++i) write_ints(writer_, {o, owed[i].lo, owed[i].hi, owed[i].at_us});
    owed.erase(owed.begin(), owed.begin() + static_cast<std::ptrdiff_t>(n));
    room -= n;
  }
  writer_.EndArray();
}

bool GossipEngine::owes_acks_older_than(std::int64_t cutoff_us) const {
  for (const auto& owed : owed_acks_) {
    if (!owed.empty() && owed.front().at_us < cutoff_us) return true;
  }
  return false;
}

void GossipEngine::send_due_acks(std::int64_t now_us, std::vector<OutMessage>& out) {
  std::int64_t delay_us = config_.ack_delay_max_ms * 1000;
  for (std::deque<AckSpan>& recent : recent_acks_) {
    while (!recent.empty() && now_us - recent.front().at_us > recent_acks_kept_us()) {
      recent.pop_front();
    }
  }
  // My oldest unacknowledged write: acknowledgements for it may have been lost, so ask each
  // silent peer with a digest; its reply re-sends how far it holds my writes.
  // Four times the delay: a report may wait a delay at the replica and another at a relay.
  // (Twice fired routinely at 25 nodes with relays: 5 more messages per operation.)
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
    if (now_us - owed_acks_[p].front().at_us < delay_us) continue;
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
  std::deque<AckSpan>& owed = owed_acks_[peer];
  const std::deque<AckSpan>& held = held_steps_[peer];
  const std::deque<AckSpan>& recent = recent_acks_[peer];
  if (owed.empty() && !(resend_held && (!held.empty() || !recent.empty()))) return;
  writer_.Key("a");
  writer_.StartArray();
  for (const AckSpan& a : owed) write_ints(writer_, {a.lo, a.hi, a.at_us});
  if (resend_held) {
    for (const AckSpan& a : held) write_ints(writer_, {a.lo, a.hi, a.at_us});
    for (const AckSpan& a : recent) write_ints(writer_, {a.lo, a.hi, a.at_us});
  }
  writer_.EndArray();
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
  std::deque<AckSpan>& owed = owed_acks_[origin];
  owed.push_back(span);
  if (owed.size() > kAckSpansMax) owed.pop_front();  // the held steps re-sent on digests cover it
  if (!remember) return;
  std::deque<AckSpan>& recent = recent_acks_[origin];
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
  for (auto it = first; it != unconverged_.end() && it->ts_us <= span.hi; ++it) {
    if (ack_work_left_ == 0) break;  // this message has had its share of work
    --ack_work_left_;
    std::int64_t& reach = it->reach_us[peer];
    if (reach != 0) {  // spans overlap (duplicates, re-sent prefixes): keep the earliest
      reach = std::min(reach, span.at_us);
      continue;
    }
    reach = std::max<std::int64_t>(span.at_us, 1);
    if (++it->reached == peer_count()) {
      it->complete_us = now_us;
      ++converged_in_deque_;
    }
  }
  finalize(now_us, false);
}

void GossipEngine::finalize(std::int64_t now_us, bool full_scan) {
  std::int64_t grace_us =
      std::min(2 * config_.ack_delay_max_ms, kConvergenceGraceMaxMs) * 1000;
  auto settle = [&](Unconverged& u) {
    if (u.recorded || u.complete_us == 0 || now_us - u.complete_us < grace_us) return;
    std::int64_t last = u.taken_us;
    for (std::size_t p = 1; p < u.reach_us.size(); ++p) last = std::max(last, u.reach_us[p]);
    record_convergence(ms_between(u.taken_us, last));
    u.recorded = true;
  };
  if (full_scan) {
    for (Unconverged& u : unconverged_) settle(u);
  }
  while (!unconverged_.empty()) {
    settle(unconverged_.front());
    if (!unconverged_.front().recorded) break;
    unconverged_.pop_front();
    --converged_in_deque_;
  }
  pending_count_.store(unconverged_.size() - converged_in_deque_, std::memory_order_relaxed);
}

void GossipEngine::record_convergence(std::int64_t ms) {
  MutexLock lock(stats_mu_);
  convergence_.add(ms);
}

}  // namespace gossip_kv
