#include "gossip_kv/version.h"

#include <chrono>
#include <cmath>

namespace gossip_kv {

std::int64_t seconds_to_us(double seconds) {
  return static_cast<std::int64_t>(std::llround(seconds * 1e6));
}

std::int64_t HybridClock::next(std::int64_t now_us, std::int64_t floor_us) {
  std::int64_t last = last_us_.load(std::memory_order_relaxed);
  for (;;) {
    std::int64_t candidate = now_us > last ? now_us : last + 1;
    if (candidate <= floor_us) candidate = floor_us + 1;
    // acq_rel: a thread that reads this timestamp through last() also sees what the issuing
    // thread did before (the workers' batch floors, gossip_thread.cpp).
    if (last_us_.compare_exchange_weak(last, candidate, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      return candidate;
    }
  }
}

void HybridClock::observe(std::int64_t ts_us) {
  std::int64_t last = last_us_.load(std::memory_order_relaxed);
  while (ts_us > last &&
         !last_us_.compare_exchange_weak(last, ts_us, std::memory_order_relaxed)) {
  }
}

std::int64_t wall_clock_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace gossip_kv
