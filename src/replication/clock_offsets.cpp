// ClockOffsets: clock offsets from message send times (clock_offsets.h).
#include "replication/clock_offsets.h"

#include <algorithm>
#include <cstdlib>

namespace gossip_kv {

namespace {
std::int64_t clamp_offset(std::int64_t v) {
  return std::clamp(v, -ClockOffsets::kOffsetMaxUs, ClockOffsets::kOffsetMaxUs);
}
}  // namespace

bool ClockOffsets::WindowedMin::add(std::int64_t v, std::int64_t now_us) {
  bool rotated = true;
  if (window_start_us == INT64_MIN || now_us - window_start_us >= 2 * kWindowUs) {
    current = previous = INT64_MAX;
    window_start_us = now_us;
  } else if (now_us - window_start_us >= kWindowUs) {
    previous = current;
    current = INT64_MAX;
    window_start_us = now_us;
  } else {
    rotated = false;
  }
  if (!rotated && v >= current) return false;
  current = std::min(current, v);
  return true;
}

std::int64_t ClockOffsets::WindowedMin::get(std::int64_t now_us) const {
  if (window_start_us == INT64_MIN || now_us - window_start_us >= 2 * kWindowUs) return kUnknown;
  std::int64_t prev = now_us - window_start_us >= kWindowUs ? INT64_MAX : previous;
  std::int64_t m = std::min(current, prev);
  return m == INT64_MAX ? kUnknown : m;
}

ClockOffsets::ClockOffsets(std::size_t peer_count, std::uint32_t relay)
    : peers_(peer_count + 1), relay_(relay < peer_count + 1 ? relay : 0) {}

void ClockOffsets::on_message(std::uint32_t peer, std::int64_t sent_us, std::int64_t now_us) {
  if (peer == 0 || peer >= peers_.size()) return;
  // Minima settle within a few messages: most messages change nothing, and leave the cached
  // spread alone (recomputing it is a pass over every peer).
  spread_dirty_ |= peers_[peer].seen.add(clamp_offset(now_us - sent_us), now_us);
}

void ClockOffsets::on_told(std::uint32_t peer, std::int64_t min_us) {
  if (peer == 0 || peer >= peers_.size()) return;
  std::int64_t told = clamp_offset(min_us);
  spread_dirty_ |= peers_[peer].told != told;
  peers_[peer].told = told;
}

void ClockOffsets::on_relay_table(std::uint32_t relay, const std::vector<Published>& table) {
  if (relay == 0 || relay != relay_) return;
  for (const Published& p : table) {
    if (p.node == 0 || p.node >= peers_.size() || p.node == relay) continue;
    peers_[p.node].relayed = {true, clamp_offset(p.mid), std::clamp<std::int64_t>(p.half_width, 0, kOffsetMaxUs)};
  }
  spread_dirty_ = true;
}

std::int64_t ClockOffsets::seen_min(std::uint32_t peer, std::int64_t now_us) const {
  if (peer == 0 || peer >= peers_.size()) return kUnknown;
  return peers_[peer].seen.get(now_us);
}

// o, my clock minus the peer's, lies within [-told, seen]. An empty interval (seen < -told)
// comes from a stepped clock or a lie: unknown, so that it neither moves a figure nor lends
// its false certainty to certain_spread or a relay's table.
ClockOffsets::Interval ClockOffsets::direct(std::uint32_t peer, std::int64_t now_us) const {
  const Peer& p = peers_[peer];
  std::int64_t seen = p.seen.get(now_us);
  if (seen == kUnknown || p.told == kUnknown || seen < -p.told) return {};
  return {true, seen / 2 - p.told / 2, seen / 2 + p.told / 2};
}

// The direct interval or the one composed through the relay, whichever is narrower (both hold
// the offset: a few direct samples, from a digest say, can be far wider than the relay's).
ClockOffsets::Interval ClockOffsets::interval(std::uint32_t peer, std::int64_t now_us) const {
  Interval d = direct(peer, now_us);
  if (relay_ == 0 || peer == relay_ || !peers_[peer].relayed.known) return d;
  Interval to_relay = direct(relay_, now_us);
  if (!to_relay.known) return d;
  const Interval& r = peers_[peer].relayed;  // mine - peer's = (mine - relay's) + (relay's - peer's)
  Interval composed{true, to_relay.mid + r.mid, to_relay.half_width + r.half_width};
  return d.known && d.half_width <= composed.half_width ? d : composed;
}

std::int64_t ClockOffsets::certain_spread(std::int64_t now_us) const {
  if (!spread_dirty_ && now_us - spread_at_us_ < kWindowUs / 8) return spread_us_;
  std::int64_t m = 0;
  for (std::uint32_t q = 1; q < peers_.size(); ++q) {
    Interval i = interval(q, now_us);
    if (i.known) m = std::max(m, std::abs(i.mid) - i.half_width);
  }
  spread_us_ = m;
  spread_at_us_ = now_us;
  spread_dirty_ = false;
  return m;
}

std::int64_t ClockOffsets::offset(std::uint32_t peer, std::int64_t now_us) const {
  if (peer == 0 || peer >= peers_.size()) return 0;
  Interval i = interval(peer, now_us);
  if (!i.known) return 0;
  // The middle, when its error (at most the half-width) is within the largest offset known
  // for certain among all peers: never worse than the skew the cluster is known to have (in a
  // cluster whose clocks agree that is 0, and nothing moves). Else the bound nearer 0, which
  // never overshoots (0 when the interval holds 0).
  if (i.half_width <= certain_spread(now_us)) return clamp_offset(i.mid);
  if (std::abs(i.mid) <= i.half_width) return 0;
  return clamp_offset(i.mid > 0 ? i.mid - i.half_width : i.mid + i.half_width);
}

std::int64_t ClockOffsets::error_bound(std::uint32_t peer, std::int64_t now_us) const {
  if (peer == 0 || peer >= peers_.size()) return kOffsetMaxUs;
  Interval i = interval(peer, now_us);
  if (!i.known) return kOffsetMaxUs;
  return std::min(2 * i.half_width, kOffsetMaxUs);
}

bool ClockOffsets::bounds(std::uint32_t peer, std::int64_t now_us, std::int64_t* lo,
                          std::int64_t* hi) const {
  Interval i = peer == 0 || peer >= peers_.size() ? Interval{} : interval(peer, now_us);
  if (!i.known) {
    *lo = *hi = offset(peer, now_us);
    return false;
  }
  *lo = clamp_offset(i.mid - i.half_width);
  *hi = clamp_offset(i.mid + i.half_width);
  return true;
}

void ClockOffsets::table(std::int64_t now_us, std::size_t start, std::size_t max_items,
                         std::vector<Published>* out) const {
  out->clear();
  std::size_t n = peers_.size() - 1;
  for (std::size_t i = 0; i < n && out->size() < max_items; ++i) {
    auto peer = static_cast<std::uint32_t>(1 + (start + i) % n);
    Interval d = direct(peer, now_us);
    if (d.known) out->push_back({peer, clamp_offset(d.mid), std::min(d.half_width, kOffsetMaxUs)});
  }
}

}  // namespace gossip_kv
