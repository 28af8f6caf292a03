// The VOPR in CI (tests/sim/vopr.h): a few hundred seeds of each fault mix, exact replay, and
// proof that each invariant catches a deliberately broken model.
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

// Every seed of `faults` keeps the invariants on data: I1 (every acknowledged write on every
// live replica, or a newer version of its key), I2 (identical digests), I5 (only written
// values), I7 (line limit). I3 (figures never early) and I6 (acknowledgements true when sent)
// are about the convergence measurement, which still fails under some faults (below);
// I4 (exact counters) is left out for the full mix only (docs/SIMULATION.md).
void expect_data_safe(std::uint32_t faults, std::uint64_t count, bool counters_exact) {
  VoprOptions o;
  o.faults = faults;
  int failed = 0;
  for (std::uint64_t seed : seeds(count)) {
    VoprResult r = run_vopr_seed(seed, o);
    bool safe = !has(r, "I1") && !has(r, "I2") && !has(r, "I5") && !has(r, "I7") &&
                !(counters_exact && has(r, "I4"));
    EXPECT_TRUE(safe) << explain(r) << "\n  replay: GOSSIP_VOPR_SEED=" << seed
                      << " build/bin/gossip-vopr --faults " << fault_names(faults);
    if (!safe && ++failed >= 5) return;
  }
}

// Loss, duplication, reordering, partitions, pauses, clock skew and bursts, in every
// combination: every invariant, figures and acknowledgements included.
TEST(Vopr, NetworkFaultsKeepEveryInvariant) { expect_clean(kNetworkFaults, 400); }
TEST(Vopr, PartitionsDuringBurstsKeepEveryInvariant) { expect_clean(kBurstFaults | kCutFaults, 300); }
// Malformed peer input on top of the network's faults: rejected whole, counted exactly.
TEST(Vopr, MalformedInputUnderNetworkFaultsKeepsEveryInvariant) {
  expect_clean(kNetworkFaults | kCrashInput | kRange | kGarbage, 200);
}

// Seeds where a node restarted with its clock behind its earlier life's versions, and peers
// that had not learned the new floor went on reporting the earlier life's chain: those spans
// covered writes of the new life they lacked (I6). Acknowledgements now name their life.
TEST(Vopr, OverlappingLivesKeepEveryInvariant) {
  VoprOptions o;
  o.faults = kAllFaults & ~(kForge | kInject);
  for (std::uint64_t seed : {1435u, 70020u, 73984u, 75416u}) {  // 75416: docs/SIMULATION.md
    VoprResult r = run_vopr_seed(seed, o);
    // I6 passes over spans that name another life (the engine ignores them:
    // GossipEngine.ARestartedNodeDoesNotCountReportsOnItsEarlierLife), so this fails when a
    // sender names the wrong life or none.
    EXPECT_TRUE(r.ok()) << explain(r) << "\n  replay: GOSSIP_VOPR_SEED=" << seed
                        << " build/bin/gossip-vopr --faults all-forge,inject";
  }
}

// The seeds where an origin settled a figure with the report of a replica's earlier life,
// killed before the last replica held the write (I3): a figure now waits for proof that each
// reporting life outlived the write's completion (docs/SIMULATION.md). Seeds pin trajectories,
// so a later change to the engine may move the shape off them; the search finds it again.
TEST(Vopr, AFigureNeverCountsALifeKilledBeforeTheWriteWasEverywhere) {
  VoprOptions o;
  o.faults = kAllFaults & ~(kForge | kInject);
  for (std::uint64_t seed : {1116u, 1212u, 3947u, 70123u, 71638u, 71897u, 72024u, 72732u, 74263u, 74537u}) {
    VoprResult r = run_vopr_seed(seed, o);
    EXPECT_TRUE(r.ok()) << explain(r) << "\n  replay: GOSSIP_VOPR_SEED=" << seed
                        << " build/bin/gossip-vopr --faults all-forge,inject";
  }
}

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
  // With the safety net, dropped deltas lose no data (I1 and I2 hold); without it they do.
  for (const Case& c : {Case{Breakage::kDropDelta, {"I4", "I6"}},
                        Case{Breakage::kDropDeltaNoNet, {"I1", "I2", "I4"}},
                        Case{Breakage::kCorruptLine, {"I5"}},
                        Case{Breakage::kLateTaken, {"I3"}},
                        Case{Breakage::kDoubleLine, {"I4"}},
                        // The histogram is whole; only write by write do figures go wrong.
                        Case{Breakage::kSwappedFigures, {"I3"}}}) {
    SCOPED_TRACE(breakage_name(c.breakage));
    VoprOptions broken;
    broken.faults = kBurstFaults | kCutFaults;
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

// No acknowledged write lost, replicas identical, under every fault class: the content
// anti-entropy repairs whatever the fast path lost, was lied to about, or forgot in a restart.
TEST(Vopr, NetworkFaultsLoseNoWrite) { expect_data_safe(kNetworkFaults, 300, true); }
TEST(Vopr, RestartedNodesLoseNoWrite) { expect_data_safe(kRestart | kNetworkFaults, 200, true); }
TEST(Vopr, ForgedWatermarksLoseNoWrite) { expect_data_safe(kForge | kNetworkFaults, 200, true); }
TEST(Vopr, FullMixLosesNoWrite) { expect_data_safe(kAllFaults, 300, false); }
// Malformed peer input is rejected whole, counted exactly, and changes nothing.
TEST(Vopr, MalformedPeerInputIsIgnoredAndCounted) {
  expect_clean(kCrashInput | kRange | kGarbage | kInject, 200);
}

// A node killed and restarted empty, then writing again: its new life starts at a floor its
// pushes and digests carry, so no peer acknowledges its earlier life's writes as held and no
// report from a dead life counts for another node's figure.
TEST(Vopr, RestartedNodeKeepsEveryInvariant) { expect_clean(kRestart, 300); }
// Fail today on I3/I6: a lying peer (forged watermarks and spans, or fabricated writes with a
// plausible version) makes honest nodes vouch for writes they lack; a watermark is a claim
// and nothing authenticates it. Data is safe (ForgedWatermarksLoseNoWrite, FullMixLosesNoWrite).
TEST(Vopr, DISABLED_ForgedWatermarksKeepEveryInvariant) { expect_clean(kForge, 200); }
TEST(Vopr, DISABLED_FullMixKeepsEveryInvariant) { expect_clean(kAllFaults, 400); }

}  // namespace
}  // namespace gossip_kv::sim
