// Convergence by polling reads: a write converges when every node has shown it, or a write of
// its key that was invoked after it was acknowledged; a concurrent write shows nothing.
#include <gtest/gtest.h>

#include "poll_observer.h"

namespace gossip_bench {
namespace {

Op write_at(int node, std::int64_t key, std::int64_t value, std::int64_t invoke_us, std::int64_t complete_us) {
  Op op;
  op.node = node;
  op.key = key;
  op.value = value;
  op.invoke_us = invoke_us;
  op.complete_us = complete_us;
  op.outcome = Op::Outcome::kOk;
  return op;
}

TEST(PollObserver, AWriteConvergesWhenEveryNodeHasShownIt) {
  std::vector<Op> h = {write_at(1, 7, 100, 1'000, 2'000)};
  PollObserver p(3, &h);
  p.on_issued(0);
  p.on_acked(0, 2'000);
  auto due = p.polls_due();
  EXPECT_EQ(due, (std::vector<std::pair<int, std::int64_t>>{{2, 7}, {3, 7}})) << "its own node holds it";
  EXPECT_TRUE(p.polls_due().empty()) << "one read in flight per node and key";
  p.on_answer(2, 7, 100, 50'000);
  p.on_answer(3, 7, kUnknown, 60'000);  // not there yet
  EXPECT_EQ(p.unconverged(), 1u);
  EXPECT_EQ(p.polls_due(), (std::vector<std::pair<int, std::int64_t>>{{3, 7}}));
  p.on_answer(3, 7, 100, 121'000);
  ASSERT_EQ(p.converged_ms().size(), 1u);
  EXPECT_EQ(p.converged_ms()[0], 120) << "from the invocation";
  EXPECT_TRUE(p.idle());
}

TEST(PollObserver, ALaterWriteStandsForItButAConcurrentOneDoesNot) {
  std::vector<Op> h = {write_at(1, 7, 100, 1'000, 2'000), write_at(2, 7, 200, 1'500, 2'500),
                       write_at(2, 7, 300, 3'000, 3'100)};
  PollObserver p(2, &h);
  for (std::size_t i = 0; i < h.size(); ++i) p.on_issued(i);
  p.on_acked(0, 2'000);
  p.polls_due();
  p.on_answer(2, 7, 200, 10'000);  // invoked before write 100 was acknowledged: concurrent
  EXPECT_EQ(p.unconverged(), 1u);
  p.polls_due();
  p.on_answer(2, 7, 300, 20'000);  // invoked after: n2 has moved past write 100
  EXPECT_EQ(p.unconverged(), 0u);
}

TEST(PollObserver, AKilledNodeMustShowTheWriteAgain) {
  std::vector<Op> h = {write_at(1, 7, 100, 1'000, 2'000)};
  PollObserver p(3, &h);
  p.on_issued(0);
  p.on_acked(0, 2'000);
  p.polls_due();
  p.on_answer(2, 7, 100, 10'000);
  p.on_killed({2});  // n2 restarts empty
  EXPECT_EQ(p.polls_due(), (std::vector<std::pair<int, std::int64_t>>{{2, 7}})) << "n2 again (n3's read is in flight)";
  p.on_answer(3, 7, 100, 20'000);
  EXPECT_EQ(p.unconverged(), 1u) << "n2 has not shown it since its restart";
  p.on_answer(2, 7, 100, 30'000);
  EXPECT_EQ(p.unconverged(), 0u);
  EXPECT_EQ(p.converged_at(0), 30'000);
}

TEST(PollObserver, AWriteOnlyItsKilledNodeShowedIsLostWithTheCrash) {
  std::vector<Op> h = {write_at(1, 7, 100, 1'000, 2'000), write_at(1, 8, 200, 1'000, 2'000)};
  PollObserver p(2, &h);
  for (std::size_t i = 0; i < h.size(); ++i) {
    p.on_issued(i);
    p.on_acked(i, 2'000);
  }
  p.on_killed({1});
  EXPECT_TRUE(p.idle()) << "nothing left to wait for but crash losses";
  EXPECT_EQ(p.unconverged(), 0u);
  EXPECT_EQ(p.lost_with_crash().size(), 2u);
  p.polls_due();
  p.on_answer(2, 8, 200, 5'000);  // a message in flight delivered key 8's write after all
  EXPECT_EQ(p.lost_with_crash(), std::vector<std::size_t>{0});
  EXPECT_EQ(p.unconverged(), 1u) << "the restarted n1 must show it";
  h.push_back(write_at(2, 7, 300, 3'000, 3'100));  // a later write of key 7 saves nothing
  p.on_issued(2);
  p.polls_due();
  p.on_answer(2, 7, 300, 6'000);
  EXPECT_EQ(p.lost_with_crash(), std::vector<std::size_t>{0});
}

TEST(PollObserver, AWriteEveryNodeShowsAConcurrentOneForIsSettledWithoutAFigure) {
  // Write 200 was invoked before write 100 was acknowledged: last-writer-wins may keep either.
  std::vector<Op> h = {write_at(1, 7, 100, 1'000, 2'000), write_at(2, 7, 200, 1'500, 2'500)};
  PollObserver p(2, &h);
  for (std::size_t i = 0; i < h.size(); ++i) p.on_issued(i);
  p.on_acked(0, 2'000);
  p.polls_due();
  p.on_answer(2, 7, 200, 10'000);
  EXPECT_EQ(p.unconverged(), 1u) << "n1 has not shown 200 yet";
  p.polls_due();
  p.on_answer(1, 7, 200, 20'000);
  EXPECT_TRUE(p.idle());
  EXPECT_TRUE(p.converged_ms().empty()) << "superseded, not converged";
}

}  // namespace
}  // namespace gossip_bench
