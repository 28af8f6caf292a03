// gossip-bench's cluster: N node processes on pipes and the router between them. One thread
// runs everything: ppoll() over the nodes' pipes plus a timer heap of messages in flight, no
// thread per message or per node. A node-to-node message is delivered after a latency drawn
// from the configured distribution, unless the current fault drops its link when it arrives;
// a message to anyone else (a client) is handed to the caller at once. The fault may also stop
// node processes (SIGSTOP, resumed with SIGCONT when it ends), drop a share of the messages
// when they arrive, or deliver a share twice.
//
// Bounds: a node's output line is at most kLineBytesMax (longer ones are dropped and counted);
// a node's unread input is at most kOutboxBytesMax (a node that stops reading is marked stuck
// and further messages to it are dropped and counted), so a wedged node cannot wedge the runner;
// messages in flight hold at most kInflightBytesMax (beyond, they are dropped and counted).
//
// Each node runs in a process group of its own, so that killing it also kills whatever it
// started; an interrupted runner (SIGINT, SIGTERM) kills every group before it exits.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "nemesis.h"
#include "options.h"

namespace gossip_bench {

struct ClusterOptions {
  std::string bin;
  std::vector<std::string> node_args;
  // More arguments for single nodes: [node] (1-based; missing or empty: none). The clock-skew
  // condition gives each node its --clock-offset-ms here.
  std::vector<std::vector<std::string>> args_of_node;
  int nodes = 5;
  double latency_ms = 100;
  LatencyDist dist = LatencyDist::kConstant;
  std::string log_dir;  // nN.stderr.log go here
  std::uint64_t seed = 1;
};

// Node-to-node traffic in one second of the run.
struct SecondCounts {
  std::uint64_t sent = 0;     // read from a node, addressed to another node
  std::uint64_t dropped = 0;  // dropped by a fault on arrival
};

// What became of a node process.
struct NodeExit {
  bool output_ended = false;        // its stdout closed
  std::int64_t output_ended_us = -1;  // when, since the cluster started
  bool reaped = false;
  int wait_status = 0;              // waitpid's status when reaped
  bool killed_at_shutdown = false;  // still running after its input closed and the grace period
  bool input_stuck = false;         // stopped reading its input (outbox over its bound)
  std::string describe() const;     // "exited 0", "killed by signal 11", ...
};

// A line a node wrote to a client (not to a peer), and when it was read (since the start).
using ReplyFn = std::function<void(int node, std::string_view line, std::int64_t now_us)>;
// A peer message handed to node `to` at now_us.
using DeliveryFn = std::function<void(int to, std::string_view line, std::int64_t now_us)>;

class Cluster {
 public:
  static constexpr std::size_t kLineBytesMax = 4u << 20;
  static constexpr std::size_t kOutboxBytesMax = 64u << 20;
  static constexpr std::size_t kInflightBytesMax = 512u << 20;

  // Starts the nodes. Throws std::runtime_error when one cannot be started.
  explicit Cluster(const ClusterOptions& o);
  // Kills whatever still runs.
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Queues a client line (no newline) for node (1-based), undelayed.
  void send(int node, std::string_view line);
  // Runs the loop until deadline_us (since the start), handing client lines to on_reply. Past
  // the deadline the pipes are still served once without waiting.
  void run_until(std::int64_t deadline_us, const ReplyFn& on_reply);
  // The fault in force from now on; nullopt heals. Cuts and loss are checked when each message
  // arrives, duplication when it is sent. Nodes the fault pauses are stopped now, and nodes
  // the previous fault paused and this one does not are resumed.
  void set_fault(std::optional<Fault> fault);
  // The kill nemesis. kill_node SIGKILLs a node's process group and reaps it; messages for it
  // are dropped (counted as dropped by faults) until restart_node starts a fresh, empty
  // process in its place, whose stderr goes on in the same log. The dead life's exit is not a
  // node problem, and its routed messages move to routed_by_earlier_lives().
  void kill_node(int node);
  void restart_node(int node);
  [[nodiscard]] bool down(int node) const { return procs_[static_cast<std::size_t>(node)].down; }
  // What had already gone wrong with a node's earlier lives when the nemesis killed them
  // (it had exited, or stopped reading): a restart must not hide it.
  [[nodiscard]] const std::vector<std::string>& problems_before_kills(int node) const {
    return procs_[static_cast<std::size_t>(node)].problems_before_kills;
  }
  // Called for every peer message delivered (not for those a fault drops). A message handed
  // to a paused node is reported when the node resumes: it cannot have taken it before.
  void on_delivery(DeliveryFn fn) { on_delivery_ = std::move(fn); }
  // Closes every node's input and waits up to grace_us for them to exit (their output is read
  // and discarded meanwhile); then kills the rest. Idempotent.
  void shutdown(std::int64_t grace_us);

  // Microseconds since the cluster started (steady clock).
  [[nodiscard]] std::int64_t now_us() const;
  [[nodiscard]] int size() const { return static_cast<int>(procs_.size()) - 1; }
  // Peer lines read from the node's current life (what its own total_gossip_msgs counts).
  [[nodiscard]] std::uint64_t routed_from(int node) const { return procs_[static_cast<std::size_t>(node)].routed; }
  // ... and from lives the kill nemesis ended.
  [[nodiscard]] std::uint64_t routed_by_earlier_lives() const;
  [[nodiscard]] std::uint64_t routed_total() const;
  // Node-to-node messages routed so far, by their body's `type` ("?" when it has none).
  [[nodiscard]] const std::map<std::string, std::uint64_t, std::less<>>& routed_by_type() const {
    return routed_by_type_;
  }
  [[nodiscard]] std::uint64_t dropped_total() const { return dropped_; }
  // Extra copies a duplicate fault delivered (not counted as routed: no node sent them).
  [[nodiscard]] std::uint64_t duplicated_total() const { return duplicated_; }
  // Lines that could not be routed: no `dest`, an unknown node, or over kLineBytesMax.
  [[nodiscard]] std::uint64_t unroutable() const { return unroutable_; }
  // Messages dropped because their receiver had stopped reading (or was gone).
  [[nodiscard]] std::uint64_t undeliverable() const { return undeliverable_; }
  // Messages dropped because kInflightBytesMax was in flight already.
  [[nodiscard]] std::uint64_t overflowed() const { return overflowed_; }
  [[nodiscard]] const std::vector<SecondCounts>& seconds() const { return seconds_; }
  [[nodiscard]] const NodeExit& exit_of(int node) const { return procs_[static_cast<std::size_t>(node)].exit; }

 private:
  struct Proc {
    pid_t pid = -1;
    int in_fd = -1;
    int out_fd = -1;
    std::string inbuf;    // read from the node, not yet a whole line
    bool discarding = false;  // inside a line over kLineBytesMax: dropped up to its newline
    std::string outbox;   // for the node, not yet written
    std::size_t outbox_at = 0;
    std::uint64_t routed = 0;
    NodeExit exit;
    bool paused = false;  // stopped by the nemesis
    bool down = false;    // killed by the nemesis, not yet restarted
    std::uint64_t routed_earlier = 0;  // routed from lives the nemesis killed
    std::vector<std::string> problems_before_kills;
    std::vector<std::string> delivered_paused;  // for on_delivery_ when it resumes
  };
  struct Delivery {
    std::int64_t at_us;
    std::uint64_t seq;
    int from, to;
    std::string line;
    bool operator>(const Delivery& o) const { return at_us != o.at_us ? at_us > o.at_us : seq > o.seq; }
  };

  void spawn(int node, bool append_log = false);
  void kill_all();
  bool enqueue(Proc& p, std::string_view line);  // false: dropped (counted)
  void flush(Proc& p);
  void flush_all();
  void take_lines(int node, const ReplyFn& on_reply);
  void close_input(Proc& p);
  void read_output(int node, const ReplyFn* on_reply);
  void route(int from, std::string_view line, std::int64_t now, const ReplyFn& on_reply);
  void deliver_due(std::int64_t now);
  void pause(int node, bool stop);
  void reap(Proc& p, bool wait);
  SecondCounts& second_at(std::int64_t t_us);
  std::int64_t delay_us();

  ClusterOptions opt_;
  std::int64_t start_us_;
  std::vector<Proc> procs_;  // index 0 unused
  std::optional<Fault> fault_;
  DeliveryFn on_delivery_;
  std::priority_queue<Delivery, std::vector<Delivery>, std::greater<>> inflight_;
  std::map<std::string, std::uint64_t, std::less<>> routed_by_type_;
  std::uint64_t seq_ = 0, dropped_ = 0, unroutable_ = 0, undeliverable_ = 0, overflowed_ = 0, duplicated_ = 0;
  std::size_t inflight_bytes_ = 0;
  std::vector<SecondCounts> seconds_;
  std::mt19937_64 rng_;
  std::mt19937_64 fault_rng_;  // loss and duplication draws, apart from the latencies
  bool shut_down_ = false;
};

}  // namespace gossip_bench
