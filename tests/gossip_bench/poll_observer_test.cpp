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

TEST(PollObserver, PollsOfAKilledNodeAreForgotten) {
  std::vector<Op> h = {write_at(1, 7, 100, 1'000, 2'000)};
  PollObserver p(2, &h);
  p.on_issued(0);
  p.on_acked(0, 2'000);
  EXPECT_EQ(p.polls_due().size(), 1u);
  EXPECT_TRUE(p.polls_due().empty());
  p.forget_polls_of(2);
  EXPECT_EQ(p.polls_due().size(), 1u) << "asked again once its node is back";
}

}  // namespace
}  // namespace gossip_bench
