// ClockOffsets: offsets estimated from message send times, applied only when known to be
// non-zero, composed through a relay.
#include "replication/clock_offsets.h"

#include <vector>

#include <gtest/gtest.h>

namespace gossip_kv {
namespace {

constexpr std::int64_t kT0 = 1'700'000'000'000'000;

// Node 1 (me) and node 2, whose clock runs `ahead_us` ahead of mine; messages take d12 and d21
// (true µs) each way. Returns my estimate of my clock minus node 2's.
std::int64_t estimate(std::int64_t ahead_us, std::int64_t d12, std::int64_t d21) {
  ClockOffsets mine(2, 0), theirs(2, 0);
  for (int i = 0; i < 5; ++i) {
    std::int64_t t = kT0 + i * 100'000;  // true time
    theirs.on_message(1, t, t + d12 + ahead_us);  // mine -> theirs: sent in my clock, received in theirs
    mine.on_message(2, t + ahead_us, t + d21);    // theirs -> mine
    mine.on_told(2, theirs.seen_min(1, t + ahead_us));
  }
  return mine.offset(2, kT0 + 1'000'000);
}

TEST(ClockOffsets, SymmetricDelaysGiveTheExactOffset) {
  EXPECT_EQ(estimate(3'000'000, 50'000, 50'000), -3'000'000) << "mine is 3 s behind theirs";
  EXPECT_EQ(estimate(-2'500'000, 80'000, 80'000), 2'500'000);
}

TEST(ClockOffsets, AsymmetricDelaysAreOffByHalfTheirDifference) {
  EXPECT_EQ(estimate(3'000'000, 70'000, 30'000), -3'000'000 + (30'000 - 70'000) / 2);
}

TEST(ClockOffsets, ALopsidedIntervalGivesTheBoundNearerZero) {
  // My messages took 400 ms at best (the peer was paused), theirs 5 ms; I am 20 ms behind.
  // The middle would say 217 ms behind; the bound nearer 0 is 15 ms, never past the truth.
  EXPECT_EQ(estimate(20'000, 400'000, 5'000), -20'000 + 5'000);
}

TEST(ClockOffsets, ClocksWithinTheDelaysAreLeftAsTheyAre) {
  // 20 ms apart, 50 ms each way: the interval [-told, seen] holds 0, so no correction (noise in
  // the delays must not move the figures of a cluster whose clocks agree).
  EXPECT_EQ(estimate(20'000, 50'000, 50'000), 0);
  EXPECT_EQ(estimate(0, 10'000, 90'000), 0) << "one clock, very different delays";
}

TEST(ClockOffsets, NothingIsAppliedBeforeBothDirectionsAreSampled) {
  ClockOffsets mine(2, 0);
  mine.on_message(2, kT0 + 5'000'000, kT0 + 50'000);
  EXPECT_EQ(mine.offset(2, kT0 + 100'000), 0);
  EXPECT_EQ(mine.seen_min(2, kT0 + 100'000), 50'000 - 5'000'000);
  EXPECT_EQ(mine.seen_min(1, kT0), ClockOffsets::kUnknown);
}

TEST(ClockOffsets, MinimaFollowAStepAfterTwoWindows) {
  ClockOffsets mine(2, 0);
  mine.on_message(2, kT0, kT0 + 10'000);
  EXPECT_EQ(mine.seen_min(2, kT0), 10'000);
  std::int64_t later = kT0 + 2 * ClockOffsets::kWindowUs + 1;
  mine.on_message(2, later, later + 40'000);  // the old minimum aged out
  EXPECT_EQ(mine.seen_min(2, later), 40'000);
}

TEST(ClockOffsets, APeerBehindARelayGetsAnIntervalComposedThroughIt) {
  // Node 3 (my relay) runs 1 s behind me, 20 ms each way; node 2 runs 2 s behind the relay,
  // within 30 ms as the relay knows it. I never talk to node 2.
  ClockOffsets mine(3, 3);
  std::int64_t t = kT0;
  mine.on_message(3, t - 1'000'000, t + 20'000);  // the relay's send time in its clock
  mine.on_told(3, 20'000 - 1'000'000);           // it saw my messages 1 s early, plus delay
  EXPECT_EQ(mine.offset(3, t), 1'000'000);
  EXPECT_EQ(mine.offset(2, t), 0) << "no table yet";
  mine.on_relay_table(3, {{2, 2'000'000, 30'000}});
  EXPECT_EQ(mine.offset(2, t), 3'000'000);
  mine.on_relay_table(1, {{2, 7'000'000, 0}});
  EXPECT_EQ(mine.offset(2, t), 3'000'000) << "only my relay's table counts";
  mine.on_relay_table(3, {{2, 10'000, 30'000}});
  EXPECT_EQ(mine.offset(2, t), 1'010'000) << "a newer table replaces the node's interval";
}

TEST(ClockOffsets, ARelayTableListsEveryKnownIntervalInTurns) {
  ClockOffsets relay(4, 0);
  for (std::uint32_t p : {2u, 3u, 4u}) {
    std::int64_t ahead = p == 3 ? 0 : static_cast<std::int64_t>(p) * 1'000'000;
    relay.on_message(p, kT0 + ahead, kT0 + 10'000);
    relay.on_told(p, 10'000 + ahead);
  }
  std::vector<ClockOffsets::Published> table;
  relay.table(kT0, 0, 10, &table);
  ASSERT_EQ(table.size(), 3u) << "node 3's too: a composed interval needs it";
  EXPECT_EQ(table[0], (ClockOffsets::Published{2, -2'000'000, 10'000}));
  EXPECT_EQ(table[1], (ClockOffsets::Published{3, 0, 10'000}));
  EXPECT_EQ(table[2], (ClockOffsets::Published{4, -4'000'000, 10'000}));
  std::vector<ClockOffsets::Published> turn = {{9, 9, 9}};  // replaced, not appended to
  relay.table(kT0, 3, 1, &turn);
  ASSERT_EQ(turn.size(), 1u);
  EXPECT_EQ(turn[0].node, 4u) << "starts at the fourth node";
}

// Peer 2 is surely 1 s ahead; peer 3's interval, 20 ms off with 50 ms delays each way, holds 0.
// Alone it would not be moved; next to peer 2 its middle is taken (its error, at most 50 ms,
// is within the skew the cluster is known to have).
TEST(ClockOffsets, AnOffsetKnownForCertainLetsTheOthersMiddlesBeTaken) {
  ClockOffsets mine(3, 0);
  auto exchange = [&](std::uint32_t p, std::int64_t ahead) {
    mine.on_message(p, kT0 + ahead, kT0 + 50'000);  // sent at true kT0 in p's clock, 50 ms
    mine.on_told(p, 50'000 + ahead);                // p saw mine 50 ms late, in its clock
  };
  exchange(3, 20'000);
  EXPECT_EQ(mine.offset(3, kT0 + 100'000), 0);
  exchange(2, 1'000'000);
  EXPECT_EQ(mine.offset(2, kT0 + 100'000), -1'000'000);
  EXPECT_EQ(mine.offset(3, kT0 + 100'000), -20'000);
}

TEST(ClockOffsets, AnEmptyIntervalCountsAsUnknown) {
  // seen < -told: no offset satisfies both (a stepped clock, or a lie).
  ClockOffsets mine(2, 0);
  mine.on_message(2, kT0 + 1'000'000, kT0);  // its messages arrive 1 s before they were sent
  mine.on_told(2, 0);                         // and mine instantly: together impossible
  EXPECT_EQ(mine.offset(2, kT0), 0);
  std::vector<ClockOffsets::Published> table;
  mine.table(kT0, 0, 10, &table);
  EXPECT_TRUE(table.empty());
}

TEST(ClockOffsets, ALyingPeerIsClamped) {
  ClockOffsets mine(2, 0);
  mine.on_message(2, kT0 - 60'000'000, kT0);
  mine.on_told(2, -60'000'000);
  EXPECT_EQ(mine.offset(2, kT0), ClockOffsets::kOffsetMaxUs);
}

}  // namespace
}  // namespace gossip_kv
