// The checkers fire on crafted histories that hold each fault, and stay quiet on a clean one;
// and a short real comparison keeps the checkers' own invariants.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "history.h"

namespace gossip_bench {
namespace {

Op write_op(std::int64_t key, std::int64_t value, std::int64_t ts, std::int64_t invoke,
            std::int64_t complete) {
  Op op;
  op.kind = Op::Kind::kWrite;
  op.key = key;
  op.value = value;
  op.ts_us = ts;
  op.invoke_us = invoke;
  op.complete_us = complete;
  op.ok = true;
  return op;
}

Op read_op(std::int64_t key, std::int64_t value, std::int64_t ts, std::int64_t invoke,
           std::int64_t complete) {
  Op op = write_op(key, value, ts, invoke, complete);
  op.kind = Op::Kind::kRead;
  return op;
}

FinalState holding(std::int64_t key, std::int64_t value, std::int64_t ts, const char* digest) {
  FinalState f;
  f.held[key] = {value, ts};
  f.digest = digest;
  return f;
}

TEST(Checkers, CleanHistoryRaisesNothing) {
  std::vector<Op> h = {write_op(1, 10, 100, 0, 1000), read_op(1, 10, 100, 2000, 2100)};
  Checks c = check(h, {holding(1, 10, 100, "d"), holding(1, 10, 100, "d")});
  EXPECT_EQ(c.stale_reads, 0u);
  EXPECT_EQ(c.lost_writes, 0u);
  EXPECT_EQ(c.divergent_nodes, 0);
  EXPECT_FALSE(c.msg_count_mismatch);
  EXPECT_EQ(c.writes_ok, 1u);
  EXPECT_EQ(c.reads_ok, 1u);
}

TEST(Checkers, StaleReadFires) {
  // Write 2 was acknowledged at 3000; a read begun at 4000 still returned write 1.
  std::vector<Op> h = {write_op(1, 10, 100, 0, 1000), write_op(1, 20, 200, 2000, 3000),
                       read_op(1, 10, 100, 4000, 4500), read_op(1, 10, 100, 2500, 2600)};
  Checks c = check(h, {holding(1, 20, 200, "d")});
  EXPECT_EQ(c.stale_reads, 1u) << "the read begun before the acknowledgement is not stale";
  EXPECT_EQ(c.stable_max_ms, 1) << "the newer write was missed until 4500, 1.5 ms after its ack";
}

TEST(Checkers, LostWriteFires) {
  std::vector<Op> h = {write_op(1, 10, 100, 0, 1000), write_op(1, 20, 200, 2000, 3000)};
  Checks c = check(h, {holding(1, 20, 200, "a"), holding(1, 10, 100, "a")});
  EXPECT_EQ(c.lost_writes, 1u) << "the second node ends before the newest acknowledged write";
}

TEST(Checkers, DivergentReplicaFires) {
  Checks c = check({}, {holding(1, 1, 1, "a"), holding(1, 1, 1, "a"), holding(1, 1, 1, "b")});
  EXPECT_EQ(c.divergent_nodes, 1);
}

TEST(Checkers, MessageCountMismatchFires) {
  FinalState a = holding(1, 1, 1, "d"), b = holding(1, 1, 1, "d");
  a.routed_before_report = 10;
  a.total_gossip_msgs = 10;
  b.routed_before_report = 7;
  b.total_gossip_msgs = 8;
  Checks c = check({}, {a, b});
  EXPECT_TRUE(c.msg_count_mismatch);
  b.total_gossip_msgs = 7;
  EXPECT_FALSE(check({}, {a, b}).msg_count_mismatch);
}

TEST(Checkers, UnansweredOperationsCountAgainstAvailability) {
  Op lost = write_op(1, 10, 100, 0, -1);
  lost.ok = false;
  Checks c = check({lost, read_op(2, -1, 0, 0, 10)}, {});
  EXPECT_EQ(c.ops, 2u);
  EXPECT_EQ(c.answered, 1u);
  EXPECT_EQ(c.lost_writes, 0u) << "an unacknowledged write can be lost";
}

TEST(GossipBench, ShortThreeNodeComparisonKeepsItsInvariants) {
  std::string dir = ::testing::TempDir() + "gossip-bench-test";
  std::string cmd = std::string(GOSSIP_BENCH_BIN) + " --bin " GOSSIP_KV_NODE_BIN
                    " --node-count 3 --time-limit 3 --quiet-period 2 --nemesis-interval 1"
                    " --rate 40 --store-dir " + dir + " > " + dir + ".out 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream out(dir + ".out");
  std::stringstream text;
  text << out.rdbuf();
  EXPECT_EQ(rc, 0) << text.str();
  std::ifstream results(dir + "/latest/results.json");
  std::stringstream json;
  json << results.rdbuf();
  rapidjson::Document d;
  d.Parse(json.str().c_str());
  ASSERT_FALSE(d.HasParseError()) << json.str();
  for (const char* condition : {"normal", "partition"}) {
    ASSERT_TRUE(d.HasMember(condition)) << json.str();
    const auto& r = d[condition];
    EXPECT_EQ(r["lost_writes"].GetUint64(), 0u) << condition;
    EXPECT_EQ(r["divergent_nodes"].GetInt(), 0) << condition;
    EXPECT_TRUE(r["msg_count_matches"].GetBool()) << condition;
    EXPECT_EQ(r["node_to_node_messages"].GetUint64(), r["nodes_total_gossip_msgs"].GetUint64());
    EXPECT_GT(r["writes_ok"].GetUint64(), 10u) << condition;
    // Clients are never cut off, so nearly every request is answered in both conditions.
    EXPECT_GE(r["answered"].GetDouble(), 0.95 * r["operations"].GetDouble()) << condition;
  }
}

}  // namespace
}  // namespace gossip_bench
