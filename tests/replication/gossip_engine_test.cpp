// GossipEngine pieces that the simulator does not isolate: bad input from peers.
#include <random>

#include <gtest/gtest.h>

#include "replication/gossip_engine.h"

namespace gossip_kv {
namespace {

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
