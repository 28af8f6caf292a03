// The VOPR in CI (tests/sim/vopr.h): a few hundred seeds of the faults the engine survives
// today, exact replay, and proof that each invariant catches a deliberately broken model.
// The DISABLED_ tests are the cases that fail today (docs/SIMULATION.md lists their seeds);
// enable each when its fix lands. GOSSIP_VOPR_SEED=<n> runs every test on that seed alone.
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "vopr.h"

namespace gossip_kv::sim {
namespace {

std::vector<std::uint64_t> seeds(std::uint64_t count) {
  if (const char* s = std::getenv("GOSSIP_VOPR_SEED")) return {std::strtoull(s, nullptr, 10)};
  std::vector<std::uint64_t> out;
  for (std::uint64_t i = 1; i <= count; ++i) out.push_back(i);
  return out;
}

std::string explain(const VoprResult& r) {
  std::string s = r.mix;
  for (const std::string& v : r.violations) s += "\n  " + v;
  return s;
}

bool has(const VoprResult& r, const std::string& id) {
  for (const std::string& f : r.failed) {
    if (f == id) return true;
  }
  return false;
}

// Every seed of `faults` keeps every invariant.
void expect_clean(std::uint32_t faults, std::uint64_t count) {
  VoprOptions o;
  o.faults = faults;
  int failed = 0;
  for (std::uint64_t seed : seeds(count)) {
    VoprResult r = run_vopr_seed(seed, o);
    EXPECT_TRUE(r.ok()) << explain(r) << "\n  replay: GOSSIP_VOPR_SEED=" << seed
                        << " build/bin/gossip-vopr --faults " << fault_names(faults);
    if (!r.ok() && ++failed >= 5) return;  // enough to go on
  }
}

TEST(Vopr, BurstsPausesSkewKeepEveryInvariant) { expect_clean(kTodayBursts, 400); }
TEST(Vopr, PartitionsPausesSkewKeepEveryInvariant) { expect_clean(kTodayCuts, 400); }

TEST(Vopr, ReplaysASeedExactly) {
  VoprOptions o;
  o.faults = kAllFaults & ~kCrashInput;
  for (std::uint64_t seed : {7u, 18u}) {
    VoprResult a = run_vopr_seed(seed, o);
    VoprResult b = run_vopr_seed(seed, o);
    EXPECT_EQ(a.mix, b.mix);
    EXPECT_EQ(a.violations, b.violations);
    EXPECT_EQ(a.writes_acked, b.writes_acked);
    EXPECT_EQ(a.messages, b.messages);
    EXPECT_EQ(a.delta_waits, b.delta_waits);
    EXPECT_EQ(a.injected, b.injected);
    EXPECT_GT(a.writes_acked, 0u);
  }
}

// Each broken model fails the invariants named, on a seed the intact model passes.
TEST(Vopr, CatchesEachBrokenModel) {
  struct Case {
    Breakage breakage;
    std::vector<std::string> caught_by;
  };
  for (const Case& c : {Case{Breakage::kDropDelta, {"I1", "I2", "I4", "I6"}},
                        Case{Breakage::kCorruptLine, {"I2", "I5"}},
                        Case{Breakage::kLateTaken, {"I3"}},
                        Case{Breakage::kDoubleLine, {"I4"}}}) {
    SCOPED_TRACE(breakage_name(c.breakage));
    VoprOptions broken;
    broken.faults = kTodayBursts | kTodayCuts;
    broken.breakage = c.breakage;
    bool found = false;
    for (std::uint64_t seed = 1; seed <= 150 && !found; ++seed) {
      VoprResult r = run_vopr_seed(seed, broken);
      if (r.ok()) continue;
      VoprOptions intact = broken;
      intact.breakage = Breakage::kNone;
      VoprResult clean = run_vopr_seed(seed, intact);
      if (!clean.ok()) continue;  // a seed the intact engine fails today proves nothing
      found = true;
      for (const std::string& id : c.caught_by) EXPECT_TRUE(has(r, id)) << id << " missed: " << explain(r);
    }
    EXPECT_TRUE(found) << "no seed of 150 caught it";
  }
}

// Fail today: loss, reordering, or a partition during a burst. A push carries entries above its
// span's end; the next push's span covers them without carrying them, so when the first push
// is lost or late the receiver vouches for (and acknowledges) writes it does not hold.
TEST(Vopr, DISABLED_PartitionsDuringBurstsKeepEveryInvariant) { expect_clean(kTodayBursts | kTodayCuts, 1000); }
TEST(Vopr, DISABLED_NetworkFaultsKeepEveryInvariant) { expect_clean(kNetworkFaults, 400); }
TEST(Vopr, DISABLED_FullMixKeepsEveryInvariant) { expect_clean(kAllFaults, 400); }
// Fail today: a node restarted empty that writes again never gets its older writes back.
TEST(Vopr, DISABLED_RestartedNodeGetsItsWritesBack) { expect_clean(kRestart, 200); }
// Fail today: a forged watermark or span makes a receiver stop repairing that origin.
TEST(Vopr, DISABLED_ForgedWatermarksDoNotStopRepair) { expect_clean(kForge, 200); }
// Fail today (some crash the process: the signal handler prints the seed): malformed input.
TEST(Vopr, DISABLED_MalformedPeerInputIsIgnoredAndCounted) {
  expect_clean(kCrashInput | kRange | kGarbage | kInject, 200);
}
TEST(Vopr, DISABLED_MalformedPeerInputThatDoesNotCrashToday) {
  expect_clean(kRange | kGarbage | kInject, 200);
}

}  // namespace
}  // namespace gossip_kv::sim
