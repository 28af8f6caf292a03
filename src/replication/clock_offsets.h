// ClockOffsets: how far each peer's clock is from this node's, estimated from the send times
// peers put on their messages, so that convergence figures built from several clocks (a
// replica reports when it held a write, in its own clock) come out in one.
//
// The estimate (the NTP idea, with minima instead of single round trips): for a peer p,
//   seen = min over p's messages of (my receive time - p's send time)  = o + d(p->me)
//   told = min over my messages of (p's receive time - my send time)    = -o + d(me->p)
// where o is my clock minus p's and d are one-way delays, never negative. p tells me its
// minimum on its messages ("mo"). Then o lies within [-told, seen]; its middle,
// (seen - told) / 2, is exact when the fastest delays are equal both ways, and off by half
// their difference otherwise. The interval's half-width, (seen + told) / 2, is the fastest
// round trip's half.
//
// What is applied: the middle, when its possible error (the half-width) is no larger than the
// largest offset this node knows for certain among all its peers, so that a figure is never off
// by more than the skew the cluster is known to have. Else the bound nearer 0, which never
// overshoots, and is 0 when the interval holds 0. In a cluster whose clocks agree within the
// fastest one-way delays (one host), no offset is known for certain and nothing moves: noise
// in the delays never shifts a figure. An interval is lopsided for a while when one
// direction's fastest messages are yet to come (a peer paused from its start, a link cut):
// its middle can be off by up to half of it, which the simulator's figures showed.
//
// A peer this node exchanges few or no messages with (a replica behind a relay) gets an
// interval composed through the relay: the relay publishes its interval for every node it
// exchanges messages with (middle and half-width, "co"), and this node adds it to its own for
// the relay, and takes it where it is narrower than its own for the peer.
//
// Minima are kept over two windows of kWindowUs, so a clock that is stepped is followed
// within two windows; an interval made empty by a step (or a lie) counts as unknown. Every
// value is clamped to kOffsetMaxUs. A lying peer can widen or shift its own interval, and
// through certain_spread let the middle be taken for the others' (each still within its own
// bounds); a relay can mislead everyone's, as it can forge their reports anyway.
#pragma once

#include <cstdint>
#include <vector>

namespace gossip_kv {

class ClockOffsets {
 public:
  static constexpr std::int64_t kWindowUs = 30'000'000;
  // Peers' versions may run at most 10 s ahead (limits::kVersionAheadMaxUs); an offset as large
  // as that is the largest any cluster that works at all can have.
  static constexpr std::int64_t kOffsetMaxUs = 10'000'000;
  static constexpr std::int64_t kUnknown = INT64_MIN;

  // One relay's interval for a node it serves: its clock minus the node's lies within
  // mid +- half_width.
  struct Published {
    std::uint32_t node = 0;
    std::int64_t mid = 0, half_width = 0;
    bool operator==(const Published&) const = default;
  };

  // Peers are numbered 1..peer_count (this node's own number included, never used). relay:
  // the relay this node's traffic goes through (0: none), whose table serves the peers this
  // node does not exchange messages with.
  ClockOffsets(std::size_t peer_count, std::uint32_t relay);

  // A message from `peer` sent at its sent_us, received at now_us.
  void on_message(std::uint32_t peer, std::int64_t sent_us, std::int64_t now_us);
  // `peer`'s minimum of (its receive time - my send time), as it last told me.
  void on_told(std::uint32_t peer, std::int64_t min_us);
  // The relay's intervals for the nodes it lists (the others keep theirs).
  void on_relay_table(std::uint32_t relay, const std::vector<Published>& table);

  // What to tell `peer` ("mo"): my minimum for its messages; kUnknown before the first.
  [[nodiscard]] std::int64_t seen_min(std::uint32_t peer, std::int64_t now_us) const;
  // My clock minus `peer`'s, in µs, to add to a time in peer's clock (see the top).
  [[nodiscard]] std::int64_t offset(std::uint32_t peer, std::int64_t now_us) const;
  // How far offset() may be from the true offset: twice the interval's half-width (offset()
  // takes its middle or its bound nearer 0); kOffsetMaxUs when no interval is known. For
  // decisions that must not err one way (GossipEngine::learn_floor).
  [[nodiscard]] std::int64_t error_bound(std::uint32_t peer, std::int64_t now_us) const;
  // Where the true offset lies, [*lo, *hi] (clamped to kOffsetMaxUs); false, with both set to
  // offset(), when no interval is known.
  bool bounds(std::uint32_t peer, std::int64_t now_us, std::int64_t* lo, std::int64_t* hi) const;
  // This node's direct intervals, for a relay to publish (at most max_items, from `start` on,
  // wrapping, so a long table goes out in turns).
  // Replaces *out, keeping its room.
  void table(std::int64_t now_us, std::size_t start, std::size_t max_items,
             std::vector<Published>* out) const;

 private:
  struct WindowedMin {  // the minimum of the samples of the last one to two windows
    std::int64_t current = INT64_MAX, previous = INT64_MAX;
    std::int64_t window_start_us = INT64_MIN;
    bool add(std::int64_t v, std::int64_t now_us);  // true when the minimum may have changed
    [[nodiscard]] std::int64_t get(std::int64_t now_us) const;
  };
  struct Interval {
    bool known = false;
    std::int64_t mid = 0, half_width = 0;
  };
  struct Peer {
    WindowedMin seen;
    std::int64_t told = kUnknown;
    Interval relayed;  // the relay's interval for this peer (its clock minus the peer's)
  };
  [[nodiscard]] Interval direct(std::uint32_t peer, std::int64_t now_us) const;
  [[nodiscard]] Interval interval(std::uint32_t peer, std::int64_t now_us) const;
  // The largest offset known for certain among the peers. Cached: recomputed after a new
  // sample or table, or an eighth of a window on.
  [[nodiscard]] std::int64_t certain_spread(std::int64_t now_us) const;

  std::vector<Peer> peers_;
  std::uint32_t relay_;
  mutable bool spread_dirty_ = true;
  mutable std::int64_t spread_us_ = 0, spread_at_us_ = 0;
};

}  // namespace gossip_kv
