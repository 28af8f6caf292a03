// A deterministic, one-thread simulator of a whole gossip-kv cluster: the same GossipEngine and
// Store the node runs, driven by virtual time and a seeded network (latency distribution, loss,
// duplication, reordering through random delays, partitions). A seed replays a run exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "common/latency_dist.h"
#include "replication/gossip_engine.h"
#include "gossip_kv/store.h"
#include "gossip_kv/version.h"

namespace gossip_kv::sim {

using gossip_kv::LatencyDist;

struct NetConfig {
  double latency_ms = 100;  // mean one-way delay between nodes
  LatencyDist dist = LatencyDist::kExponential;
  double loss = 0;          // probability a message is dropped
  double duplicate = 0;     // probability a message is delivered twice
};

struct WriteRecord {
  std::string key;
  Version version;
  std::int64_t at_us = 0;
  std::int64_t everywhere_us = -1;  // when the last replica held it or a newer version
  std::uint32_t holders = 0;
  std::vector<bool> held;
};

class Simulator {
 public:
  static constexpr std::int64_t kEpochUs = 1'700'000'000'000'000;  // virtual time starts here

  Simulator(int nodes, const GossipConfig& gossip, const NetConfig& net, std::uint64_t seed);

  // A client write taken by node (1-based); returns its version.
  Version write(int node, const std::string& key, const std::string& value);
  // A client read at node: the value, or nothing when the key is missing there.
  std::optional<std::string> read(int node, const std::string& key);

  // Nodes in different groups cannot reach each other; group ids per node (index 0 unused).
  void partition(std::vector<int> group_of_node);
  void heal();

  // Runs every event up to virtual time t (microseconds since kEpochUs).
  void run_until(std::int64_t t_us);
  [[nodiscard]] std::int64_t now() const { return now_us_ - kEpochUs; }

  [[nodiscard]] bool all_digests_equal() const;
  [[nodiscard]] int size() const { return static_cast<int>(nodes_.size()) - 1; }
  Store& store(int node) { return *nodes_[node].store; }
  GossipEngine& engine(int node) { return *nodes_[node].engine; }
  [[nodiscard]] std::uint64_t messages_sent() const { return messages_sent_; }
  [[nodiscard]] std::uint64_t messages_dropped() const { return messages_dropped_; }
  [[nodiscard]] const std::vector<WriteRecord>& writes() const { return writes_; }
  // The newest version written to each key, and its value.
  [[nodiscard]] const absl::flat_hash_map<std::string, std::pair<Version, std::string>>&
  newest() const {
    return newest_;
  }

 private:
  struct Node {
    std::unique_ptr<Store> store;
    HybridClock clock;
    std::unique_ptr<GossipEngine> engine;
    std::int64_t deadline_us = 0;
  };
  struct Message {
    std::int64_t at_us;
    std::uint64_t seq;
    int to;
    int from;
    std::string body;
    bool operator>(const Message& o) const { return at_us != o.at_us ? at_us > o.at_us : seq > o.seq; }
  };
  using Timer = std::pair<std::int64_t, int>;  // (deadline, node), stale entries skipped

  void route(int from, std::vector<OutMessage>& out);
  void reschedule(int node);
  std::int64_t delay_us();
  void observe_holders(int node);

  std::vector<Node> nodes_;
  std::vector<std::string> ids_;
  NetConfig net_;
  std::mt19937_64 rng_;
  std::int64_t now_us_ = kEpochUs;
  std::uint64_t seq_ = 0;
  std::priority_queue<Message, std::vector<Message>, std::greater<>> inflight_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  std::vector<int> group_;
  std::uint64_t messages_sent_ = 0;
  std::uint64_t messages_dropped_ = 0;
  std::vector<WriteRecord> writes_;
  std::vector<std::size_t> unconverged_;  // indexes into writes_
  absl::flat_hash_map<std::string, std::pair<Version, std::string>> newest_;
  std::vector<OutMessage> out_;
};

}  // namespace gossip_kv::sim
