// GossipEngine pieces that the simulator does not isolate: profiles and flags, and bad input
// from peers.
#include <random>

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

#include "replication/gossip_engine.h"

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

TEST(GossipEngine, GarbageFromPeersIsCountedNeverFatal) {
  Store store(1);
  GossipEngine e(GossipConfig{}, "n1", {"n1", "n2", "n3"}, store, 7, 0);
  std::vector<OutMessage> out;
  std::mt19937_64 rng(3);
  const std::string good =
      R"({"type":"gossip","from":0,"to":5,"e":[["sk",5,2,"\"v\""]],"a":[[0,9,1]],)"
      R"("ra":[[1,0,5,3]],"r":{"sp":[[3,0,4]],"fa":[[2,1,0,9,4]]},"wm":[0,1,2,3]})";
  for (int i = 0; i < 20000; ++i) {
    std::string m = good;
    for (int k = 0; k < 3; ++k) {
      std::size_t at = rng() % m.size();
      m[at] = "{}[]\",:0-9ae\\"[rng() % 15];
    }
    e.on_peer_message(i % 2 ? "n2" : "n9", m, i, out);
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  e.write_stats(w);
  w.EndObject();
  rapidjson::Document d;
  d.Parse(buf.GetString());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_GT(d["gossip_msgs_malformed"].GetUint64(), 0u);
  EXPECT_EQ(d["gossip_msgs_received"].GetUint64(), 20000u);

  // The same message unharmed is applied.
  Store fresh(1);
  GossipEngine f(GossipConfig{}, "n1", {"n1", "n2", "n3"}, fresh, 7, 0);
  f.on_peer_message("n2", good, 1, out);
  std::string v;
  EXPECT_TRUE(fresh.read("sk", 0, &v, nullptr));
  EXPECT_EQ(v, "\"v\"");
}

}  // namespace
}  // namespace gossip_kv
