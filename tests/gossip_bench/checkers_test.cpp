// The checkers fire on crafted histories that hold each fault, and stay quiet on a clean one.
// Times are in microseconds; a write's version timestamp is also its wall-clock invocation
// unless a test says otherwise.
#include <gtest/gtest.h>

#include "history.h"

namespace gossip_bench {
namespace {

Op write_op(std::int64_t key, std::int64_t value, std::int64_t ts, std::int64_t invoke, std::int64_t complete) {
  Op op;
  op.kind = Op::Kind::kWrite;
  op.outcome = Op::Outcome::kOk;
  op.key = key;
  op.value = value;
  op.ts_us = ts;
  op.invoke_us = op.invoke_wall_us = invoke;
  op.complete_us = op.complete_wall_us = complete;
  return op;
}

Op read_op(std::int64_t key, std::int64_t value, std::int64_t ts, std::int64_t invoke, std::int64_t complete) {
  Op op = write_op(key, value, ts, invoke, complete);
  op.kind = Op::Kind::kRead;
  return op;
}

Op missing_read(std::int64_t key, std::int64_t invoke, std::int64_t complete) {
  Op op = read_op(key, kUnknown, kUnknown, invoke, complete);
  op.outcome = Op::Outcome::kNotFound;
  op.error_code = 20;
  return op;
}

NodeReport holding(std::int64_t key, std::int64_t value, std::int64_t ts, const char* digest) {
  NodeReport n;
  n.held[key] = {value, ts, 1'000'000'000};
  n.final_reads_complete = true;
  n.answered_stats = true;
  n.digest = digest;
  return n;
}

TEST(Checkers, CleanHistoryRaisesNothing) {
  std::vector<Op> h = {write_op(1, 10, 100, 0, 1000), read_op(1, 10, 100, 2000, 2100)};
  Checks c = check(h, {holding(1, 10, 100, "d"), holding(1, 10, 100, "d")});
  EXPECT_EQ(c.stale_reads, 0u);
  EXPECT_EQ(c.lost_writes, 0u);
  EXPECT_EQ(c.divergent_nodes, 0);
  EXPECT_EQ(c.silent_nodes, 0);
  EXPECT_FALSE(c.msg_count_mismatch);
  EXPECT_FALSE(c.nodes_stale_beyond_history);
  EXPECT_EQ(c.writes_ok, 1u);
  EXPECT_EQ(c.reads_ok, 1u);
}

TEST(Checkers, StaleReadFiresOnlyAfterTheAcknowledgement) {
  // Write 20 was acknowledged at 3000; a read begun at 4000 still returned write 10, one begun
  // at 2500 (before the acknowledgement) did too but is not stale.
  std::vector<Op> h = {write_op(1, 10, 100, 0, 1000), write_op(1, 20, 200, 2000, 3000),
                       read_op(1, 10, 100, 4000, 4500), read_op(1, 10, 100, 2500, 2600)};
  Checks c = check(h, {holding(1, 20, 200, "d")});
  EXPECT_EQ(c.stale_reads, 1u);
  EXPECT_EQ(c.stable_ms.max, 1) << "write 20 was missed until 4500, 1.5 ms after its acknowledgement";
}

TEST(Checkers, AReadOfAMissingKeyAfterAnAcknowledgedWriteIsStale) {
  std::vector<Op> h = {write_op(1, 10, 100, 0, 1000), missing_read(1, 2000, 2100), missing_read(2, 2000, 2100)};
  Checks c = check(h, {holding(1, 10, 100, "d")});
  EXPECT_EQ(c.stale_reads, 1u) << "key 2 was never written: its missing read is not stale";
  EXPECT_EQ(c.reads_not_found, 2u);
}

TEST(Checkers, StableLatencyIsTheLastMissAfterTheAcknowledgement) {
  // Write 20 acked at 3000; reads at 5000-9000 and 5000-6000 miss it; a read after 9000 sees it.
  std::vector<Op> h = {write_op(1, 10, 100, 0, 1000),       write_op(1, 20, 200, 2000, 3000),
                       read_op(1, 10, 100, 5000, 9000),      read_op(1, 10, 100, 5000, 6000),
                       read_op(1, 20, 200, 9500, 9600),      read_op(1, 10, 100, 1500, 20'000)};
  Checks c = check(h, {holding(1, 20, 200, "d")});
  ASSERT_EQ(c.stable_per_write_ms.size(), 2u);
  EXPECT_EQ(c.stable_ms.max, 6) << "(9000 - 3000) us; the read begun before the ack does not count";
  EXPECT_EQ(c.stale_reads, 2u);
}

TEST(Checkers, LostWriteFires) {
  std::vector<Op> h = {write_op(1, 10, 100, 0, 1000), write_op(1, 20, 200, 2000, 3000)};
  Checks c = check(h, {holding(1, 20, 200, "a"), holding(1, 10, 100, "a")});
  EXPECT_EQ(c.lost_writes, 1u) << "the second node ends before the newest acknowledged write";
  NodeReport without_key = holding(2, 5, 50, "a");
  EXPECT_EQ(check(h, {without_key}).lost_writes, 2u) << "a replica without the key lost both writes";
}

TEST(Checkers, ASilentNodeIsReportedNotJudged) {
  std::vector<Op> h = {write_op(1, 10, 100, 0, 1000)};
  NodeReport silent;  // answered nothing at the end
  Checks c = check(h, {holding(1, 10, 100, "d"), silent});
  EXPECT_EQ(c.lost_writes, 0u);
  EXPECT_EQ(c.silent_nodes, 1);
  EXPECT_EQ(c.divergent_nodes, 0);
}

TEST(Checkers, DivergentReplicaFires) {
  Checks c = check({}, {holding(1, 1, 1, "a"), holding(1, 1, 1, "a"), holding(1, 1, 1, "b")});
  EXPECT_EQ(c.divergent_nodes, 1);
}

TEST(Checkers, MessageCountMismatchFires) {
  NodeReport a = holding(1, 1, 1, "d"), b = holding(1, 1, 1, "d");
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
  Op timed_out = write_op(1, 10, 500, 0, kUnknown);
  timed_out.outcome = Op::Outcome::kTimeout;
  Op late = write_op(1, 11, 600, 0, 5000);
  late.late = true;  // answered after its timeout: the client had given up
  Checks c = check({timed_out, late, missing_read(2, 0, 10)}, {holding(1, 9, 100, "d")});
  EXPECT_EQ(c.ops, 3u);
  EXPECT_EQ(c.answered, 1u);
  EXPECT_EQ(c.timeouts, 2u);
  EXPECT_EQ(c.writes_ok, 0u);
  EXPECT_EQ(c.lost_writes, 0u) << "the replica ends older than both, but neither was acknowledged in time";
}

TEST(Checkers, ALateReadStillCountsTowardsWhatTheNodesMayReport) {
  // The node served the read of write 10 at ~4500 while write 20 existed; the reply came late.
  Op late = read_op(1, 10, 100, 4000, 4500);
  late.late = true;
  std::vector<Op> h = {write_op(1, 10, 100, 0, 1000), write_op(1, 20, 200, 150, 3000), late};
  NodeReport a = holding(1, 20, 200, "d");
  a.stale_reads = 1;
  Checks c = check(h, {a});
  EXPECT_EQ(c.node_stale_possible, 1u);
  EXPECT_FALSE(c.nodes_stale_beyond_history);
  EXPECT_EQ(c.stale_reads, 0u) << "the history's own figure uses reads answered in time";
}

// The nodes count a read stale when a newer version had been written when it was served; the
// history bounds that count from above.
TEST(Checkers, NodesClaimingMoreStaleReadsThanTheHistoryAllowsFires) {
  // Write 20 (ts 200) exists before the read of write 10 is answered at 4500: one possible.
  std::vector<Op> h = {write_op(1, 10, 100, 0, 1000), write_op(1, 20, 200, 150, 3000),
                       read_op(1, 10, 100, 4000, 4500), read_op(1, 20, 200, 5000, 5100)};
  NodeReport a = holding(1, 20, 200, "d");
  a.stale_reads = 1;
  Checks c = check(h, {a});
  EXPECT_EQ(c.node_stale_possible, 1u);
  EXPECT_FALSE(c.nodes_stale_beyond_history);
  a.stale_reads = 2;
  c = check(h, {a});
  EXPECT_TRUE(c.nodes_stale_beyond_history);
}

TEST(Checkers, AVersionWrittenAfterTheReadWasAnsweredDoesNotMakeItPossiblyStale) {
  std::vector<Op> h = {write_op(1, 10, 100, 0, 1000), read_op(1, 10, 100, 1100, 1200),
                       write_op(1, 20, 5000, 5000, 5100)};
  EXPECT_EQ(check(h, {holding(1, 20, 5000, "d")}).node_stale_possible, 0u);
}

// bench_write replies carry no version: reads reveal it, and until then the wall clock at
// invocation is a floor the version cannot be below.
TEST(Checkers, BenchWriteVersionsAreLearnedFromReads) {
  Op seen = write_op(1, 10, kUnknown, 100, 200), unseen = write_op(1, 20, kUnknown, 300, 400);
  std::vector<Op> h = {seen, unseen, read_op(1, 10, 150, 500, 600)};
  EXPECT_EQ(learn_versions(h, {}), 1u) << "value 20 was never read";
  EXPECT_EQ(h[0].ts_us, 150);
  EXPECT_EQ(h[1].ts_us, kUnknown);
  Checks c = check(h, {holding(1, 10, 150, "d")});
  EXPECT_EQ(c.writes_unversioned, 1u);
  EXPECT_EQ(c.stale_reads, 1u) << "the read returned ts 150, older than write 20's floor (300)";
  EXPECT_EQ(c.lost_writes, 1u) << "the replica ends at ts 150, below write 20's floor";
}

TEST(Checkers, AnUnversionedWriteIsNotLostWhenTheReplicaMayHoldANewerVersion) {
  std::vector<Op> h = {write_op(1, 20, kUnknown, 300, 400)};
  learn_versions(h, {holding(1, 99, 350, "d")});
  EXPECT_EQ(check(h, {holding(1, 99, 350, "d")}).lost_writes, 0u)
      << "ts 350 is above write 20's floor: the history cannot tell it lost";
}

TEST(Checkers, ConvergenceMergesTheNodesHistograms) {
  NodeReport a, b;
  a.convergence.count = 3;
  a.convergence.histogram = {{100, 2}, {200, 1}};
  a.convergence.max = 200;
  b.convergence.count = 2;
  b.convergence.pending = 4;
  b.convergence.histogram = {{150, 1}, {900, 1}};
  b.convergence.max = 905;
  NodeConvergence m = merge_convergence({a, b});
  EXPECT_EQ(m.count, 5u);
  EXPECT_EQ(m.pending, 4u);
  std::vector<std::pair<std::int64_t, std::uint64_t>> want = {{100, 2}, {150, 1}, {200, 1}, {900, 1}};
  EXPECT_EQ(m.histogram, want);
  EXPECT_EQ(m.p50, 150) << "rank 3 of 5";
  EXPECT_EQ(m.max, 905);
  EXPECT_EQ(m.p99, 905) << "the top rank is the exact max, not its bucket";
}

TEST(Checkers, AKilledLifesFiguresJoinButNotItsPendingWrites) {
  NodeReport a;
  a.convergence.count = 1;
  a.convergence.pending = 1;
  a.convergence.histogram = {{100, 1}};
  a.convergence.max = 100;
  NodeConvergence dead;
  dead.count = 2;
  dead.pending = 7;
  dead.unmeasured = 3;
  dead.histogram = {{300, 2}};
  dead.max = 310;
  NodeConvergence m = merge_convergence({a}, {dead});
  EXPECT_EQ(m.count, 3u);
  EXPECT_EQ(m.pending, 1u) << "what the killed life had pending died with it";
  EXPECT_EQ(m.unmeasured, 0u);
  EXPECT_EQ(m.p50, 300);
  EXPECT_EQ(m.max, 310);
}

TEST(Checkers, PercentilesUseTheNearestRank) {
  EXPECT_EQ(percentile({}, 0.5), 0);
  EXPECT_EQ(percentile({5, 1, 3, 2, 4}, 0.5), 3);
  EXPECT_EQ(percentile({5, 1, 3, 2, 4}, 1.0), 5);
  Summary s = summarize({10, 20, 30, 40});
  EXPECT_EQ(s.count, 4u);
  EXPECT_EQ(s.p50, 20);
  EXPECT_EQ(s.max, 40);
}

TEST(Checkers, AWriteBelowOneAcknowledgedBeforeItIsHiddenByIt) {
  // Write 10 (version 5000, a clock ahead) was acknowledged at 1000; write 20, invoked at 2000,
  // got version 3000 (a clock behind): last-writer-wins keeps 10. Write 30, invoked while 10
  // was in flight, is concurrent with it and hidden by nothing.
  std::vector<Op> h = {write_op(1, 10, 5000, 0, 1000), write_op(1, 20, 3000, 2000, 2100),
                       write_op(1, 30, 4000, 500, 600)};
  Checks c = check(h, {holding(1, 10, 5000, "d")});
  EXPECT_EQ(c.overwritten_by_older, 1u);
  EXPECT_EQ(c.lost_writes, 0u) << "a replica holding a newer version has lost nothing";
  std::vector<Op> ordered = {write_op(1, 10, 100, 0, 1000), write_op(1, 20, 3000, 2000, 2100)};
  EXPECT_EQ(check(ordered, {holding(1, 20, 3000, "d")}).overwritten_by_older, 0u);
}

TEST(Checkers, WritesLostWithACrashedNodeAreNotProtocolLosses) {
  Op lost = write_op(1, 20, 3000, 2000, 2100);
  lost.lost_with_crash = true;
  std::vector<Op> h = {write_op(1, 10, 100, 0, 1000), lost};
  Checks c = check(h, {holding(1, 10, 100, "d")});
  EXPECT_EQ(c.lost_writes, 0u);
  EXPECT_EQ(c.lost_with_crash, 1u);
  std::vector<Op> read_after = h;
  read_after.push_back(read_op(1, 10, 100, 5000, 5100));  // misses the lost write
  EXPECT_EQ(check(read_after, {holding(1, 10, 100, "d")}).stale_reads, 0u) << "the crash's, not staleness";
  h[1].lost_with_crash = false;
  EXPECT_EQ(check(h, {holding(1, 10, 100, "d")}).lost_writes, 1u) << "unmarked, the same write is lost";
}

}  // namespace
}  // namespace gossip_bench
