// The router's convergence observer follows gossip-kv's entries to each replica.
#include <array>

#include <gtest/gtest.h>

#include "observer.h"

namespace gossip_bench {
namespace {

// A gossip message to a node carrying entries [[key, ts]...] in gossip-kv's format.
std::string gossip(int to, std::vector<std::pair<std::int64_t, std::int64_t>> entries) {
  std::string e;
  for (auto [key, ts] : entries) {
    e += (e.empty() ? "" : ",") + std::string("[\"i") + std::to_string(key) + "\"," + std::to_string(ts) + ",1,\"7\"]";
  }
  return R"({"src":"n1","dest":"n)" + std::to_string(to) + R"(","body":{"type":"gossip","from":0,"to":5,"e":[)" + e +
         R"(],"msg_id":3}})";
}

TEST(Observer, AWriteConvergesWhenTheLastReplicaReceivesIt) {
  ConvergenceObserver o(3);
  o.on_write(1, 7, 500, 1'000, 1'200);  // invoked at 1 ms, taken by n1
  o.on_delivered(2, gossip(2, {{7, 500}}), 101'000);
  EXPECT_TRUE(o.converged_ms().empty());
  EXPECT_EQ(o.unconverged(), 1u);
  o.on_delivered(3, gossip(3, {{7, 500}}), 251'000);
  ASSERT_EQ(o.converged_ms().size(), 1u);
  EXPECT_EQ(o.converged_ms()[0], 250) << "(251 - 1) ms";
  EXPECT_EQ(o.unconverged(), 0u);
  EXPECT_TRUE(o.understood());
}

TEST(Observer, ANewerVersionOfTheKeyCountsForOlderWrites) {
  ConvergenceObserver o(2);
  o.on_write(1, 7, 500, 0, 100);
  o.on_write(1, 7, 600, 0, 200);
  o.on_delivered(2, gossip(2, {{7, 600}}), 50'000);
  ASSERT_EQ(o.converged_ms().size(), 2u) << "n2 holds a version newer than both";
  o.on_delivered(2, gossip(2, {{7, 500}}), 60'000);  // an older copy arriving late changes nothing
  EXPECT_EQ(o.converged_ms().size(), 2u);
}

TEST(Observer, AReplicaThatHadTheWriteBeforeItsAcknowledgementCounts) {
  ConvergenceObserver o(2);
  o.on_delivered(2, gossip(2, {{7, 500}}), 10'000);
  o.on_write(1, 7, 500, 0, 20'000);
  ASSERT_EQ(o.converged_ms().size(), 1u);
  EXPECT_EQ(o.converged_ms()[0], 10) << "n2 held it from its delivery at 10 ms, not from when the acknowledgement was read";
}

// A replica's own newer write of the key holds the older write from when it was taken, as
// the replica itself reports it; its acknowledgement comes later (6 ms under load put the
// router's figure after the nodes' own). Never before the other replicas held it.
TEST(Observer, AReplicasOwnNewerWriteCountsFromWhenItWasTaken) {
  ConvergenceObserver o(3);
  o.on_write(1, 7, 500, 0, 1'000);
  o.on_delivered(3, gossip(3, {{7, 500}}), 100'000);
  o.on_write(2, 7, 900, 150'000, 156'000);  // n2's own write of the key: taken at 150, read at 156
  ASSERT_EQ(o.converged_ms().size(), 1u);
  EXPECT_EQ(o.converged_ms()[0], 150) << "when n2 took its newer write, not when its reply was read";
  EXPECT_EQ(o.converged_ms_of(1, 500), 150);

  // n2's reply is read only after n3 came to hold the write: the last replica to hold it was
  // n3, at 200, though n2's newer write, counted last, was taken at 150.
  ConvergenceObserver late(3);
  late.on_write(1, 7, 500, 0, 1'000);
  late.on_delivered(3, gossip(3, {{7, 500}}), 200'000);
  late.on_write(2, 7, 900, 150'000, 210'000);
  ASSERT_EQ(late.converged_ms().size(), 1u) << "n1's write; n2's never reached n1 or n3";
  EXPECT_EQ(late.converged_ms_of(1, 500), 200) << "not before n3 held it";
  EXPECT_EQ(late.converged_ms_of(2, 900), ConvergenceObserver::kNever) << "n1 and n3 never held it";
}

// A write answered after its request timed out is not measured, but its node took it: a paused
// node's late answer made the router count that node 100 ms late for an older write, which
// only reached it later by gossip.
TEST(Observer, AWriteAnsweredLateStillHoldsOlderOnes) {
  ConvergenceObserver o(2);
  o.on_write(1, 7, 500, 0, 1'000);
  o.on_unacknowledged_write(2, 7, 900, 1'500'000);
  ASSERT_EQ(o.converged_ms().size(), 1u);
  EXPECT_EQ(o.converged_ms_of(1, 500), 1'500);
  EXPECT_EQ(o.converged_ms_of(2, 900), -1) << "not registered: it was not acknowledged in time";
  EXPECT_EQ(o.unconverged(), 0u);
}

// A write every replica held as a newer version before it was even taken converged at once;
// a registered write never seen everywhere has no figure but is known (kNever), unlike one
// never registered.
TEST(Observer, AWriteSupersededEverywhereBeforeItWasTakenConvergesAtOnce) {
  ConvergenceObserver o(2);
  o.on_delivered(1, gossip(1, {{7, 900}}), 5'000);
  o.on_delivered(2, gossip(2, {{7, 900}}), 6'000);
  o.on_write(1, 7, 500, 8'000, 30'000);  // its reply read 22 ms after it was taken
  EXPECT_EQ(o.converged_ms_of(1, 500), 0);
  o.on_write(1, 8, 600, 40'000, 41'000);
  EXPECT_EQ(o.converged_ms_of(1, 600), ConvergenceObserver::kNever) << "n2 never held key 8";
  EXPECT_EQ(o.converged_ms_of(1, 700), -1) << "never registered";
}

// Two origins' writes of a key on the same microsecond (skewed hybrid clocks make them): the
// replies do not say which wins, so neither has a figure to compare.
TEST(Observer, WritesWhoseVersionsTieAreNotCompared) {
  ConvergenceObserver o(2);
  o.on_write(1, 7, 500, 0, 100);
  o.on_write(2, 7, 500, 10, 200);
  o.on_delivered(2, gossip(2, {{7, 500}}), 50'000);
  o.on_delivered(1, gossip(1, {{7, 500}}), 60'000);
  EXPECT_EQ(o.converged_ms_of(1, 500), -1);
  EXPECT_EQ(o.converged_ms_of(2, 500), -1);
  o.on_write(1, 8, 500, 0, 100);  // another key: no tie
  EXPECT_EQ(o.converged_ms_of(1, 500), -1) << "still tied on key 7";
}

TEST(Observer, OtherKeysAndOtherMessagesDoNotCount) {
  ConvergenceObserver o(2);
  o.on_write(1, 7, 500, 0, 100);
  o.on_delivered(2, gossip(2, {{8, 900}}), 10'000);
  o.on_delivered(2, R"({"src":"n1","dest":"n2","body":{"type":"digest","wm":[0,900],"msg_id":4}})", 20'000);
  o.on_delivered(2, R"({"src":"n1","dest":"n2","body":{"type":"gossip","e":[["s7",900,1,"1"],[1,2],"x"]}})", 30'000);
  EXPECT_TRUE(o.converged_ms().empty());
  EXPECT_EQ(o.unconverged(), 1u);
}

// Content sync's sync_keys replies carry entries too (items with the value); items with a hash
// only say which version the sender holds, not that the receiver now does.
TEST(Observer, ContentSyncItemsWithTheirValueCount) {
  ConvergenceObserver o(2);
  o.on_write(1, 7, 500, 0, 100);
  o.on_write(1, 8, 500, 0, 100);
  o.on_delivered(2, R"({"src":"n1","dest":"n2","body":{"type":"sync_keys","k":[[3,[["i8",900,1,12345]]]]}})", 10'000);
  EXPECT_TRUE(o.converged_ms().empty()) << "a hash item is not the entry";
  o.on_delivered(2, R"({"src":"n1","dest":"n2","body":{"type":"sync_keys","k":[[3,null,"i9",[["i7",500,1,"1"]]],)"
                    R"([4,[["i8",900,1,"2"]]]],"m":1}})", 20'000);
  ASSERT_EQ(o.converged_ms().size(), 2u);
  EXPECT_EQ(o.converged_ms()[0], 20);
  EXPECT_EQ(o.converged_ms()[1], 20);
}

TEST(Observer, NodesSpeakingAnotherFormatAreNotUnderstood) {
  ConvergenceObserver o(2);
  o.on_write(1, 7, 500, 0, 100);
  o.on_delivered(2, R"({"src":"n1","dest":"n2","body":{"type":"broadcast","message":7}})", 10'000);
  EXPECT_FALSE(o.understood());
}

// An entry [key, ts, origin] delivered to a node: origin is gossip-kv's index in the sorted ids.
std::string entry_to(int to, std::int64_t key, std::int64_t ts, int origin) {
  return R"({"src":"n1","dest":"n)" + std::to_string(to) + R"(","body":{"type":"gossip","e":[["i)" +
         std::to_string(key) + "\"," + std::to_string(ts) + "," + std::to_string(origin) + R"(,"7"]]}})";
}

TEST(Observer, AWriteOnlyItsKilledNodeHeldIsLostWithTheCrash) {
  ConvergenceObserver o(3);
  o.on_write(1, 7, 500, 0, 1'000);    // n1 takes it; no one else ever hears of it
  o.on_write(2, 8, 600, 0, 1'000);    // n2's write of another key, not yet spread
  o.on_delivered(3, gossip(3, {{7, 400}}), 1'500);  // an older version elsewhere saves nothing
  o.on_killed({1}, 2'000);
  auto lost = o.lost_with_crash();
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0], (std::array<std::int64_t, 3>{1, 7, 500}));
  EXPECT_EQ(o.unconverged(), 1u) << "n2's write is pending, not lost";
  // Superseded everywhere later, it is still a write the crash lost, and gets no figure.
  for (int n = 1; n <= 3; ++n) o.on_delivered(n, entry_to(n, 7, 900, 2), 3'000);  // n2's newer write
  EXPECT_EQ(o.lost_with_crash().size(), 1u);
  EXPECT_TRUE(o.converged_ms().empty());
  EXPECT_EQ(o.unconverged(), 1u);
}

TEST(Observer, AWriteAnotherReplicaHeldSurvivesTheCrash) {
  ConvergenceObserver o(3);
  o.on_write(1, 7, 500, 0, 1'000);
  o.on_delivered(2, gossip(2, {{7, 500}}), 1'500);
  o.on_killed({1}, 2'000);
  EXPECT_TRUE(o.lost_with_crash().empty());
  o.on_delivered(3, gossip(3, {{7, 500}}), 2'500);
  EXPECT_TRUE(o.converged_ms().empty()) << "the restarted n1 holds nothing yet";
  o.on_delivered(1, gossip(1, {{7, 500}}), 3'000);
  ASSERT_EQ(o.converged_ms().size(), 1u);
  EXPECT_EQ(o.converged_ms()[0], 3);
}

TEST(Observer, AMessageInFlightAtTheKillSavesTheWritesItCarries) {
  ConvergenceObserver o(12);  // n10 and n11 sort before n2: n2 is origin 5
  o.on_write(2, 7, 500, 0, 1'000);
  o.on_killed({2}, 2'000'000);
  EXPECT_EQ(o.lost_with_crash().size(), 1u);
  o.on_delivered(3, entry_to(3, 7, 500, 2), 2'100);  // origin 2 is n10: not n2's
  EXPECT_EQ(o.lost_with_crash().size(), 1u);
  o.on_delivered(3, entry_to(3, 7, 500, 5), 2'100);  // n2's push, sent before it died
  EXPECT_TRUE(o.lost_with_crash().empty());
  EXPECT_EQ(o.unconverged(), 1u);
}

TEST(Observer, AWriteOnlyNodesKilledTogetherHeldIsLostWithThem) {
  ConvergenceObserver o(5);
  o.on_write(1, 7, 500, 0, 1'000);
  o.on_delivered(2, gossip(2, {{7, 500}}), 1'500);  // n2 has it too, and dies with n1
  o.on_killed({1, 2}, 2'000);
  ASSERT_EQ(o.lost_with_crash().size(), 1u);
  EXPECT_EQ(o.unconverged(), 0u);
}

TEST(Observer, AnEntryOfTheRestartedLifeSavesNothing) {
  ConvergenceObserver o(3);
  o.on_write(1, 7, 500, 0, 1'000);
  o.on_killed({1}, 2'000);
  o.on_delivered(2, entry_to(2, 7, 2'500, 1), 3'000);  // versioned after the kill: a new write
  EXPECT_EQ(o.lost_with_crash().size(), 1u);
}

}  // namespace
}  // namespace gossip_bench
