#include "history.h"

#include <algorithm>
#include <cmath>

namespace gossip_bench {

std::int64_t percentile(std::vector<std::int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::max<std::size_t>(rank, 1) - 1];
}

namespace {

// Per key, the acknowledged writes in order of acknowledgement.
std::map<std::int64_t, std::vector<const Op*>> acked_writes(const std::vector<Op>& h) {
  std::map<std::int64_t, std::vector<const Op*>> by_key;
  for (const Op& op : h) {
    if (op.kind == Op::Kind::kWrite && op.ok) by_key[op.key].push_back(&op);
  }
  for (auto& [k, v] : by_key) {
    std::sort(v.begin(), v.end(), [](const Op* a, const Op* b) { return a->complete_us < b->complete_us; });
  }
  return by_key;
}

// The newest version (ts) among writes of a key acknowledged before t.
std::int64_t newest_acked_before(const std::vector<const Op*>& writes, std::int64_t t) {
  std::int64_t best = 0;
  for (const Op* w : writes) {
    if (w->complete_us >= t) break;
    best = std::max(best, w->ts_us);
  }
  return best;
}

}  // namespace

Checks check(const std::vector<Op>& history, const std::vector<FinalState>& finals) {
  Checks c;
  auto writes = acked_writes(history);
  std::vector<std::int64_t> latency;
  std::map<const Op*, std::int64_t> last_miss_us;  // write -> last read that still missed it
  for (const Op& op : history) {
    ++c.ops;
    if (op.complete_us < 0) continue;
    ++c.answered;
    latency.push_back((op.complete_us - op.invoke_us) / 1000);
    if (!op.ok) continue;
    if (op.kind == Op::Kind::kWrite) {
      ++c.writes_ok;
      continue;
    }
    ++c.reads_ok;
    auto it = writes.find(op.key);
    if (it == writes.end()) continue;
    if (op.ts_us < newest_acked_before(it->second, op.invoke_us)) ++c.stale_reads;
    for (const Op* w : it->second) {
      if (w->complete_us < op.invoke_us && op.ts_us < w->ts_us) {
        last_miss_us[w] = std::max(last_miss_us[w], op.complete_us);
      }
    }
  }
  std::vector<std::int64_t> stable;
  for (const auto& [k, ws] : writes) {
    for (const Op* w : ws) {
      auto m = last_miss_us.find(w);
      stable.push_back(m == last_miss_us.end() ? 0 : (m->second - w->complete_us) / 1000);
    }
  }
  c.stable_p50_ms = percentile(stable, 0.5);
  c.stable_max_ms = percentile(stable, 1.0);
  c.latency_p50_ms = percentile(latency, 0.5);
  c.latency_p99_ms = percentile(latency, 0.99);
  c.latency_max_ms = percentile(latency, 1.0);

  std::map<std::string, int> digests;
  for (const FinalState& f : finals) {
    ++digests[f.digest];
    c.routed += f.routed_before_report;
    c.reported_msgs += f.total_gossip_msgs;
    for (const auto& [k, ws] : writes) {
      std::int64_t newest = 0;
      for (const Op* w : ws) newest = std::max(newest, w->ts_us);
      auto held = f.held.find(k);
      if (held == f.held.end() || held->second.second < newest) ++c.lost_writes;
    }
  }
  int most = 0;
  for (const auto& [d, n] : digests) most = std::max(most, n);
  c.divergent_nodes = static_cast<int>(finals.size()) - most;
  c.msg_count_mismatch = c.routed != c.reported_msgs;
  return c;
}

}  // namespace gossip_bench
