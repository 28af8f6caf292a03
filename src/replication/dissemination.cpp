// Dissemination: the push round (to every peer, or to this node's relay, which forwards what
// it gathered) and the chain of pushes that raises an origin's watermark.
#include "replication/gossip_engine.h"

#include "gossip_kv/limits.h"

#include <algorithm>
#include <cstdlib>
#include <tuple>

#include "replication/wire.h"

namespace gossip_kv {

void GossipEngine::push_round(std::int64_t now_us, std::vector<OutMessage>& out) {
  bool relaying = is_relay_ && (!relay_spans_.empty() || !relay_acks_.empty() || lives_due_);
  bool probing = find_silent_peers(now_us);
  if ((pending_.empty() && !relaying && !probing) || peer_count() == 0) {
    pending_.clear();  // frees its array beyond 127 slots (absl)
    // A burst's backlog left push_round's scratch at up to kPendingHeldMax entries (18 MiB):
    // nothing is pending now, so it goes back too.
    if (order_.capacity() > kScratchKeptMax) std::vector<Ordered>().swap(order_);
    if (carried_own_.capacity() > kScratchKeptMax) std::vector<CarriedOwn>().swap(carried_own_);
    for (rapidjson::StringBuffer* b : {&push_entries_, &push_relayed_}) {
      if (b->stack_.GetCapacity() <= kPushBufferKeptBytes) continue;
      b->Clear();
      b->ShrinkToFit();  // empty: frees it
    }
    return;
  }
  // The chain: this push covers every write of mine in (from, to], and carries each of them
  // that is still its key's newest version (or a newer version of its key): a span is
  // self-contained, so it vouches for nothing an earlier, possibly lost message carried.
  // `to` starts at the safe own watermark (nothing of mine above it is known to be here) and
  // comes down below any write of mine left out of this message.
  std::int64_t to = wm_[me_];
  rapidjson::StringBuffer& entries = push_entries_;
  entries.Clear();
  Writer& ew = push_entries_writer_;
  ew.Reset(entries);
  ew.StartArray();
  std::size_t sent = 0;
  bool truncated = false;
  bool relayed_left = false;  // an entry a relay forwards did not fit
  carried_own_.clear();
  held_back_count_ = 0;
  // Oldest writes of mine first (entries a relay forwards before them): a push cut at the
  // byte cap then covers what it carried, up to the first write it left out.
  order_.clear();
  for (const auto& [entry, p] : pending_) {
    // What a relay forwards, then other entries of none of mine (an entry a relay passes on
    // for the older writes it stands for: no chain covers it), then mine.
    std::int64_t sort_us = p.relayed                       ? INT64_MIN
                           : p.oldest_own_us == INT64_MAX ? INT64_MIN + 1
                                                          : p.oldest_own_us;
    order_.push_back({sort_us, p, entry});
  }
  std::sort(order_.begin(), order_.end(), [](const Ordered& a, const Ordered& b) {
    return std::tie(a.sort_us, a.delta.newest, a.entry) < std::tie(b.sort_us, b.delta.newest, b.entry);
  });
  held_back_min_ts_ = INT64_MAX;  // over what stays pending
  for (const Ordered& o : order_) {
    std::int64_t oldest_own = o.delta.oldest_own_us;
    bool relayed = o.delta.relayed;
    if (entries.GetSize() >= config_.batch_bytes_max) {  // the rest goes with the next push
      truncated = true;
      relayed_left |= relayed;
      if (oldest_own != INT64_MAX) to = std::min(to, oldest_own - 1);
      held_back_min_ts_ = std::min(held_back_min_ts_, oldest_own);
      continue;
    }
    if (oldest_own != INT64_MAX && oldest_own > to && !relayed) {  // above the span: it waits
      ++held_back_count_;
      held_back_min_ts_ = std::min(held_back_min_ts_, oldest_own);
      continue;
    }
    // The key's newest version goes, even when it is a write of mine above the span (a key
    // written again while the push was due): it stands for the older writes the span covers,
    // and it goes again with the push whose span covers it (carried_own_, below). Holding it
    // back instead would hold the span below it for as long as the key keeps being written.
    Version current = store_.load(*o.entry, &scratch_);
    // The value is in scratch_; the writes the entry stands for that it does not carry as
    // itself are listed with it (report_older_writes).
    write_loaded_entry(ew, *o.entry, current, o.delta.stands.data(), o.delta.stands_count);
    std::int64_t newest_own = o.delta.newest_own_us;
    if (current.origin == me_) {
      oldest_own = std::min(oldest_own, current.ts_us);
      newest_own = std::max(newest_own, current.ts_us);
    }
    if (newest_own != INT64_MIN) carried_own_.push_back({o.entry, current, oldest_own, newest_own});
    ++sent;
    pending_.erase(o.entry);
  }
  ew.EndArray();
  // An entry carried for writes of mine above the final `to` (it came down after the entry
  // went, or the entry went for a relay or at a newer version of another origin's) goes again
  // with the push whose span covers those writes: no span relies on an earlier message.
  for (const CarriedOwn& c : carried_own_) {
    if (c.newest_own_us <= to) continue;
    auto [slot, inserted] = pending_.try_emplace(c.entry, PendingDelta{c.version});
    PendingDelta& p = slot->second;
    if (!inserted) p.newest = std::max(p.newest, c.version);
    p.oldest_own_us = std::min(p.oldest_own_us, std::max(c.oldest_own_us, to + 1));
    p.newest_own_us = std::max(p.newest_own_us, c.newest_own_us);
    p.stand_for({c.newest_own_us, me_});
    held_back_min_ts_ = std::min(held_back_min_ts_, p.oldest_own_us);
  }
  backlog_ = truncated;
  // What a relay forwards is the same for every peer: render it once. Chains go only when
  // every entry they cover went too.
  rapidjson::StringBuffer& relayed = push_relayed_;
  relayed.Clear();
  if (relaying) {
    Writer& rw = push_relayed_writer_;
    rw.Reset(relayed);
    rw.StartObject();
    if (relayed_left) {
      // Some entries of these spans went with this message, the rest waits: no later message
      // carries them all, so the spans are dropped (receivers see a gap and ask). (Relayed
      // entries go first: a cut that leaves out only this node's own keeps them.)
      relay_spans_dropped_.fetch_add(relay_spans_.size(), std::memory_order_relaxed);
      relay_spans_.clear();
    } else if (!relay_spans_.empty()) {
      rw.Key("sp");
      rw.StartArray();
      for (const RelaySpan& r : relay_spans_) write_ints(rw, {r.origin, r.from, r.to, r.floor});
      rw.EndArray();
      relay_spans_.clear();
    }
    rw.Key("fa");
    rw.StartArray();
    // One message's worth; the rest waits for the next round (after a partition heals, every
    // replica cut off re-sends its reports at once).
    std::size_t n = std::min(relay_acks_.size(), kRelayAcksMax);
    for (std::size_t i = 0; i < n; ++i) {
      const RelayAck& a = relay_acks_[i];
      write_ints(rw, {a.acker, a.origin, a.lo, a.hi, a.at_us});
    }
    rw.EndArray();
    // Proofs of life: the newest message from each node heard from since the last round.
    if (!lives_changed_.empty()) {
      rw.Key("lv");
      rw.StartArray();
      std::size_t lives = std::min(lives_changed_.size(), peer_wire::kWireCaps.relay_lives);
      for (std::size_t i = 0; i < lives; ++i) {
        std::uint32_t node = lives_changed_[i];
        write_ints(rw, {node, heard_lives_[node].floor, heard_lives_[node].sent_at});
        life_changed_[node] = 0;
      }
      rw.EndArray();
      lives_changed_.erase(lives_changed_.begin(), lives_changed_.begin() + static_cast<std::ptrdiff_t>(lives));
    }
    lives_due_ = lives_due_ && !lives_changed_.empty();
    rw.EndObject();
    relay_acks_.erase(relay_acks_.begin(), relay_acks_.begin() + static_cast<std::ptrdiff_t>(n));
  }
  // A relay's clock intervals for the nodes it exchanges messages with: a node behind the
  // relay exchanges few with the others, and composes these with its own for the relay
  // (clock_offsets.h). Sent when they change by 1 ms or more, and every 5 s.
  absl::Span<const ClockOffsets::Published> clock_table;
  if (relaying) clock_table = clock_table_due(now_us);
  for (std::uint32_t p = 1; p <= ids_.size(); ++p) {
    if (p == me_ || (hub_ != 0 && p != hub_)) continue;
    bool probe = silent_[p] != 0;
    if (sent == 0 && !relaying && to <= sent_wm_[p] && owed_acks_[p].empty() && !probe) continue;  // news: none
    begin("gossip");
    writer_.Key("from");
    writer_.Int64(std::min(sent_wm_[p], to));  // an empty span rather than a reversed one
    writer_.Key("to");
    writer_.Int64(to);
    writer_.Key("fl");
    writer_.Int64(own_floor_);
    floor_written_ = true;
    writer_.Key("e");
    writer_.RawValue(entries.GetString(), entries.GetSize(), rapidjson::kArrayType);
    if (relaying) {
      writer_.Key("r");
      writer_.RawValue(relayed.GetString(), relayed.GetSize(), rapidjson::kObjectType);
      if (!clock_table.empty()) {
        writer_.Key("co");
        writer_.StartArray();
        for (const auto& c : clock_table) write_ints(writer_, {c.node, c.mid, c.half_width});
        writer_.EndArray();
      }
    }
    write_acks_for(p, false);
    if (hub_ != 0) write_acks_for_others(p);
    send(p, kGossip, out);
    sent_wm_[p] = std::max(sent_wm_[p], to);
    last_sent_to_us_[p] = now_us;
    last_push_us_[p] = now_us;
    deltas_sent_.fetch_add(sent, std::memory_order_relaxed);
  }
}

// A relay's clock table, when due: changed by a millisecond or more since it last went, or
// kClockTablePeriodUs old (a node that missed it, or started since, gets it again). A table
// longer than the wire cap goes in turns, one a round, until all of it went.
absl::Span<const ClockOffsets::Published> GossipEngine::clock_table_due(std::int64_t now_us) {
  if (table_sent_ == 0) {  // not amid a table: is one due?
    std::vector<ClockOffsets::Published>& table = table_scratch_;
    offsets_.table(now_us, 0, ids_.size(), &table);
    auto moved = [](const ClockOffsets::Published& a, const ClockOffsets::Published& b) {
      return a.node != b.node || std::abs(a.mid - b.mid) >= 1'000 || std::abs(a.half_width - b.half_width) >= 1'000;
    };
    bool changed = table.size() != published_.size();
    for (std::size_t i = 0; i < table.size() && !changed; ++i) changed = moved(table[i], published_[i]);
    if (table.empty() || (!changed && now_us - published_at_us_ < kClockTablePeriodUs)) return {};
    published_.swap(table);  // both keep their room
    published_at_us_ = now_us;
  }
  std::size_t n = std::min(published_.size() - table_sent_, peer_wire::kWireCaps.clock_offsets);
  absl::Span<const ClockOffsets::Published> turn(published_.data() + table_sent_, n);
  table_sent_ += n;
  if (table_sent_ >= published_.size()) table_sent_ = 0;
  return turn;
}

// Peers that have not reported my newest write older than a probe interval, pushed nothing
// since, get a push with nothing new this round (a probe): its chain's `from` shows a peer
// whose copy of an earlier push was lost that it has a gap, and it asks at once (on_span).
// A later push shows an older gap just as well, so only that write is looked at, and only
// links without a push for as long (a node that keeps writing pushes anyway): at most one probe
// per peer per interval. With a relay, the relay is probed when it lacks the write, or when
// any peer lacks it twice as long (their reports come through the relay, later): the relay
// forwards the probe's chain. Without probes, a lost push of a node's last writes was found
// only by a peer's anti-entropy round, the re-asks of 4 ack delays, or content sync.
// unconverged_ is in timestamp order; taken times follow it within a worker batch.
const GossipEngine::Unconverged* GossipEngine::newest_unconverged_before(std::int64_t before_us) const {
  auto past = std::upper_bound(unconverged_.begin(), unconverged_.end(), before_us,
                               [](std::int64_t t, const Unconverged& u) { return t < u.taken_us; });
  if (past == unconverged_.begin() || std::prev(past)->complete_us != 0) return nullptr;
  return &*std::prev(past);
}

bool GossipEngine::find_silent_peers(std::int64_t now_us) {
  std::fill(silent_.begin(), silent_.end(), 0);
  // A round that pushes new writes shows every peer its gap (the chain's `from`) for free; the
  // early probe waits for one up to early_probe_after_us(), and goes only if none came.
  if (!pending_.empty()) probe_early_ = false;
  bool early = probe_early_ && now_us >= early_probe_at_us_;
  if (early) probe_early_ = false;
  std::int64_t after_us = early ? early_probe_after_us() : probe_after_us();
  // Early, only peers silent as long (cut off like the one that spoke), and that one.
  auto cut_off = [&](std::uint32_t p) {
    return !early || p == early_probe_peer_ || now_us - last_heard_us_[p] >= after_us;
  };
  bool any = false;
  auto probe = [&](std::uint32_t to) {
    if (now_us - last_push_us_[to] < after_us) return;
    silent_[to] = 1;
    any = true;
  };
  const Unconverged* u = newest_unconverged_before(now_us - after_us);
  if (u == nullptr) return false;
  if (hub_ != 0) {
    const Unconverged* older = newest_unconverged_before(now_us - 2 * after_us);
    if (u->reach_us[hub_] == 0 || (older != nullptr && older->reached < peer_count())) probe(hub_);
    return any;
  }
  for (std::uint32_t p = 1; p <= ids_.size(); ++p) {
    if (p != me_ && u->reach_us[p] == 0 && cut_off(p)) probe(p);
  }
  return any;
}

void GossipEngine::check_lost_push(std::uint32_t peer, std::int64_t now_us) {
  std::int64_t silent_us = now_us - last_heard_us_[peer];
  last_heard_us_[peer] = now_us;
  if (hub_ != 0 || silent_us < early_probe_after_us() || now_us < early_probe_at_us_) return;
  const Unconverged* u = newest_unconverged_before(now_us - early_probe_after_us());
  if (u == nullptr || u->reach_us[peer] != 0 || now_us - last_push_us_[peer] < early_probe_after_us()) return;
  probe_early_ = true;
  early_probe_at_us_ = now_us + early_probe_after_us();
  early_probe_peer_ = peer;
}

void GossipEngine::raise_watermark(std::uint32_t origin, std::int64_t wm, std::int64_t now_us) {
  // Never this node's own: only the runtime knows which of its writes were handed over
  // (on_local_watermark); a peer's claim about them is at best stale, at worst forged.
  // A claim far ahead (a forged one passed the decoder's window) goes no further than half the
  // window past this node's clock: re-sent in acknowledgements, it must still pass the window
  // of a peer whose clock runs behind, or that peer would reject every message carrying it.
  wm = std::min(wm, now_us + limits::kVersionAheadMaxUs / 2);
  if (origin == 0 || origin == me_ || origin > ids_.size() || wm <= wm_[origin]) return;
  extend_chain(origin, wm_[origin], wm, now_us);
}

// The chain reaches wm, then grows through the early spans that now touch it; what it gained
// above held_from is held from now on: acknowledged, and kept as a held step. (Early spans
// joining here were acknowledged when they came; the earliest report counts at the origin.)
void GossipEngine::extend_chain(std::uint32_t origin, std::int64_t held_from, std::int64_t wm,
                                std::int64_t now_us) {
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
  if (top <= held_from) return;
  owe_ack(origin, {held_from, top, now_us}, /*remember=*/false);
  record_held_step(origin, held_from, top, now_us);
}

void GossipEngine::learn_floor(std::uint32_t origin, std::int64_t floor, std::int64_t now_us) {
  if (origin == 0 || origin == me_ || origin > ids_.size() || floor <= floor_[origin]) return;
  // A forged floor far ahead goes no further than a forged watermark (raise_watermark).
  floor = std::min(floor, now_us + limits::kVersionAheadMaxUs / 2);
  if (floor <= floor_[origin]) return;
  bool first_heard = floor_[origin] == 0 && wm_[origin] == 0;
  bool earlier_life_known = floor_[origin] != 0;
  floor_[origin] = floor;
  // Report numbers count per pair of lives: its new one numbers its reports to me from 1,
  // and mine to it start again (about the life it now has, "al").
  report_seq_[origin] = ReportSeq{};
  report_msgs_sent_[origin] = 0;
  // Of the earlier life: its messages named it (a floor of 0 proves nothing here).
  std::int64_t alive_us = earlier_life_known ? alive_us_[origin] : 0;
  alive_us_[origin] = 0;
  // What this node said it holds of the earlier life is no longer said: nothing below the
  // floor is acknowledged (owe_ack clips), re-sent, or kept waiting. When a life was known,
  // everything said so far was about it: a life's chains carry its floor, which is learned
  // first. That holds above the new floor too, where two lives overlap in time (a clock
  // behind at the restart, or one run ahead before it): a report on the earlier life's
  // writes there would count for the new life's.
  auto clip = [floor, earlier_life_known](Ring<AckSpan>& spans) {
    for (auto it = spans.begin(); it != spans.end();) {
      if (earlier_life_known || it->hi <= floor) {
        it = spans.erase(it);
      } else {
        it->lo = std::max(it->lo, floor);
        ++it;
      }
    }
  };
  clip(owed_acks_[origin]);
  clip(held_steps_[origin]);
  clip(recent_acks_[origin]);
  // A relay's reports for the origin, from replicas that may not have learned the floor: a
  // step of their chain of the earlier life would count for the new life's writes where the
  // lives overlap in time (the origin would drop it only when it reaches below its floor). A
  // report on one version is true whichever life wrote it, and stays.
  if (is_relay_ && earlier_life_known) drop_relayed_steps(origin);
  auto& spans = spans_[origin];
  spans.erase(std::remove_if(spans.begin(), spans.end(),
                             [floor, earlier_life_known](const auto& sp) {
                               return earlier_life_known || sp.second <= floor;
                             }),
              spans.end());
  // A chain above the floor stood in the new life's range, where it holds none of the new
  // life's writes: it holds every write up to the floor (the earlier life's up there, the
  // new life has none), so it goes back to it.
  if (wm_[origin] > floor) overlap_top_[origin] = std::max(overlap_top_[origin], wm_[origin]);
  wm_[origin] = std::min(wm_[origin], floor);
  // Its reports on my writes came from a store it no longer has. A write every replica had
  // reported holding still counts when the earlier life was alive after the last of them held
  // it: it was everywhere at once then (its figure waits out the grace period, which may have
  // begun before the restart). The times are compared across clocks with the offsets' error
  // bounds against the keep: a wrong keep would make the figure early by seconds. Any other
  // write waits for the new life, and so do the reports of other peers' earlier lives kept
  // for it before: they held only while the write was complete. (Charged to the message's
  // acknowledgement work, a unit per peer for a comparison: a hostile peer repeating floors
  // gets no more than that.)
  std::int64_t alive_mine = INT64_MIN, errors_us = 0;
  if (alive_us != 0) {
    alive_mine = alive_us + offsets_.offset(origin, now_us) - offsets_.error_bound(origin, now_us);
    for (std::uint32_t p = 1; p <= ids_.size(); ++p) {
      if (p != me_) errors_us = std::max(errors_us, offsets_.error_bound(p, now_us));
    }
  }
  // Every report of the origin taken so far is of an earlier life when one was known (the
  // floor is learned before a message's reports: on_peer_message), above the new floor too
  // where two lives overlap in time. Where the message's work runs out, the rest waits for
  // finish_floor_sweeps (the next acknowledgement check), and lives_proven counts none of the
  // origin's reports meanwhile: a report left in place would pass for the new life's.
  const std::size_t per_peer = peer_count() + 1;
  floor_sweep_from_[origin] = INT64_MAX;
  for (Unconverged& u : unconverged_) {
    if (ack_work_left_ < per_peer) {
      floor_sweep_from_[origin] = u.ts_us;
      break;
    }
    --ack_work_left_;
    std::int64_t& reach = u.reach_us[origin];
    if (reach == 0 || (!earlier_life_known && reach > floor) || u.recorded) continue;
    ack_work_left_ -= per_peer - 1;
    if (u.complete_us != 0 && held_everywhere_us(u, now_us) + errors_us <= alive_mine) continue;
    forget_report(u, origin);
  }
  // The chain skips to the floor (unacknowledged: the earlier life's writes are content
  // sync's), then takes the early spans that now touch it.
  // A first floor heard of, with no chain yet: if the origin's life began about when this
  // node's did, or later, this node would have heard of an earlier one (the cluster started
  // together), so it is taken as the origin's first life (nothing below it). Else the origin's
  // life began before this node's (this node restarted after it): an earlier life may exist
  // that this node never saw, and it claims none of it (split, held 0) until answers bring it.
  // (Splitting every first floor would be truthful too, but a split is rarely made whole: see
  // before_floor_.)
  if (!first_heard) knows_earlier_[origin] = 1;
  if (wm_[origin] < floor) {
    if (!first_heard || floor < own_floor_ - kStartSpreadUs) {
      before_floor_[origin] = std::min(before_floor_[origin], wm_[origin]);
    }
    extend_chain(origin, floor, floor, now_us);
  }
}

void GossipEngine::record_held_step(std::uint32_t origin, std::int64_t lo, std::int64_t hi,
                                    std::int64_t now_us) {
  Ring<AckSpan>& steps = held_steps_[origin];
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
  // Ahead of a push still on its way (reordering) or lost. A span is self-contained (its push
  // carried every write it covers, push_round): held from now on, so acknowledged now; kept
  // to join the chain when the gap closes.
  owe_ack(origin, {from, to, now_us});
  auto& spans = spans_[origin];
  if (spans.size() >= kSpansMax) spans.erase(spans.begin());
  spans.emplace_back(from, to);
  std::uint32_t ask = hub_ != 0 ? hub_ : origin;  // who can fill the gap with one message
  if (now_us - last_repair_us_[ask] >= repair_backoff_us()) {
    // Ask at once for what is missing instead of waiting for the next anti-entropy round.
    last_repair_us_[ask] = now_us;
    if (ask != hub_) return send_digest(ask, out);
    // The relay's rounds were lost: in a partition, so were this node's reports to the
    // relay, which the digest carries again, as many as the origins could still ask about
    // (the relay forwards only those it has not forwarded already).
    send_digest(ask, out, now_us - recent_acks_kept_us());
  }
}

}  // namespace gossip_kv
