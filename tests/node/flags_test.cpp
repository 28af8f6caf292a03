// The node's flags (node/flags.h): replication profiles and the per-field flags that override
// them.
#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

#include "node/flags.h"

namespace gossip_kv {
namespace {

TEST(GossipConfig, ProfilesAndFlagsOverrideInOrder) {
  GossipConfig c;
  EXPECT_FALSE(GossipConfig::from_profile("nope", &c));
  ASSERT_TRUE(GossipConfig::from_profile("frugal", &c));
  EXPECT_EQ(c.relays, 1);
  GossipConfig parsed;
  CLI::App app;
  add_gossip_flags(app, parsed);
  const char* argv[] = {"x", "--profile", "frugal", "--relay-interval-ms", "200"};
  app.parse(5, const_cast<char**>(argv));
  EXPECT_EQ(parsed.gossip_interval_ms, 500) << "from the profile";
  EXPECT_EQ(parsed.relay_interval_ms, 200) << "the explicit flag wins";
  CLI::App bad;
  GossipConfig ignored;
  add_gossip_flags(bad, ignored);
  const char* bad_argv[] = {"x", "--profile", "turbo"};
  EXPECT_THROW(bad.parse(3, const_cast<char**>(bad_argv)), CLI::ValidationError);
}

}  // namespace
}  // namespace gossip_kv
