#include "history.h"

#include "common/latency_histogram.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <unordered_map>

namespace gossip_bench {
namespace {

// How far a hybrid logical clock may run ahead of the wall clock it was read with (it adds a
// microsecond per version taken within the same microsecond): far more than enough.
constexpr std::int64_t kClockAheadMaxUs = 100'000;

// The range a write's version timestamp lies in: exact once known; otherwise no older than
// the wall clock at its invocation and no newer than at its acknowledgement.
std::int64_t version_floor(const Op& w) { return w.ts_us != kUnknown ? w.ts_us : w.invoke_wall_us; }
std::int64_t version_ceil(const Op& w) {
  if (w.ts_us != kUnknown) return w.ts_us;
  return w.complete_wall_us != kUnknown ? w.complete_wall_us + kClockAheadMaxUs : INT64_MAX;
}

// The version a read returned; a missing key is older than every version.
std::int64_t read_version(const Op& r) { return r.outcome == Op::Outcome::kOk ? r.ts_us : 0; }

struct KeyOps {
  std::vector<const Op*> acked;       // acknowledged writes
  std::vector<const Op*> taken;       // writes a node may have taken: acknowledged or unanswered
  std::vector<const Op*> reads;       // reads answered in time (found or not)
  std::vector<const Op*> late_found;  // reads that found a version, answered after their timeout
};

std::map<std::int64_t, KeyOps> by_key(const std::vector<Op>& h) {
  std::map<std::int64_t, KeyOps> keys;
  for (const Op& op : h) {
    KeyOps& k = keys[op.key];
    // A write lost with a crashed node is counted apart and judged as if never acknowledged:
    // the reads that missed it and the stable latency it never reached are the crash's.
    if (op.acked_write() && !op.lost_with_crash) k.acked.push_back(&op);
    if (op.kind == Op::Kind::kWrite && (op.acked_write() || !op.answered())) k.taken.push_back(&op);
    if (op.kind != Op::Kind::kRead) continue;
    bool versioned = op.outcome == Op::Outcome::kNotFound || (op.outcome == Op::Outcome::kOk && op.ts_us != kUnknown);
    if (versioned && !op.late) k.reads.push_back(&op);
    if (op.late && op.read_found() && op.ts_us != kUnknown) k.late_found.push_back(&op);
  }
  return keys;
}

// A key's acknowledged writes in acknowledgement order, for "the newest version acknowledged
// before time t" in O(log n).
class AckedBefore {
 public:
  explicit AckedBefore(const std::vector<const Op*>& acked) : acked_(acked) {
    std::sort(acked_.begin(), acked_.end(), [](const Op* a, const Op* b) { return a->complete_us < b->complete_us; });
    newest_.resize(acked_.size());
    for (std::size_t i = 0; i < acked_.size(); ++i) {
      newest_[i] = std::max(i ? newest_[i - 1] : INT64_MIN, version_floor(*acked_[i]));
    }
  }
  // The newest version (floor) among writes acknowledged before t_us; INT64_MIN if none.
  [[nodiscard]] std::int64_t newest(std::int64_t t_us) const {
    auto before = std::partition_point(acked_.begin(), acked_.end(), [t_us](const Op* w) { return w->complete_us < t_us; });
    auto n = static_cast<std::size_t>(before - acked_.begin());
    return n == 0 ? INT64_MIN : newest_[n - 1];
  }

 private:
  std::vector<const Op*> acked_;
  std::vector<std::int64_t> newest_;  // newest version among the first i+1 acknowledgements
};

// Reads that returned an older version than a write acknowledged before they began.
std::uint64_t stale_reads(const KeyOps& k, const AckedBefore& acked, std::vector<std::int64_t>* invoked_us) {
  std::uint64_t stale = 0;
  for (const Op* r : k.reads) {
    if (acked.newest(r->invoke_us) > read_version(*r)) {
      ++stale;
      invoked_us->push_back(r->invoke_us);
    }
  }
  return stale;
}

// Acknowledged writes whose version is below that of a write acknowledged before they were
// invoked: last-writer-wins keeps the older write (a node whose clock runs behind).
std::uint64_t overwritten_by_older(const KeyOps& k, const AckedBefore& acked) {
  std::uint64_t hidden = 0;
  for (const Op* w : k.acked) {
    // An unversioned write's version has no upper bound.
    if (w->ts_us != kUnknown && acked.newest(w->invoke_us) > w->ts_us) ++hidden;
  }
  return hidden;
}

// For each acknowledged write, the last completion of a read that began after the
// acknowledgement and still returned an older version: offline, reads entered by version into
// a Fenwick tree of suffix maxima over their invocation order.
void stable_latencies(const KeyOps& k, std::vector<std::int64_t>* out_ms) {
  std::vector<const Op*> reads = k.reads;
  std::sort(reads.begin(), reads.end(), [](const Op* a, const Op* b) { return a->invoke_us < b->invoke_us; });
  std::vector<std::size_t> by_version(reads.size());
  for (std::size_t i = 0; i < reads.size(); ++i) by_version[i] = i;
  std::sort(by_version.begin(), by_version.end(),
            [&](std::size_t a, std::size_t b) { return read_version(*reads[a]) < read_version(*reads[b]); });
  std::vector<const Op*> writes = k.acked;
  std::sort(writes.begin(), writes.end(),
            [](const Op* a, const Op* b) { return version_floor(*a) < version_floor(*b); });
  std::size_t n = reads.size();
  std::vector<std::int64_t> tree(n + 1, INT64_MIN);  // index reversed: prefixes are suffixes
  std::size_t entered = 0;
  for (const Op* w : writes) {
    for (; entered < n && read_version(*reads[by_version[entered]]) < version_floor(*w); ++entered) {
      std::size_t r = by_version[entered];
      for (std::size_t i = n - r; i <= n; i += i & (~i + 1)) tree[i] = std::max(tree[i], reads[r]->complete_us);
    }
    auto first = std::partition_point(reads.begin(), reads.end(),
                                      [&](const Op* r) { return r->invoke_us <= w->complete_us; });
    std::int64_t last = INT64_MIN;
    for (auto i = static_cast<std::size_t>(reads.end() - first); i > 0; i -= i & (~i + 1)) last = std::max(last, tree[i]);
    out_ms->push_back(last == INT64_MIN ? 0 : (last - w->complete_us) / 1000);
  }
}

// Found reads whose returned version had a newer one written before the read was answered,
// as far as the history can tell: the most stale reads the nodes' own definition allows.
std::uint64_t node_stale_possible(const KeyOps& k, std::int64_t key, const std::vector<NodeReport>& nodes) {
  std::vector<const Op*> writes = k.taken;
  std::sort(writes.begin(), writes.end(),
            [](const Op* a, const Op* b) { return version_floor(*a) < version_floor(*b); });
  std::vector<std::int64_t> newest(writes.size());
  for (std::size_t i = 0; i < writes.size(); ++i) {
    newest[i] = std::max(i ? newest[i - 1] : INT64_MIN, version_ceil(*writes[i]));
  }
  auto possible = [&](std::int64_t version, std::int64_t answered_wall_us) {
    auto before = std::partition_point(writes.begin(), writes.end(), [&](const Op* w) {
      return version_floor(*w) < answered_wall_us;
    });
    auto n = static_cast<std::size_t>(before - writes.begin());
    return n > 0 && newest[n - 1] > version;
  };
  std::uint64_t count = 0;
  for (const auto* reads : {&k.reads, &k.late_found}) {  // a node counts late-answered reads too
    for (const Op* r : *reads) {
      if (r->outcome == Op::Outcome::kOk && possible(r->ts_us, r->complete_wall_us)) ++count;
    }
  }
  for (const NodeReport& node : nodes) {
    auto it = node.held.find(key);
    if (it != node.held.end() && it->second.ts_us != kUnknown && possible(it->second.ts_us, it->second.wall_us)) {
      ++count;
    }
  }
  return count;
}

// Acknowledged writes that some replica ended older than (or without their key).
std::uint64_t lost_writes(const KeyOps& k, std::int64_t key, const std::vector<NodeReport>& nodes) {
  std::uint64_t lost = 0;
  for (const Op* w : k.acked) {
    for (const NodeReport& node : nodes) {
      if (!node.final_reads_complete) continue;  // a silent node is reported, not judged
      auto it = node.held.find(key);
      bool missing = it == node.held.end() || it->second.ts_us == kUnknown;
      if (missing || it->second.ts_us < version_floor(*w)) {
        ++lost;
        break;
      }
    }
  }
  return lost;
}

void count_workload(const std::vector<Op>& history, Checks& c) {
  std::vector<std::int64_t> latency;
  for (const Op& op : history) {
    ++c.ops;
    if (!op.answered()) {
      ++c.timeouts;
      continue;
    }
    ++c.answered;
    latency.push_back(op.complete_us - op.invoke_us);
    if (op.outcome == Op::Outcome::kError) ++c.errors;
    if (op.acked_write()) ++c.writes_ok;
    if (op.acked_write() && op.ts_us == kUnknown) ++c.writes_unversioned;
    if (op.acked_write() && op.lost_with_crash) ++c.lost_with_crash;
    if (op.kind == Op::Kind::kRead && op.outcome == Op::Outcome::kOk) ++c.reads_ok;
    if (op.outcome == Op::Outcome::kNotFound) ++c.reads_not_found;
  }
  c.latency_us = summarize(std::move(latency));
}

void check_nodes(const std::vector<NodeReport>& nodes, Checks& c) {
  std::map<std::string, int> digests;
  for (const NodeReport& n : nodes) {
    if (!n.answered_stats) {
      ++c.silent_nodes;
      continue;
    }
    ++digests[n.digest];
    c.routed += n.routed_before_report;
    c.reported_msgs += n.total_gossip_msgs;
    c.nodes_stale_reads += n.stale_reads;
    c.writes_taken += n.total_writes;
    std::uint64_t measured = n.convergence.count + n.convergence.unmeasured;
    c.writes_unmeasured_yet += n.total_writes > measured ? n.total_writes - measured : 0;
  }
  int most = 0;
  for (const auto& [d, count] : digests) most = std::max(most, count);
  c.divergent_nodes = static_cast<int>(nodes.size()) - c.silent_nodes - most;
  c.msg_count_mismatch = c.routed != c.reported_msgs;
  c.nodes_convergence = merge_convergence(nodes);
}

}  // namespace

Summary summarize(std::vector<std::int64_t> v) {
  std::sort(v.begin(), v.end());
  Summary s;
  s.count = v.size();
  s.p50 = percentile(v, 0.5);
  s.p95 = percentile(v, 0.95);
  s.p99 = percentile(v, 0.99);
  s.max = v.empty() ? 0 : v.back();
  return s;
}

std::uint64_t learn_versions(std::vector<Op>& history, const std::vector<NodeReport>& nodes) {
  std::unordered_map<std::int64_t, std::int64_t> version_of;  // unique value -> its version
  for (const Op& op : history) {
    if (op.read_found() && op.value != kUnknown && op.ts_us != kUnknown) version_of[op.value] = op.ts_us;
  }
  for (const NodeReport& n : nodes) {
    for (const auto& [key, f] : n.held) {
      if (f.value != kUnknown && f.ts_us != kUnknown) version_of[f.value] = f.ts_us;
    }
  }
  std::uint64_t unversioned = 0;
  for (Op& op : history) {
    if (op.kind != Op::Kind::kWrite || op.ts_us != kUnknown) continue;
    auto it = version_of.find(op.value);
    if (it != version_of.end()) {
      op.ts_us = it->second;
    } else if (op.acked_write()) {
      ++unversioned;
    }
  }
  return unversioned;
}

NodeConvergence merge_convergence(const std::vector<NodeReport>& nodes,
                                  const std::vector<NodeConvergence>& more) {
  NodeConvergence m;
  gossip_kv::LatencyHistogram merged;  // the node's own histogram type: same buckets, same ranks
  auto add = [&](const NodeConvergence& c) {
    m.count += c.count;
    m.max = std::max(m.max, c.max);
    for (auto [lower, count] : c.histogram) merged.merge_bucket(lower, count);
  };
  for (const NodeReport& n : nodes) {
    add(n.convergence);
    m.pending += n.convergence.pending;
    m.unmeasured += n.convergence.unmeasured;
  }
  // A killed life's figures count; what it had pending died with it, and is no one's now.
  for (const NodeConvergence& c : more) add(c);
  merged.raise_max(m.max);
  merged.for_each_bucket([&m](std::int64_t lower, std::uint64_t count) {
    m.histogram.emplace_back(lower, count);
  });
  m.p50 = merged.percentile(0.5);
  m.p95 = merged.percentile(0.95);
  m.p99 = merged.percentile(0.99);
  return m;
}

Checks check(const std::vector<Op>& history, const std::vector<NodeReport>& nodes) {
  Checks c;
  count_workload(history, c);
  for (const auto& [key, k] : by_key(history)) {
    AckedBefore acked(k.acked);
    c.stale_reads += stale_reads(k, acked, &c.stale_read_invoke_us);
    stable_latencies(k, &c.stable_per_write_ms);
    c.node_stale_possible += node_stale_possible(k, key, nodes);
    c.lost_writes += lost_writes(k, key, nodes);
    c.overwritten_by_older += overwritten_by_older(k, acked);
  }
  c.stable_ms = summarize(c.stable_per_write_ms);
  check_nodes(nodes, c);
  c.nodes_stale_beyond_history = c.nodes_stale_reads > c.node_stale_possible;
  return c;
}

}  // namespace gossip_bench
