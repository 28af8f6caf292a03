// The requests served on the reader behind its barrier, when no worker holds a task: init
// (which creates the replication engine), bench_report and bench_stats (which sum every
// worker's counters and ask the engine for its figures).
#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "runtime/shared.h"

namespace gossip_kv::rt {

namespace {

using Writer = ReplyRenderer::Writer;

struct Totals {
  std::uint64_t client_writes = 0, cas_writes = 0, reads = 0, merged = 0, stale_reads = 0, delta_waits = 0;
};

Totals sum_counters(const Shared& sh) {
  Totals t;
  for (const auto& w : sh.workers) {
    const WorkerCounters& c = w->counters;
    t.client_writes += c.client_writes.load(std::memory_order_relaxed);
    t.cas_writes += c.cas_writes.load(std::memory_order_relaxed);
    t.reads += c.reads.load(std::memory_order_relaxed);
    t.merged += c.merged.load(std::memory_order_relaxed);
    t.stale_reads += c.stale_reads.load(std::memory_order_relaxed);
    t.delta_waits += c.delta_waits.load(std::memory_order_relaxed);
  }
  return t;
}

void init(Shared& sh, Slot& slot, ReplyRenderer& renderer) {
  const EngineFactory& make_engine = sh.make_engine;
  std::uint64_t seed = sh.seed;
  Request& req = slot.req;
  if (sh.initialized.load(std::memory_order_relaxed)) {
    renderer.error(&slot.out, sh.id.self, req, ErrorCode::kPreconditionFailed,
                   "already initialized as " + sh.id.self + "; init ignored");
    return;
  }
  std::vector<std::string> ids = req.node_ids;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (!std::binary_search(ids.begin(), ids.end(), req.node_id)) {
    renderer.error(&slot.out, req.dest, req, ErrorCode::kMalformedRequest,
                   "node_id must be one of node_ids");
    return;
  }
  sh.id.self = req.node_id;
  sh.id.node_ids = ids;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    sh.id.origin_of[ids[i]] = static_cast<std::uint32_t>(i + 1);
  }
  sh.id.self_origin = sh.id.origin_of[sh.id.self];
  if (make_engine) {
    if (seed == 0) seed = key::hash(sh.id.self) | 1;
    sh.engine_owner = make_engine(sh.id.self, sh.id.node_ids, sh.store, seed);
    sh.engine.store(sh.engine_owner.get(), std::memory_order_release);
  }
  sh.initialized.store(true, std::memory_order_release);
  renderer.begin(&slot.out, sh.id.self, req, "init_ok");
}

// The members bench_report and bench_stats share. total_gossip_msgs and msgs_per_write are
// left to the writer, which counts the lines it sends to peers: it stamps them as this reply
// leaves, so they count exactly the peer messages that precede the reply in the output.
void report_members(const Shared& sh, const Totals& t, Slot& slot, Writer& w) {
  w.Key("total_writes");
  w.Uint64(t.client_writes);
  w.Key("keys_stored");
  w.Uint64(sh.store.key_count());
  slot.stamp_gossip_count = true;
  slot.report_writes = t.client_writes;
}

// Without a replication engine a write is everywhere at once only in a one-node cluster (it
// converged in 0 ms); in a larger one it stays pending for good, and nothing comes from peers.
void write_unreplicated_stats(const Shared& sh, const Totals& t, Writer& w) {
  std::uint64_t writes = t.client_writes + t.cas_writes;
  bool alone = sh.id.node_ids.size() <= 1;
  w.Key("convergence_ms");
  w.StartObject();
  w.Key("count");
  w.Uint64(alone ? writes : 0);
  w.Key("pending");
  w.Uint64(alone ? 0 : writes);
  for (const char* m : {"p50", "p95", "p99", "max"}) {
    w.Key(m);
    w.Uint(0);
  }
  w.Key("histogram");
  w.StartArray();
  if (alone && writes > 0) {
    w.StartArray();
    w.Uint(0);
    w.Uint64(writes);
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
  w.Key("replication_lag_ms");
  w.StartObject();
  for (const char* m : {"count", "p50", "p99", "max"}) {
    w.Key(m);
    w.Uint(0);
  }
  w.EndObject();
  w.Key("replication");
  w.String("off");
}

void stats_members(const Shared& sh, const Totals& t, Writer& w) {
  ReplicationEngine* engine = sh.engine.load(std::memory_order_acquire);
  w.Key("reads");
  w.Uint64(t.reads);
  w.Key("stale_reads");
  w.Uint64(t.stale_reads + (engine != nullptr ? engine->stale_reads() : 0));
  w.Key("cas_writes");
  w.Uint64(t.cas_writes);
  w.Key("merged_entries");
  w.Uint64(t.merged);
  char digest[17];
  std::snprintf(digest, sizeof digest, "%016" PRIx64, sh.store.digest());
  w.Key("state_digest");
  w.String(digest);
  // Backpressure, not loss: times a worker waited for room on the gossip thread's delta queue,
  // and times the reader waited for a free peer-message buffer.
  w.Key("delta_queue_waits");
  w.Uint64(t.delta_waits);
  w.Key("peer_pool_waits");
  w.Uint64(sh.peer_pool_waits.load(std::memory_order_relaxed));
  w.Key("lines_skipped");
  w.Uint64(sh.lines_skipped.load(std::memory_order_relaxed));
  w.Key("workers");
  w.Uint64(sh.workers.size());
  if (engine != nullptr) {
    engine->write_stats(w);
  } else {
    write_unreplicated_stats(sh, t, w);
  }
}

}  // namespace

void handle_barrier_request(Shared& sh, Slot& slot, ReplyRenderer& renderer) {
  const Request& req = slot.req;
  if (req.type == MsgType::kInit) return init(sh, slot, renderer);
  Totals t = sum_counters(sh);
  if (req.type == MsgType::kBenchReport) {
    report_members(sh, t, slot, renderer.begin(&slot.out, sh.id.self, req, "bench_report_ok"));
  } else if (req.type == MsgType::kBenchFigures) {
    Writer& w = renderer.begin(&slot.out, sh.id.self, req, "bench_figures_ok");
    ReplicationEngine* engine = sh.engine.load(std::memory_order_acquire);
    if (engine != nullptr) {
      engine->write_figures(w);
    } else {  // no peers: nothing is measured one write at a time (see write_unreplicated_stats)
      w.Key("figures");
      w.StartArray();
      w.EndArray();
      w.Key("figures_dropped");
      w.Uint(0);
    }
  } else {
    Writer& w = renderer.begin(&slot.out, sh.id.self, req, "bench_stats_ok");
    report_members(sh, t, slot, w);
    stats_members(sh, t, w);
  }
}

}  // namespace gossip_kv::rt
