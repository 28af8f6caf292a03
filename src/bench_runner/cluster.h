// gossip-bench's cluster: N node processes on pipes, a router that delivers node-to-node
// messages after a sampled latency (dropping them across a partition), and client replies.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <queue>
#include <random>
#include <string>
#include <vector>

namespace gossip_bench {

enum class LatencyDist { kConstant, kUniform, kExponential };

struct ClusterOptions {
  std::string bin;
  std::vector<std::string> node_args;
  int nodes = 5;
  double latency_ms = 100;
  LatencyDist dist = LatencyDist::kConstant;
  std::string log_dir;
  std::uint64_t seed = 1;
};

// A line a node sent to a client (not to a peer), with the time it was read.
using ReplyFn = std::function<void(int node, const std::string& line, std::int64_t now_us)>;

class Cluster {
 public:
  explicit Cluster(const ClusterOptions& o);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Sends a line to node (1-based) now, as a client.
  void send(int node, const std::string& line);
  // Runs the event loop until deadline_us (steady clock), calling on_reply for client lines.
  void run_until(std::int64_t deadline_us, const ReplyFn& on_reply);
  // Nodes in different groups cannot reach each other (index 0 unused); empty heals.
  void set_partition(std::vector<int> group_of_node) { group_ = std::move(group_of_node); }

  [[nodiscard]] std::uint64_t routed_from(int node) const { return routed_[node]; }
  [[nodiscard]] std::uint64_t routed_total() const;
  [[nodiscard]] std::uint64_t dropped_total() const { return dropped_; }
  [[nodiscard]] int size() const { return static_cast<int>(procs_.size()) - 1; }
  // Nodes whose output ended (they exited): reported, never waited on.
  [[nodiscard]] std::vector<int> dead_nodes() const;

  static std::int64_t now_us();

 private:
  struct Proc {
    pid_t pid = -1;
    int in_fd = -1;
    int out_fd = -1;
    std::string buf;
    bool eof = false;
  };
  struct Delivery {
    std::int64_t at_us;
    std::uint64_t seq;
    int to;
    std::string line;
    bool operator>(const Delivery& o) const { return at_us != o.at_us ? at_us > o.at_us : seq > o.seq; }
  };
  void route(int from, std::string line, std::int64_t now, const ReplyFn& on_reply);
  std::int64_t delay_us();

  ClusterOptions opt_;
  std::vector<Proc> procs_;
  std::vector<std::uint64_t> routed_;
  std::uint64_t dropped_ = 0;
  std::vector<int> group_;
  std::priority_queue<Delivery, std::vector<Delivery>, std::greater<>> inflight_;
  std::uint64_t seq_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace gossip_bench
