// Versions of stored values and the hybrid logical clock that issues them.
//
// Thread safety: Version is a value type. HybridClock is safe to call from any thread.
#pragma once

#include <atomic>
#include <compare>
#include <cstdint>

namespace gossip_kv {

// A version orders writes to a key: the write's timestamp in microseconds since the Unix epoch,
// then, to break ties the same way on every replica, the origin: 1 + the index of the node that
// took the write in init's sorted node_ids (so ties follow node id order), or 0 for an entry
// merged in by kv_merge without a known node.
struct Version {
  std::int64_t ts_us = 0;
  std::uint32_t origin = 0;

  friend auto operator<=>(const Version&, const Version&) = default;
  [[nodiscard]] double ts_seconds() const { return static_cast<double>(ts_us) / 1e6; }
};

// Converts a wire timestamp in seconds (a JSON float) to microseconds, rounding to nearest;
// saturates at the int64 range (NaN gives 0).
std::int64_t seconds_to_us(double seconds);

// a + b, clamped to the int64 range instead of overflowing.
inline std::int64_t add_saturating(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  if (!__builtin_add_overflow(a, b, &r)) return r;
  return b > 0 ? INT64_MAX : INT64_MIN;
}

// Issues strictly increasing timestamps that never fall behind the wall clock nor behind any
// version this node has seen, so a write taken here supersedes everything it could have read.
//
// It is never dragged more than limits::kVersionAheadMaxUs ahead of the wall clock: observe()
// takes a timestamp only up to now_us + that window (the node rejects versions further ahead,
// so this clamp only matters for callers that do not). All arithmetic saturates: INT64_MAX
// and INT64_MIN inputs never overflow.
class HybridClock {
 public:
  // Returns a timestamp > every earlier result and >= max(now_us, floor_us + 1) (saturating
  // at INT64_MAX, where "strictly greater" can no longer hold).
  std::int64_t next(std::int64_t now_us, std::int64_t floor_us);
  // Records a timestamp seen from elsewhere, so later next() results exceed it, clamped to
  // now_us + limits::kVersionAheadMaxUs.
  void observe(std::int64_t ts_us, std::int64_t now_us);
  // The latest timestamp issued or observed. Acquire: pairs with next()'s release.
  [[nodiscard]] std::int64_t last() const { return last_us_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::int64_t> last_us_{0};
};

// Wall-clock microseconds since the Unix epoch (the node's only clock read for versions), plus
// the offset below.
std::int64_t wall_clock_us();
// Shifts every later wall_clock_us() reading by offset_us: a node whose clock runs ahead or
// behind, for tests and gossip-bench's clock-skew condition (`gossip-kv --clock-offset-ms`).
// Set it before the node starts; changing it while the node runs makes its clock jump.
void set_wall_clock_offset_us(std::int64_t offset_us);

}  // namespace gossip_kv
