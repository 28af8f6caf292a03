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

// The "to" of the first push to n2 in out, or -1.
std::int64_t push_to(const std::vector<OutMessage>& out) {
  for (const OutMessage& m : out) {
    rapidjson::Document d;
    d.Parse(m.body.c_str());
    if (m.dest == "n2" && d.HasMember("to")) return d["to"].GetInt64();
  }
  return -1;
}

// Workers hand deltas over out of timestamp order: a push may vouch for the node's own writes
// only up to the watermark the runtime says is safe, never up to the newest delta it has seen
// (a write with an older version may still be on its way, and a receiver would then never ask
// for it).
TEST(GossipEngine, APushVouchesForOwnWritesOnlyUpToTheSafeWatermark) {
  Store store(1);
  HybridClock clock;
  GossipEngine e(GossipConfig{}, "n1", {"n1", "n2", "n3"}, store, 7, 0);
  std::vector<OutMessage> out;
  // Versions 1000 and 2000 were taken; only 2000's delta has arrived.
  Store::WriteResult older = store.write("sa", "1", 1000, 1, clock);
  Store::WriteResult newer = store.write("sb", "2", 2000, 1, clock);
  e.on_local_delta({newer.entry, newer.version, 2000, true}, 2000);
  e.on_local_watermark(older.version.ts_us - 1);  // what the runtime can prove
  e.tick(1'000'000, out);
  EXPECT_EQ(push_to(out), older.version.ts_us - 1) << "not past the write still on its way";
  out.clear();
  e.on_local_delta({older.entry, older.version, 1000, true}, 2000);
  e.on_local_watermark(newer.version.ts_us);
  e.tick(2'000'000, out);
  EXPECT_EQ(push_to(out), newer.version.ts_us);
}

// At kPendingDeltasMax the engine asks for no more deltas (the runtime then leaves them in the
// queue and the workers wait) instead of dropping one.
TEST(GossipEngine, DeltaRoomFallsToZeroAtTheBoundAndRecoversAfterAPush) {
  Store store(1);
  HybridClock clock;
  GossipEngine e(GossipConfig{}, "n1", {"n1", "n2"}, store, 7, 0);
  EXPECT_EQ(e.delta_room(), GossipEngine::kPendingDeltasMax);
  for (std::size_t i = 0; i < GossipEngine::kPendingDeltasMax; ++i) {
    Store::WriteResult w = store.write("s" + std::to_string(i), "1", 10, 1, clock);
    e.on_local_delta({w.entry, w.version, 10, true}, 10);
  }
  EXPECT_EQ(e.delta_room(), 0u);
  std::vector<OutMessage> out;
  e.tick(1'000'000, out);
  EXPECT_GT(e.delta_room(), 0u) << "a push round makes room";
}

}  // namespace
}  // namespace gossip_kv
