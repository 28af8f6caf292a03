// GossipEngine pieces that the simulator does not isolate: the histogram, profiles and flags,
// and bad input from peers.
#include <random>

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

#include "gossip_kv/gossip_engine.h"

namespace gossip_kv {
namespace {

TEST(LatencyHistogram, ExactPercentilesBelowTenSeconds) {
  LatencyHistogram h;
  EXPECT_EQ(h.percentile(0.5), 0);
  for (int ms = 1; ms <= 100; ++ms) h.add(ms);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.percentile(0.5), 50);
  EXPECT_EQ(h.percentile(0.95), 95);
  EXPECT_EQ(h.percentile(1.0), 100);
  EXPECT_EQ(h.max(), 100);
  h.add(12'345);
  EXPECT_EQ(h.max(), 12'345);
  EXPECT_EQ(h.percentile(1.0), 12'345) << "coarse buckets never report past the max";
  h.add_zeros(1000);
  EXPECT_EQ(h.percentile(0.5), 0);
}

TEST(LatencyHistogram, BucketsListEverySampleOnceInAscendingOrder) {
  LatencyHistogram h;
  for (std::int64_t ms : {7, 7, 3, 12'345, 12'349, 250'000}) h.add(ms);
  h.add_zeros(2);
  std::vector<std::pair<std::int64_t, std::uint32_t>> seen;
  h.for_each_bucket([&](std::int64_t lower_ms, std::uint32_t n) { seen.emplace_back(lower_ms, n); });
  std::vector<std::pair<std::int64_t, std::uint32_t>> want = {
      {0, 2}, {3, 1}, {7, 2}, {12'340, 2}, {99'990, 1}};  // 10 ms buckets past 10 s; the last holds the rest
  EXPECT_EQ(seen, want);
}

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
      m[at] = "{}[]\",:0-9ae\\"[rng() % 13];  // 13 characters (15 read past the literal)
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
