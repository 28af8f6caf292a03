// gossip-bench's flags: Maelstrom's forms, and usage errors for what cannot be run.
#include <gtest/gtest.h>

#include "options.h"

namespace gossip_bench {
namespace {

int parse(std::vector<std::string> args, Options* o) {
  args.insert(args.begin(), "gossip-bench");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return parse_options(static_cast<int>(argv.size()), argv.data(), o);
}

TEST(Options, MaelstromStyleConcurrencyAndTargets) {
  Options o;
  ASSERT_EQ(parse({"--node-count", "4", "--concurrency", "2n", "--nemesis-targets", "majorities-ring,one",
                   "--write-type", "bench_write", "--latency-dist", "exponential"}, &o), -1);
  EXPECT_EQ(o.concurrency, 8);
  EXPECT_EQ(o.fault_kinds, (std::vector<FaultKind>{FaultKind::kMajoritiesRing, FaultKind::kOne}));
  EXPECT_EQ(o.write_type, WriteType::kBenchWrite);
  EXPECT_EQ(o.latency_dist, LatencyDist::kExponential);
  EXPECT_FALSE(o.bin.empty()) << "defaults to the node next to the runner";
}

TEST(Options, NemesisNoneRunsOnlyTheNormalCondition) {
  Options o;
  ASSERT_EQ(parse({"--nemesis", "none"}, &o), -1);
  EXPECT_EQ(o.conditions, std::vector<std::string>{"normal"});
  Options p;
  EXPECT_EQ(parse({"--nemesis", "none", "--compare", "partition"}, &p), 2) << "nothing left to run";
}

TEST(Options, NemesisListsTheFaultConditionsBesidesNormal) {
  Options o;
  ASSERT_EQ(parse({"--nemesis", "pause,loss"}, &o), -1);
  EXPECT_EQ(o.conditions, (std::vector<std::string>{"normal", "pause", "loss"}));
  Options all;
  ASSERT_EQ(parse({"--nemesis", "all"}, &all), -1);
  std::vector<std::string> every{"normal"};
  every.insert(every.end(), kFaultConditions.begin(), kFaultConditions.end());
  EXPECT_EQ(all.conditions, every);
  Options compare;
  ASSERT_EQ(parse({"--compare", "duplicate,normal", "--loss", "0.5", "--pause-targets", "minority"}, &compare), -1);
  EXPECT_EQ(compare.conditions, (std::vector<std::string>{"duplicate", "normal"})) << "--compare alone sets the order";
  EXPECT_EQ(compare.loss, 0.5);
  EXPECT_EQ(compare.pause_kinds, std::vector<PauseKind>{PauseKind::kMinority});
  EXPECT_EQ(compare.kill_kinds, std::vector<PauseKind>{PauseKind::kOne}) << "kills take one node by default";
  Options both;
  ASSERT_EQ(parse({"--nemesis", "pause", "--compare", "pause,normal,partition"}, &both), -1);
  EXPECT_EQ(both.conditions, (std::vector<std::string>{"pause", "normal"})) << "--nemesis filters --compare";
}

TEST(Options, SweepTakesANameAndItsValues) {
  Options o;
  ASSERT_EQ(parse({"--sweep", "gossip-interval-ms=25,50,100", "--sweep-profiles", "fast,frugal"}, &o), -1);
  EXPECT_EQ(o.sweep_name, "gossip-interval-ms");
  EXPECT_EQ(o.sweep_values, (std::vector<std::string>{"25", "50", "100"}));
  EXPECT_EQ(o.sweep_profiles, (std::vector<std::string>{"fast", "frugal"}));
  Options n;
  ASSERT_EQ(parse({"--sweep", "node-count=5,25"}, &n), -1);
  EXPECT_EQ(n.sweep_values.size(), 2u);
}

TEST(Options, BadValuesAreUsageErrors) {
  for (std::vector<std::string> bad : {std::vector<std::string>{"--concurrency", "x"}, {"--concurrency", "0"},
                                       {"--nemesis-targets", "bridge"}, {"--compare", "normal,chaos"},
                                       {"--node-count", "0"}, {"--read-fraction", "1.5"}, {"--nemesis", "chaos"},
                                       {"--pause-targets", "majority"}, {"--kill-targets", ""}, {"--loss", "2"}, {"--duplicate", "-0.1"},
                                       {"--sweep", "rate"}, {"--sweep", "=1"}, {"--sweep", "node-count=0,5"},
                                       {"--sweep", "latency=x"}, {"--sweep", "Bad_Name=1"}, {"--sweep-profiles", "fast"}}) {
    Options o;
    testing::internal::CaptureStderr();
    int rc = parse(bad, &o);
    testing::internal::GetCapturedStderr();
    EXPECT_NE(rc, -1) << bad[0] << " " << bad[1];
    EXPECT_NE(rc, 0) << bad[0] << " " << bad[1];
  }
}

TEST(Options, AHistoryTooLargeToKeepIsAUsageError) {
  Options o;
  testing::internal::CaptureStderr();
  EXPECT_EQ(parse({"--rate", "100000", "--time-limit", "3600"}, &o), 2);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("10,000,000"), std::string::npos);
}

}  // namespace
}  // namespace gossip_bench
