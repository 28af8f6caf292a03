// Dissemination: the push round (to every peer, or to this node's relay, which forwards what
// it gathered) and the chain of pushes that raises an origin's watermark.
#include "replication/gossip_engine.h"

#include "gossip_kv/limits.h"

#include <algorithm>

#include "replication/wire.h"

namespace gossip_kv {

void GossipEngine::push_round(std::int64_t now_us, std::vector<OutMessage>& out) {
  bool relaying = is_relay_ && (!relay_spans_.empty() || !relay_acks_.empty());
  if ((pending_.empty() && !relaying) || peer_count() == 0) {
    pending_.clear();
    return;
  }
  rapidjson::StringBuffer entries;
  Writer ew(entries);
  ew.StartArray();
  std::int64_t first_unsent_own = INT64_MAX;
  std::size_t sent = 0;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (entries.GetSize() >= config_.batch_bytes_max) {
      if (it->second.origin == me_) first_unsent_own = std::min(first_unsent_own, it->second.ts_us);
      ++it;
      continue;
    }
    write_entry(ew, *it->first);  // the newest version, whatever is pending
    ++sent;
    pending_.erase(it++);
  }
  ew.EndArray();
  bool truncated = !pending_.empty();
  // What a relay forwards is the same for every peer: render it once. Chains go only when
  // every entry they cover went too.
  rapidjson::StringBuffer relayed;
  if (relaying) {
    Writer rw(relayed);
    rw.StartObject();
    if (!truncated && !relay_spans_.empty()) {
      rw.Key("sp");
      rw.StartArray();
      for (const RelaySpan& r : relay_spans_) write_ints(rw, {r.origin, r.from, r.to});
      rw.EndArray();
      relay_spans_.clear();
    }
    rw.Key("fa");
    rw.StartArray();
    for (const RelayAck& a : relay_acks_) write_ints(rw, {a.acker, a.origin, a.lo, a.hi, a.at_us});
    rw.EndArray();
    rw.EndObject();
    relay_acks_.clear();
  }
  // The chain: this push covers every write of mine up to `to` not covered by earlier ones.
  // Never past the safe own watermark: a push cut at the byte cap must not vouch for writes
  // still on their way from the workers either.
  std::int64_t to = first_unsent_own == INT64_MAX ? wm_[me_]
                                                  : std::min(wm_[me_], first_unsent_own - 1);
  for (std::uint32_t p = 1; p <= ids_.size(); ++p) {
    if (p == me_ || (hub_ != 0 && p != hub_)) continue;
    begin("gossip");
    writer_.Key("from");
    writer_.Int64(std::min(sent_wm_[p], to));  // an empty span rather than a reversed one
    writer_.Key("to");
    writer_.Int64(to);
    writer_.Key("e");
    writer_.RawValue(entries.GetString(), entries.GetSize(), rapidjson::kArrayType);
    if (relaying) {
      writer_.Key("r");
      writer_.RawValue(relayed.GetString(), relayed.GetSize(), rapidjson::kObjectType);
    }
    write_acks_for(p, false);
    if (hub_ != 0) write_acks_for_others(p);
    send(p, kGossip, out);
    sent_wm_[p] = std::max(sent_wm_[p], to);
    last_sent_to_us_[p] = now_us;
    deltas_sent_.fetch_add(sent, std::memory_order_relaxed);
  }
}

void GossipEngine::raise_watermark(std::uint32_t origin, std::int64_t wm, std::int64_t now_us) {
  // Never this node's own: only the runtime knows which of its writes were handed over
  // (on_local_watermark); a peer's claim about them is at best stale, at worst forged.
  // A claim far ahead (a forged one passed the decoder's window) goes no further than half the
  // window past this node's clock: re-sent in acknowledgements, it must still pass the window
  // of a peer whose clock runs behind, or that peer would reject every message carrying it.
  wm = std::min(wm, now_us + limits::kVersionAheadMaxUs / 2);
  if (origin == 0 || origin == me_ || origin > ids_.size() || wm <= wm_[origin]) return;
  std::int64_t before = wm_[origin];
  // The chain reaches wm, then grows through the early spans that now touch it.
  auto& spans = spans_[origin];
  std::sort(spans.begin(), spans.end());
  std::int64_t top = wm;
  for (auto it = spans.begin(); it != spans.end();) {
    if (it->first > top) {
      ++it;
      continue;
    }
    top = std::max(top, it->second);
    it = spans.erase(it);
  }
  wm_[origin] = top;
  // Held from now on, and not before: an early span's push may have relied on entries an
  // earlier, lost push carried (a push carries entries above its own span when the safe
  // watermark lags), so it vouches for nothing until the chain reaches it.
  owe_ack(origin, {before, top, now_us});
  record_held_step(origin, before, top, now_us);
}

void GossipEngine::record_held_step(std::uint32_t origin, std::int64_t lo, std::int64_t hi,
                                    std::int64_t now_us) {
  std::deque<AckSpan>& steps = held_steps_[origin];
  steps.push_back({lo, hi, now_us});
  if (steps.size() > kHeldStepsMax) {
    AckSpan merged{steps[0].lo, steps[1].hi, std::max(steps[0].at_us, steps[1].at_us)};
    steps.pop_front();
    steps.front() = merged;
  }
}

// A push span of origin's writes, (from, to], arrived with all its entries: acknowledge it,
// extend the chain, or keep it until the chain reaches it.
void GossipEngine::on_span(std::uint32_t origin, std::int64_t from, std::int64_t to,
                           std::int64_t now_us, std::vector<OutMessage>& out) {
  if (origin == 0 || origin > ids_.size() || origin == me_) return;
  if (wm_[origin] >= from) {  // contiguous: held from now on (raise_watermark acknowledges)
    raise_watermark(origin, to, now_us);
    return;
  }
  // Ahead of a push still on its way (reordering) or lost: keep the span, it joins the chain
  // when the gap closes.
  auto& spans = spans_[origin];
  if (spans.size() >= kSpansMax) spans.erase(spans.begin());
  spans.emplace_back(from, to);
  std::uint32_t ask = hub_ != 0 ? hub_ : origin;  // who can fill the gap with one message
  if (now_us - last_repair_us_[ask] >= repair_backoff_us()) {
    // Ask at once for what is missing instead of waiting for the next anti-entropy round.
    last_repair_us_[ask] = now_us;
    send_digest(ask, out);
  }
}

}  // namespace gossip_kv
