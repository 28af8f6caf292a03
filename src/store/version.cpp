#include "gossip_kv/version.h"

#include <atomic>
#include <chrono>
#include <cmath>

#include "common/assert.h"
#include "gossip_kv/limits.h"

namespace gossip_kv {

std::int64_t seconds_to_us(double seconds) {
  double us = std::round(seconds * 1e6);
  if (std::isnan(us)) return 0;
  // 2^63 is exact as a double; anything at or above it does not fit.
  if (us >= 9223372036854775808.0) return INT64_MAX;
  if (us < -9223372036854775808.0) return INT64_MIN;
  return static_cast<std::int64_t>(us);
}

std::int64_t HybridClock::next(std::int64_t now_us, std::int64_t floor_us) {
  std::int64_t last = last_us_.load(std::memory_order_relaxed);
  for (;;) {
    std::int64_t candidate = now_us > last ? now_us : add_saturating(last, 1);
    if (candidate <= floor_us) candidate = add_saturating(floor_us, 1);
    // acq_rel: a thread that reads this timestamp through last() also sees what the issuing
    // thread did before (the workers' batch floors, gossip_thread.cpp).
    if (last_us_.compare_exchange_weak(last, candidate, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      GOSSIP_KV_ASSERT(candidate > last || candidate == INT64_MAX);
      return candidate;
    }
  }
}

void HybridClock::observe(std::int64_t ts_us, std::int64_t now_us) {
  std::int64_t ceiling = add_saturating(now_us, limits::kVersionAheadMaxUs);
  if (ts_us > ceiling) ts_us = ceiling;
  std::int64_t last = last_us_.load(std::memory_order_relaxed);
  while (ts_us > last &&
         !last_us_.compare_exchange_weak(last, ts_us, std::memory_order_relaxed)) {
  }
}

namespace {
std::atomic<std::int64_t> g_wall_clock_offset_us{0};
}  // namespace

std::int64_t wall_clock_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count() +
         g_wall_clock_offset_us.load(std::memory_order_relaxed);
}

void set_wall_clock_offset_us(std::int64_t offset_us) {
  g_wall_clock_offset_us.store(offset_us, std::memory_order_relaxed);
}

}  // namespace gossip_kv
