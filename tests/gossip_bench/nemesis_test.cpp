// The nemesis's faults have the shapes Jepsen gives them, for every cluster size.
#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "nemesis.h"

namespace gossip_bench {
namespace {

// Who each node hears (receives from), itself included.
std::vector<std::set<int>> hearing(const Fault& f) {
  std::vector<std::set<int>> h(static_cast<std::size_t>(f.nodes()) + 1);
  for (int to = 1; to <= f.nodes(); ++to) {
    for (int from = 1; from <= f.nodes(); ++from) {
      if (from == to || !f.drops(from, to)) h[static_cast<std::size_t>(to)].insert(from);
    }
  }
  return h;
}

bool symmetric(const Fault& f) {
  for (int a = 1; a <= f.nodes(); ++a) {
    for (int b = 1; b <= f.nodes(); ++b) {
      if (f.drops(a, b) != f.drops(b, a)) return false;
    }
  }
  return true;
}

TEST(Nemesis, OneIsolatesExactlyOneNodeBothWays) {
  std::mt19937_64 rng(7);
  for (int n = 2; n <= 9; ++n) {
    Fault f = make_fault(FaultKind::kOne, n, rng);
    auto h = hearing(f);
    int isolated = 0;
    for (int i = 1; i <= n; ++i) {
      if (h[static_cast<std::size_t>(i)].size() == 1) ++isolated;
      else EXPECT_EQ(h[static_cast<std::size_t>(i)].size(), static_cast<std::size_t>(n - 1)) << "n=" << n;
    }
    EXPECT_EQ(isolated, n == 2 ? 2 : 1) << "n=" << n;
    EXPECT_TRUE(symmetric(f));
  }
}

TEST(Nemesis, MajoritySplitsAMinorityFromTheRestBothWays) {
  std::mt19937_64 rng(7);
  for (int n = 2; n <= 9; ++n) {
    Fault f = make_fault(FaultKind::kMajority, n, rng);
    auto h = hearing(f);
    std::multiset<std::size_t> sizes;
    for (int i = 1; i <= n; ++i) sizes.insert(h[static_cast<std::size_t>(i)].size());
    auto minority = static_cast<std::size_t>(n / 2), majority = static_cast<std::size_t>(n - n / 2);
    EXPECT_EQ(sizes.count(minority) + (minority == majority ? 0 : sizes.count(majority)), static_cast<std::size_t>(n))
        << "every node is on one side, n=" << n;
    EXPECT_TRUE(symmetric(f));
    EXPECT_TRUE(f.cuts_anything());
  }
}

TEST(Nemesis, MajoritiesRingLetsEveryNodeHearADifferentMajority) {
  std::mt19937_64 rng(7);
  for (int n = 3; n <= 11; ++n) {
    Fault f = make_fault(FaultKind::kMajoritiesRing, n, rng);
    auto h = hearing(f);
    std::set<std::set<int>> distinct;
    for (int i = 1; i <= n; ++i) {
      EXPECT_EQ(h[static_cast<std::size_t>(i)].size(), static_cast<std::size_t>(n / 2 + 1)) << "n=" << n;
      EXPECT_TRUE(h[static_cast<std::size_t>(i)].count(i));
      distinct.insert(h[static_cast<std::size_t>(i)]);
    }
    EXPECT_EQ(distinct.size(), static_cast<std::size_t>(n)) << "no two nodes hear the same majority, n=" << n;
    EXPECT_TRUE(f.cuts_anything());
  }
  EXPECT_FALSE(make_fault(FaultKind::kMajoritiesRing, 2, rng).cuts_anything()) << "two nodes: the majority is both";
}

TEST(Nemesis, OneNodeClustersHaveNothingToCut) {
  std::mt19937_64 rng(1);
  for (FaultKind k : {FaultKind::kOne, FaultKind::kMajority, FaultKind::kMajoritiesRing}) {
    EXPECT_FALSE(make_fault(k, 1, rng).cuts_anything());
  }
}

TEST(Nemesis, TheSameSeedGivesTheSameFaults) {
  std::mt19937_64 a(42), b(42);
  for (FaultKind k : {FaultKind::kOne, FaultKind::kMajority, FaultKind::kMajoritiesRing}) {
    EXPECT_EQ(make_fault(k, 7, a).description, make_fault(k, 7, b).description);
  }
}

TEST(Nemesis, PausesStopOneNodeOrAMinorityAndCutNothing) {
  std::mt19937_64 rng(7);
  for (int n = 2; n <= 9; ++n) {
    Fault one = make_pause(PauseKind::kOne, n, rng);
    Fault minority = make_pause(PauseKind::kMinority, n, rng);
    EXPECT_EQ(one.paused.size(), 1u) << "n=" << n;
    EXPECT_EQ(minority.paused.size(), static_cast<std::size_t>(std::max(1, (n - 1) / 2))) << "n=" << n;
    EXPECT_LT(2 * minority.paused.size(), static_cast<std::size_t>(n) + (n == 2 ? 1u : 0u))
        << "a majority keeps running, n=" << n;
    for (const Fault* f : {&one, &minority}) {
      EXPECT_TRUE(std::is_sorted(f->paused.begin(), f->paused.end()));
      EXPECT_EQ(std::set<int>(f->paused.begin(), f->paused.end()).size(), f->paused.size()) << "distinct";
      for (int node : f->paused) EXPECT_TRUE(node >= 1 && node <= n);
      EXPECT_FALSE(f->cuts_anything());
      EXPECT_TRUE(f->does_anything());
      EXPECT_EQ(f->kind, "pause");
    }
  }
  EXPECT_FALSE(make_pause(PauseKind::kOne, 1, rng).does_anything()) << "the only node is never paused";
}

TEST(Nemesis, KillsTakeThePauseTargetsAndPauseNothing) {
  std::mt19937_64 a(9), b(9);
  Fault kill = make_kill(PauseKind::kMinority, 7, a);
  Fault pause = make_pause(PauseKind::kMinority, 7, b);
  EXPECT_EQ(kill.killed, pause.paused) << "the same seed picks the same nodes";
  EXPECT_EQ(kill.killed.size(), 3u);
  EXPECT_TRUE(kill.paused.empty());
  EXPECT_FALSE(kill.cuts_anything());
  EXPECT_TRUE(kill.does_anything());
  EXPECT_EQ(kill.kind, "kill");
  EXPECT_FALSE(make_kill(PauseKind::kOne, 1, a).does_anything()) << "the only node is never killed";
}

TEST(Nemesis, LossAndDuplicationTouchEveryLinkAndCutNone) {
  Fault loss = make_loss(0.25, 5), dup = make_duplicate(0.5, 5);
  EXPECT_EQ(loss.loss, 0.25);
  EXPECT_EQ(loss.duplicate, 0.0);
  EXPECT_EQ(dup.duplicate, 0.5);
  EXPECT_EQ(dup.loss, 0.0);
  for (const Fault* f : {&loss, &dup}) {
    EXPECT_FALSE(f->cuts_anything());
    EXPECT_TRUE(f->paused.empty());
    EXPECT_TRUE(f->does_anything());
  }
  EXPECT_EQ(loss.description, "25% of messages lost");
  EXPECT_FALSE(make_loss(0.0, 5).does_anything()) << "a loss of 0 is no fault";
}

}  // namespace
}  // namespace gossip_bench
