// The router's convergence observer follows gossip-kv's entries to each replica.
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
  EXPECT_EQ(o.converged_ms()[0], 20) << "known only when the acknowledgement arrived";
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

}  // namespace
}  // namespace gossip_bench
