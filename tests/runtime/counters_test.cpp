// The benchmark counters and the Parker that wakes threads per batch.
#include <thread>

#include <gtest/gtest.h>

#include "runtime/shared.h"

namespace gossip_kv::rt {
namespace {

TEST(WorkerCounters, OneCacheLineApart) {
  static_assert(alignof(WorkerCounters) >= 64);
  Shared sh(2, 1);
  auto a = reinterpret_cast<std::uintptr_t>(&sh.workers[0]->counters);
  auto b = reinterpret_cast<std::uintptr_t>(&sh.workers[1]->counters);
  EXPECT_EQ(a % 64, 0u);
  EXPECT_EQ(b % 64, 0u);
  EXPECT_GE(a > b ? a - b : b - a, 64u) << "two workers' counters never share a cache line";
}

TEST(WorkerCounters, SingleWriterBumpsAreSeenInOrder) {
  // Invariant stressed: a reader never sees a counter go down while its one writer bumps it.
  WorkerCounters c;
  constexpr std::uint64_t kBumps = 200000;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    std::uint64_t last = 0;
    while (!done.load()) {
      std::uint64_t now = c.reads.load(std::memory_order_relaxed);
      EXPECT_GE(now, last);
      last = now;
    }
  });
  for (std::uint64_t i = 0; i < kBumps; ++i) WorkerCounters::bump(c.reads);
  WorkerCounters::bump(c.reads, 5);
  done.store(true);
  reader.join();
  EXPECT_EQ(c.reads.load(), kBumps + 5);
}

TEST(Parker, NoLostWakeupsInPingPong) {
  // Invariant stressed: an unpark after the other side's last check still wakes it; with the
  // long timeout a lost wake-up would stall the test for minutes instead of passing.
  Parker ping, pong;
  std::atomic<int> turn{0};
  constexpr int kRounds = 20000;
  std::thread other([&] {
    for (int i = 0; i < kRounds; ++i) {
      while (turn.load() != 1) pong.park([&] { return turn.load() == 1; }, 60'000'000);
      turn.store(0);
      ping.unpark();
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    turn.store(1);
    pong.unpark();
    while (turn.load() != 0) ping.park([&] { return turn.load() == 0; }, 60'000'000);
  }
  other.join();
  EXPECT_EQ(turn.load(), 0);
}

}  // namespace
}  // namespace gossip_kv::rt
