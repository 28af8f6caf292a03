// The engine's bench_stats members: convergence and lag histograms, messages and bytes by kind,
// delta counters (docs/BENCHMARK.md defines each figure).
#include "replication/gossip_engine.h"

#include <utility>

#include "replication/wire.h"

namespace gossip_kv {

std::uint64_t GossipEngine::stale_reads() const {
  return stale_reads_.load(std::memory_order_relaxed);
}

// "figures": [[ts_us, ms], ...], oldest first; "figures_dropped": older ones no longer kept.
// A one-node cluster's writes (converged_alone_, 0 ms each) are not listed.
void GossipEngine::write_figures(Writer& w) const {
  MutexLock lock(stats_mu_);
  w.Key("figures");
  w.StartArray();
  for (const Figure& f : figures_) write_ints(w, {f.ts_us, f.ms});
  w.EndArray();
  w.Key("figures_dropped");
  w.Uint64(figures_dropped_);
}

void GossipEngine::write_stats(Writer& w) const {
  auto u64 = [&](const char* k, const std::atomic<std::uint64_t>& v) {
    w.Key(k);
    w.Uint64(v.load(std::memory_order_relaxed));
  };
  {
    MutexLock lock(stats_mu_);
    // One-node clusters count their writes as converged in 0 ms without taking the lock.
    convergence_.add_zeros(converged_alone_.exchange(0, std::memory_order_relaxed));
    w.Key("convergence_ms");
    w.StartObject();
    w.Key("count");
    w.Uint64(convergence_.count());
    u64("pending", pending_count_);
    for (auto [name, p] : {std::pair{"p50", 0.5}, {"p95", 0.95}, {"p99", 0.99}}) {
      w.Key(name);
      w.Int64(convergence_.percentile(p));
    }
    w.Key("max");
    w.Int64(convergence_.max());
    u64("unmeasured", unmeasured_);
    // [[lower_ms, count], ...] over non-empty buckets: lets a reader merge nodes exactly.
    w.Key("histogram");
    w.StartArray();
    convergence_.for_each_bucket([&w](std::int64_t lower_ms, std::uint32_t n) {
      w.StartArray();
      w.Int64(lower_ms);
      w.Uint(n);
      w.EndArray();
    });
    w.EndArray();
    w.EndObject();
    w.Key("replication_lag_ms");
    w.StartObject();
    w.Key("count");
    w.Uint64(lag_.count());
    w.Key("p50");
    w.Int64(lag_.percentile(0.5));
    w.Key("p99");
    w.Int64(lag_.percentile(0.99));
    w.Key("max");
    w.Int64(lag_.max());
    w.EndObject();
  }
  // By kind: {"gossip": [messages, bytes], "digest": [...], "ack": [...]}.
  auto by_kind = [&](const char* name, const std::atomic<std::uint64_t>* msgs,
                     const std::atomic<std::uint64_t>* bytes) {
    w.Key(name);
    w.StartObject();
    for (int k = 0; k < kKinds; ++k) {
      w.Key(kPeerMsgKindNames[k]);
      w.StartArray();
      w.Uint64(msgs[k].load(std::memory_order_relaxed));
      w.Uint64(bytes[k].load(std::memory_order_relaxed));
      w.EndArray();
    }
    w.EndObject();
  };
  by_kind("gossip_sent_by_kind", msgs_sent_, bytes_sent_by_);
  by_kind("gossip_received_by_kind", msgs_received_by_, bytes_received_by_);
  u64("gossip_bytes_sent", bytes_sent_);
  u64("gossip_msgs_received", msgs_received_);
  u64("gossip_bytes_received", bytes_received_);
  u64("gossip_msgs_malformed", malformed_);
  u64("sync_msgs_throttled", sync_throttled_);
  u64("digest_answers_cut", answers_cut_);
  u64("digests_throttled", digests_throttled_);
  u64("relay_spans_dropped", relay_spans_dropped_);
  u64("relay_acks_dropped", relay_acks_dropped_);
  w.Key("content_sync");
  w.StartObject();
  u64("exchanges_started", sync_rounds_);
  u64("entries_sent", sync_entries_sent_);
  u64("entries_applied", sync_entries_applied_);
  u64("capped_replies", sync_capped_);
  w.EndObject();
  u64("deltas_sent", deltas_sent_);
  u64("deltas_applied", deltas_applied_);
  u64("deltas_ignored", deltas_ignored_);
}

}  // namespace gossip_kv
