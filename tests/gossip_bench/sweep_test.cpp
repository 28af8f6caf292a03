// Sweeps: each point's options are the base with the swept value in place, and a profile of
// --sweep-profiles replaces the one in --node-args.
#include <gtest/gtest.h>

#include "options.h"
#include "sweep.h"

namespace gossip_bench {
namespace {

Options swept(const std::string& name, const std::string& node_args) {
  Options o;
  o.sweep_name = name;
  o.sweep_values = {"25", "50"};
  o.node_args = node_args;
  return o;
}

TEST(Sweep, ANodeFlagReplacesTheSameFlagInTheNodeArgs) {
  Options base = swept("gossip-interval-ms", "--profile fast --gossip-interval-ms 80 --relays 1");
  Options p = sweep_point_options(base, "", "25");
  EXPECT_EQ(p.node_args, "--profile fast --relays 1 --gossip-interval-ms 25");
  EXPECT_TRUE(p.sweep_name.empty()) << "a point is a plain run";
  EXPECT_EQ(sweep_point_folder(base, "", "25"), "gossip-interval-ms=25");
  Options eq = sweep_point_options(swept("relays", "--relays=3"), "", "2");
  EXPECT_EQ(eq.node_args, "--relays 2") << "the --flag=value form is replaced too";
}

TEST(Sweep, AProfileReplacesTheProfileInTheNodeArgs) {
  Options base = swept("gossip-interval-ms", "--profile fast --ack-delay-max-ms 300");
  Options p = sweep_point_options(base, "frugal", "50");
  EXPECT_EQ(p.node_args, "--profile frugal --ack-delay-max-ms 300 --gossip-interval-ms 50")
      << "the profile first, so that explicit flags still win";
  EXPECT_EQ(sweep_point_folder(base, "frugal", "50"), "frugal-gossip-interval-ms=50");
}

TEST(Sweep, RunnerFlagsSetTheRunnersOptions) {
  Options nodes = sweep_point_options(swept("node-count", "--profile fast"), "", "25");
  EXPECT_EQ(nodes.node_count, 25);
  EXPECT_EQ(nodes.node_args, "--profile fast");
  EXPECT_DOUBLE_EQ(sweep_point_options(swept("rate", ""), "", "250").rate, 250.0);
  EXPECT_DOUBLE_EQ(sweep_point_options(swept("latency", ""), "", "40").latency_ms, 40.0);
}

TEST(Sweep, APointSummarizesEachConditionFromTheRoutersFigures) {
  ConditionRun r;
  r.condition = "normal";
  r.load_msgs = 300;
  r.checks.ops = 100;
  r.checks.writes_ok = 50;
  r.observed = true;
  r.observed_ms = {100, 200, 300};
  r.identical_after_ms = 400;
  Options point;
  point.node_count = 7;
  auto points = summarize_sweep_point(point, "fast", "25", "fast-x=25", {r});
  ASSERT_EQ(points.size(), 1u);
  EXPECT_DOUBLE_EQ(points[0].msgs_per_op, 3.0);
  EXPECT_DOUBLE_EQ(points[0].msgs_per_write, 6.0);
  EXPECT_EQ(points[0].p50_ms, 200);
  EXPECT_EQ(points[0].max_ms, 300);
  EXPECT_EQ(points[0].node_count, 7);
  EXPECT_EQ(points[0].problems, 0u);
  r.checks.lost_writes = 2;
  EXPECT_EQ(summarize_sweep_point(point, "fast", "25", "f", {r})[0].problems, 1u);
}

}  // namespace
}  // namespace gossip_bench
