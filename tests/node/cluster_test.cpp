// Three real gossip-kv processes behind a small in-test router: replication, healing after a
// cut, and the message count the nodes report against what the router carried.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "node_process.h"

namespace gossip_kv::test {
namespace {

using std::chrono::milliseconds;

class Cluster {
 public:
  explicit Cluster(int n, std::vector<std::string> args = {"--profile", "fast"}) {
    std::string ids;
    for (int i = 1; i <= n; ++i) ids += (i > 1 ? ",\"n" : "\"n") + std::to_string(i) + "\"";
    for (int i = 1; i <= n; ++i) {
      nodes_.push_back(std::make_unique<NodeProcess>(args));
      send(i, "c0", R"({"type":"init","msg_id":1,"node_id":"n)" + std::to_string(i) +
                        R"(","node_ids":[)" + ids + "]}");
    }
  }

  void send(int node, const std::string& src, const std::string& body) {
    nodes_[node - 1]->send(R"({"src":")" + src + R"(","dest":"n)" + std::to_string(node) +
                           R"(","body":)" + body + "}");
  }

  // Nodes whose node-to-node traffic is dropped (both directions), as a partition would.
  void cut(std::set<int> isolated) { isolated_ = std::move(isolated); }

  // Routes node output for `duration`: peer messages to their node (or dropped across the
  // cut), client replies kept by (dest, in_reply_to). Every peer line is counted, delivered or
  // not: the node sent it.
  void pump(milliseconds duration) {
    auto end = Clock::now() + duration;
    do {
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        // read_line waits about 1 ms for a node with nothing to say: that is the loop's pace.
        while (auto line = nodes_[i]->read_line(milliseconds(2))) {
          route(static_cast<int>(i + 1), *line);
        }
      }
    } while (Clock::now() < end);
  }

  // Pumps until the reply to (client, msg_id) arrives; returns its body or nullptr.
  const rapidjson::Value* await(const std::string& client, std::int64_t msg_id,
                                milliseconds timeout = milliseconds(5000)) {
    auto end = Clock::now() + timeout;
    while (Clock::now() < end) {
      auto it = replies_.find({client, msg_id});
      if (it != replies_.end()) return &(*it->second)["body"];
      pump(milliseconds(2));
    }
    return nullptr;
  }

  std::uint64_t routed_from(int node) const { return routed_[node]; }
  // Peer messages the replying node had sent before the reply to (client, msg_id), in the
  // order of its output.
  std::uint64_t routed_before_reply(const std::string& client, std::int64_t msg_id) const {
    return routed_before_reply_.at({client, msg_id});
  }
  int size() const { return static_cast<int>(nodes_.size()); }

 private:
  void route(int from, const std::string& line) {
    auto doc = std::make_unique<rapidjson::Document>();
    doc->Parse(line.c_str());
    ASSERT_FALSE(doc->HasParseError()) << line;
    std::string dest = (*doc)["dest"].GetString();
    if (dest[0] == 'n') {
      ++routed_[from];
      int to = std::stoi(dest.substr(1));
      if (isolated_.count(from) == isolated_.count(to)) nodes_[to - 1]->send(line);
      return;
    }
    std::int64_t irt = (*doc)["body"]["in_reply_to"].GetInt64();
    replies_[{dest, irt}] = std::move(doc);
    routed_before_reply_[{dest, irt}] = routed_[from];
  }

  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  std::set<int> isolated_;
  std::uint64_t routed_[16] = {};
  std::map<std::pair<std::string, std::int64_t>, std::unique_ptr<rapidjson::Document>> replies_;
  std::map<std::pair<std::string, std::int64_t>, std::uint64_t> routed_before_reply_;
};

std::string kv_write(int id, const std::string& key, const std::string& value) {
  return R"({"type":"write","msg_id":)" + std::to_string(id) + R"(,"key":")" + key +
         R"(","value":)" + value + "}";
}
std::string kv_read(int id, const std::string& key) {
  return R"({"type":"kv_read","msg_id":)" + std::to_string(id) + R"(,"key":")" + key + "\"}";
}
std::string simple(int id, const char* type) {
  return std::string(R"({"type":")") + type + R"(","msg_id":)" + std::to_string(id) + "}";
}

// Reads key on node until it returns `want` or a second has passed; true when it did.
bool readable_within_a_second(Cluster& c, int node, const std::string& key,
                              const std::string& want, int* next_id) {
  auto end = Clock::now() + milliseconds(1000);
  while (Clock::now() < end) {
    int id = (*next_id)++;
    c.send(node, "c9", kv_read(id, key));
    const rapidjson::Value* b = c.await("c9", id);
    if (b != nullptr && std::string((*b)["type"].GetString()) == "kv_read_ok" &&
        (*b)["value"].IsString() && want == (*b)["value"].GetString()) {
      return true;
    }
    c.pump(milliseconds(20));
  }
  return false;
}

std::string digest_of(Cluster& c, int node, int id) {
  c.send(node, "c8", simple(id, "bench_stats"));
  const rapidjson::Value* b = c.await("c8", id);
  return b == nullptr ? "<no reply>" : (*b)["state_digest"].GetString();
}

TEST(Cluster, WritesOnOneNodeAreReadOnTheOthersWithinASecond) {
  Cluster c(3);
  ASSERT_NE(c.await("c0", 1), nullptr);
  c.send(1, "c1", kv_write(10, "a", "\"from-n1\""));
  ASSERT_NE(c.await("c1", 10), nullptr);
  int id = 100;
  EXPECT_TRUE(readable_within_a_second(c, 2, "a", "from-n1", &id));
  EXPECT_TRUE(readable_within_a_second(c, 3, "a", "from-n1", &id));
}

TEST(Cluster, ANodeCutOffDuringWritesConvergesAfterTheHeal) {
  Cluster c(3);
  for (int i = 1; i <= 3; ++i) ASSERT_NE(c.await("c0", 1), nullptr);
  c.cut({3});
  for (int i = 0; i < 40; ++i) {
    c.send(1 + i % 2, "c1", kv_write(10 + i, "k" + std::to_string(i % 7), "\"" + std::to_string(i) + "\""));
    c.pump(milliseconds(10));
  }
  ASSERT_NE(c.await("c1", 49), nullptr);
  c.pump(milliseconds(300));
  EXPECT_NE(digest_of(c, 3, 200), digest_of(c, 1, 201)) << "the cut node cannot have caught up";
  c.cut({});
  // Anti-entropy must bring n3 level within 2 s of the heal, with no client writes.
  auto healed = Clock::now();
  bool same = false;
  int id = 300;
  while (!same && Clock::now() - healed < milliseconds(2000)) {
    c.pump(milliseconds(100));
    std::string d1 = digest_of(c, 1, id++), d2 = digest_of(c, 2, id++), d3 = digest_of(c, 3, id++);
    same = d1 == d2 && d2 == d3;
  }
  EXPECT_TRUE(same) << "replicas differ 2 s after the heal";
  int rid = 500;
  EXPECT_TRUE(readable_within_a_second(c, 3, "k4", "39", &rid)) << "n3 holds the newest write";
}

TEST(Cluster, ReportedGossipMessagesEqualWhatTheRouterCarried) {
  Cluster c(3);
  for (int i = 0; i < 30; ++i) {
    c.send(1 + i % 3, "c1", kv_write(10 + i, "k" + std::to_string(i % 5), std::to_string(i)));
    c.pump(milliseconds(15));
  }
  c.pump(milliseconds(600));
  // total_gossip_msgs counts exactly the peer messages that precede the reply in the node's
  // output: the router, reading that output in order, must have carried the same number.
  std::uint64_t sum_reported = 0, sum_routed = 0;
  for (int n = 1; n <= 3; ++n) {
    c.send(n, "c7", simple(900 + n, "bench_report"));
    const rapidjson::Value* b = c.await("c7", 900 + n);
    ASSERT_NE(b, nullptr);
    std::uint64_t reported = (*b)["total_gossip_msgs"].GetUint64();
    EXPECT_EQ(reported, c.routed_before_reply("c7", 900 + n)) << "node n" << n;
    EXPECT_EQ((*b)["total_writes"].GetUint64(), 10u);
    sum_reported += reported;
    sum_routed += c.routed_before_reply("c7", 900 + n);
  }
  EXPECT_GT(sum_reported, 0u);
  EXPECT_EQ(sum_reported, sum_routed);
}

TEST(Cluster, EveryNodeMeasuresTheConvergenceOfItsWrites) {
  Cluster c(3);
  for (int i = 0; i < 30; ++i) {
    c.send(1 + i % 3, "c1", kv_write(10 + i, "k" + std::to_string(i % 5), std::to_string(i)));
    c.pump(milliseconds(15));
  }
  c.pump(milliseconds(1500));  // acknowledgements ride on gossip or, at the latest, come alone
  for (int n = 1; n <= 3; ++n) {
    c.send(n, "c6", simple(800 + n, "bench_stats"));
    const rapidjson::Value* b = c.await("c6", 800 + n);
    ASSERT_NE(b, nullptr);
    const rapidjson::Value& conv = (*b)["convergence_ms"];
    EXPECT_EQ(conv["count"].GetUint64(), 10u) << "node n" << n;
    EXPECT_EQ(conv["pending"].GetUint64(), 0u) << "node n" << n;
    EXPECT_LE(conv["p50"].GetInt64(), conv["max"].GetInt64());
    // The two other nodes' writes, each applied here at most once (fewer when a newer
    // version of its key arrived first).
    EXPECT_GT((*b)["replication_lag_ms"]["count"].GetUint64(), 0u);
    EXPECT_LE((*b)["replication_lag_ms"]["count"].GetUint64(), 20u);
  }
}

}  // namespace
}  // namespace gossip_kv::test
