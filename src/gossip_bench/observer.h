// Convergence as the router sees it: from every peer message it delivers, when each replica
// first came to hold each write or a newer version of its key. It reads gossip-kv's entries
// (`e`: [encoded key, ts_us, origin, value], docs/REPLICATION.md), so it is exact for gossip-kv
// nodes and independent of what the nodes report about themselves; another node's messages
// are not understood and leave it empty (understood() is false).
//
// A write is registered when its acknowledgement arrives with its version (the `write`
// workload); `bench_write` replies carry none, so those writes are not observed.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string_view>
#include <utility>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

namespace gossip_bench {

class ConvergenceObserver {
 public:
  // REQUIRES: nodes >= 1.
  explicit ConvergenceObserver(int nodes);

  // A peer message delivered to node `to` (1-based) at t_us.
  void on_delivered(int to, std::string_view line, std::int64_t t_us);
  // A write node `origin` took on `key` with version ts_us: taken at taken_us (between its
  // invocation and its acknowledgement), acknowledged at now_us (when the origin is known to
  // hold it).
  void on_write(int origin, std::int64_t key, std::int64_t ts_us, std::int64_t taken_us, std::int64_t now_us);

  // A write node `origin` took but whose acknowledgement came after its request timed out: not
  // measured (it was not acknowledged), but the node holds it, or a newer version of its key,
  // from taken_us on, which counts for the other writes of the key it supersedes.
  void on_unacknowledged_write(int origin, std::int64_t key, std::int64_t ts_us, std::int64_t taken_us) {
    raise(origin, key, ts_us, taken_us);
  }

  // Node `node` (1-based) was killed at wall time wall_us: it holds nothing from now on. Its
  // acknowledged writes that no other replica held then (not even as a newer version of the
  // key) are lost with it, unless one of its messages still in flight carries them (or a newer
  // write of its key from the same life) to a replica.
  // Nodes killed together are passed together: a write only they held is lost with them.
  void on_killed(const std::vector<int>& nodes, std::int64_t wall_us);

  // Keeps, for writes of keys >= key, when every replica came to hold them (converged_at): the
  // burst condition's writes, whose spread is measured per burst.
  void track_from_key(std::int64_t key) { track_from_key_ = key; }
  // When every replica held the tracked write (key, ts_us), on the router's clock; kUnknown
  // (-1) if they never did.
  [[nodiscard]] std::int64_t converged_at(std::int64_t key, std::int64_t ts_us) const;

  // The router's figure for the write node `origin` took with version ts_us: ms from when it
  // was taken until every replica held it; kNever if it registered the write and never saw it
  // everywhere (still on its way, or lost with a crash); -1 if no such write was registered,
  // or its version ties another origin's write of the key (the replies do not say which
  // origin wins the tie, so neither is followed).
  static constexpr std::int64_t kNever = INT64_MAX;
  [[nodiscard]] std::int64_t converged_ms_of(int origin, std::int64_t ts_us) const;
  // For each write every replica came to hold: ms from when it was taken to the last replica.
  [[nodiscard]] const std::vector<std::int64_t>& converged_ms() const { return converged_ms_; }
  // When each of them was taken, in the same order.
  [[nodiscard]] const std::vector<std::int64_t>& converged_taken_us() const { return converged_taken_us_; }
  // Registered writes some replica never came to hold, those lost with a crashed node aside.
  [[nodiscard]] std::uint64_t unconverged() const;
  // Acknowledged writes lost with a crashed node, as (node, key, version): their node was
  // killed before any other replica held them. Such a write may since be superseded.
  [[nodiscard]] std::vector<std::array<std::int64_t, 3>> lost_with_crash() const;
  // Whether any gossip-kv entry was seen (false: the nodes speak another format).
  [[nodiscard]] bool understood() const { return entries_seen_ > 0; }

 private:
  struct Pending {
    std::int64_t taken_us = 0;
    int reached = 0;  // replicas holding it or newer
    int origin = 0;   // the node that took it
    std::int64_t crashed_wall_us = 0;  // its node was killed then with no other replica holding it
    std::int64_t last_us = 0;  // the latest time a replica came to hold it so far
  };
  // Node n holds version ts of key (or newer) from t_us on.
  void raise(int node, std::int64_t key, std::int64_t ts_us, std::int64_t t_us);
  // An entry of origin index `origin` reached a replica: it saves the writes of that node's
  // earlier life it carries (same key, not newer) from being lost with the crash.
  void rescue(std::int64_t key, std::int64_t ts_us, std::int64_t origin);

  int nodes_;
  struct Held {
    std::int64_t ts_us = 0;     // the newest version of the key the node holds
    std::int64_t since_us = 0;  // since when (it may have held an older one at least as new as a write before)
  };
  std::vector<absl::flat_hash_map<std::int64_t, Held>> held_;  // [node] key -> newest version
  absl::flat_hash_map<std::int64_t, std::map<std::int64_t, Pending>> pending_;  // key -> ts -> write
  std::vector<std::int64_t> converged_ms_;
  std::vector<std::int64_t> converged_taken_us_;
  std::vector<int> node_of_origin_;  // origin index (sorted node ids, 1-based) -> node number
  std::vector<std::array<std::int64_t, 3>> lost_with_crash_;  // (node, key, ts), superseded since
  std::uint64_t crash_candidates_ = 0;  // pending writes with crashed_wall_us set
  std::int64_t track_from_key_ = INT64_MAX;
  absl::flat_hash_map<std::pair<std::int64_t, std::int64_t>, std::int64_t> converged_at_;  // tracked
  absl::flat_hash_map<std::pair<int, std::int64_t>, std::int64_t> converged_ms_of_;  // (origin, ts) -> ms
  absl::flat_hash_set<std::pair<int, std::int64_t>> registered_;  // (origin, ts) of every write
  absl::flat_hash_map<std::pair<std::int64_t, std::int64_t>, int> origin_of_version_;  // (key, ts) -> origin
  absl::flat_hash_set<std::pair<int, std::int64_t>> tied_;  // (origin, ts) of writes whose versions tie
  void converged(int origin, std::int64_t key, std::int64_t ts_us, std::int64_t taken_us, std::int64_t t_us);
  std::uint64_t entries_seen_ = 0;
};

}  // namespace gossip_bench
