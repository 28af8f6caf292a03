// The router's envelope scanner and gossip-bench's option parsing.
#include <gtest/gtest.h>

#include "envelope.h"
#include "options.h"

namespace gossip_bench {
namespace {

TEST(Envelope, FindsDestWhereverItIs) {
  EXPECT_EQ(top_level_string(R"({"src":"n1","dest":"n2","body":{}})", "dest"), "n2");
  EXPECT_EQ(top_level_string(R"({ "body" : {"dest":"x","a":[1,{"b":"}"}]}, "src": "n1", "dest" : "c7" })", "dest"), "c7")
      << "nested members and braces inside strings are skipped";
  EXPECT_EQ(top_level_string(R"({"src":"n\"1","dest":"n3"})", "dest"), "n3") << "escaped quotes";
  EXPECT_EQ(top_level_string(R"({"n":12.5e3,"t":true,"u":null,"dest":"n4"})", "dest"), "n4");
}

TEST(Envelope, MalformedOrMissingGivesNothing) {
  for (const char* line : {"", "[]", "{", R"({"dest":5})", R"({"src":"n1"})", R"({"dest":"n1)", "not json",
                           R"({"body":{"x":"unterminated},"dest":"n2"})"}) {
    EXPECT_FALSE(top_level_string(line, "dest").has_value()) << line;
  }
}

TEST(Envelope, NodeNumbers) {
  EXPECT_EQ(node_number("n1"), 1);
  EXPECT_EQ(node_number("n25"), 25);
  for (const char* id : {"c1", "n", "n0", "nx", "n1x", "", "n-1"}) EXPECT_EQ(node_number(id), 0) << id;
}

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

TEST(Options, BadValuesAreUsageErrors) {
  for (std::vector<std::string> bad : {std::vector<std::string>{"--concurrency", "x"}, {"--concurrency", "0"},
                                       {"--nemesis-targets", "bridge"}, {"--compare", "normal,chaos"},
                                       {"--node-count", "0"}, {"--read-fraction", "1.5"}}) {
    Options o;
    testing::internal::CaptureStderr();
    int rc = parse(bad, &o);
    testing::internal::GetCapturedStderr();
    EXPECT_NE(rc, -1) << bad[0] << " " << bad[1];
    EXPECT_NE(rc, 0) << bad[0] << " " << bad[1];
  }
}

}  // namespace
}  // namespace gossip_bench
