// Workers: apply requests to the store and render their replies.
#include <array>
#include <charconv>
#include <chrono>
#include <thread>

#include "common/assert.h"
#include "runtime/shared.h"

namespace gossip_kv::rt {
namespace {

using Writer = ReplyRenderer::Writer;

class Worker {
 public:
  Worker(Shared& sh, std::size_t index)
      : sh_(sh), ch_(*sh.workers[index]), delta_token_(sh.deltas),
        index_(static_cast<std::uint32_t>(index)) {}

  void run() {
    moodycamel::ConsumerToken token(ch_.queue);
    std::array<Task, limits::kWorkerBatchMax> batch;
    for (;;) {
      // Spins briefly inside the semaphore before it parks; wakes at least every 50 ms to
      // notice shutdown.
      std::size_t n = ch_.queue.wait_dequeue_bulk_timed(token, batch.data(), batch.size(), 50000);
      if (n == 0) {
        if (sh_.stopping.load(std::memory_order_acquire)) return;
        continue;
      }
      // Every version this batch takes is above the floor (the handshake in gossip_thread.cpp).
      ch_.fence.batch_floor_us.store(sh_.clock.last(), std::memory_order_seq_cst);
      now_us_ = wall_clock_us();
      for (std::size_t i = 0; i < n; ++i) handle(batch[i]);
      ch_.fence.batch_floor_us.store(INT64_MAX, std::memory_order_seq_cst);
      WorkerCounters::bump(ch_.counters.completed, n);
      sh_.writer_parker.unpark();
      sh_.reader_parker.unpark();
      if (pushed_deltas_) {
        sh_.gossip_parker.unpark();
        pushed_deltas_ = false;
      }
    }
  }

 private:
  void handle(const Task& t) {
    Slot& slot = *t.slot;
    slot.handoff.receive();
    const Request& req = slot.req;
    switch (req.type) {
      case MsgType::kWrite:
      case MsgType::kBenchWrite: write(slot); break;
      case MsgType::kKvRead:
      case MsgType::kRead: read(slot); break;
      case MsgType::kCas: cas(slot); break;
      case MsgType::kKvMerge: merge_part(slot, t.part); return;  // it marks ready itself
      default:
        renderer_.error(&slot.out, sh_.id.self, req, ErrorCode::kCrash,
                        "internal error: request routed to a worker it cannot serve");
    }
    charge_reply(slot);
    slot.ready.store(1, std::memory_order_release);
  }

  // Counts a large reply as in flight (Shared::reply_bytes) until the writer has written it.
  // Small ones are bounded by the slot count and are not counted: no shared atomic per request.
  void charge_reply(Slot& slot) {
    std::size_t cap = slot.out.stack_.GetCapacity();
    if (cap <= limits::kSlotRetainedBytesMax) return;
    slot.reply_charged_bytes = cap;
    sh_.reply_bytes.fetch_add(cap, std::memory_order_relaxed);
  }

  // Hands the write to the gossip thread, waiting while its queue is full: a dropped delta
  // would be a write the fast path vouches for without ever sending it.
  void push_delta(const Store::WriteResult& w, bool client_write) {
    QueuedDelta d{{w.entry, w.version, now_us_, client_write}, index_};
    if (!sh_.deltas.try_enqueue(delta_token_, d)) {
      WorkerCounters::bump(ch_.counters.delta_waits);
      do {
        sh_.gossip_parker.unpark();
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      } while (!sh_.deltas.try_enqueue(delta_token_, d));
    }
    ch_.fence.enqueued.store(ch_.fence.enqueued.load(std::memory_order_relaxed) + 1,
                             std::memory_order_release);
    pushed_deltas_ = true;
  }

  void write(Slot& slot) {
    const Request& req = slot.req;
    Store::WriteResult w =
        sh_.store.write(req.key, req.value, now_us_, sh_.id.self_origin, sh_.clock);
    WorkerCounters::bump(ch_.counters.client_writes);
    push_delta(w, true);
    if (req.type == MsgType::kWrite) {
      Writer& out = renderer_.begin(&slot.out, sh_.id.self, req, "write_ok");
      renderer_.ts_member(out, w.version.ts_us);
    } else {
      Writer& out = renderer_.begin(&slot.out, sh_.id.self, req, "bench_write_ok");
      char id[24];
      auto [end, ec] = std::to_chars(id, id + sizeof id, slot.write_id);
      out.raw_member("write_id", std::string_view(id, static_cast<std::size_t>(end - id)));
    }
  }

  void read(Slot& slot) {
    const Request& req = slot.req;
    Version v;
    bool found = sh_.store.read(req.key, now_us_, &value_, &v);
    WorkerCounters::bump(ch_.counters.reads);
    if (!found) {
      renderer_.error(&slot.out, sh_.id.self, req, ErrorCode::kKeyDoesNotExist, "Key not found");
      return;
    }
    renderer_.read_ok(&slot.out, sh_.id.self, req, req.type == MsgType::kKvRead, req.key, value_,
                      v.ts_us);
  }

  void cas(Slot& slot) {
    const Request& req = slot.req;
    Store::WriteResult w;
    auto outcome = sh_.store.cas(req.key, req.from, req.value, now_us_, sh_.id.self_origin,
                                 sh_.clock, &w);
    switch (outcome) {
      case Store::CasOutcome::kOk:
        WorkerCounters::bump(ch_.counters.cas_writes);
        push_delta(w, true);
        renderer_.begin(&slot.out, sh_.id.self, req, "cas_ok");
        break;
      case Store::CasOutcome::kMissing:
        renderer_.error(&slot.out, sh_.id.self, req, ErrorCode::kKeyDoesNotExist,
                        "Key not found");
        break;
      case Store::CasOutcome::kMismatch:
        renderer_.error(&slot.out, sh_.id.self, req, ErrorCode::kPreconditionFailed,
                        "current value does not match from");
        break;
    }
  }

  // Applies the entries of a kv_merge that hash to this worker; the last part to finish
  // renders the reply.
  void merge_part(Slot& slot, std::uint32_t part) {
    const Request& req = slot.req;
    std::uint32_t updated = 0;
    for (std::size_t i = 0; i < req.entry_count; ++i) {
      const MergeEntry& e = req.entries[i];
      if (sh_.worker_of(e.key) != part) continue;
      Store::MergeResult r = sh_.store.merge(e.key, e.value, e.version, now_us_);
      if (!r.applied) continue;
      ++updated;
      sh_.clock.observe(e.version.ts_us, now_us_);
      WorkerCounters::bump(ch_.counters.stale_reads, r.stale_reads);
      push_delta({e.version, r.entry}, false);
    }
    WorkerCounters::bump(ch_.counters.merged, updated);
    slot.merge_updated.fetch_add(updated, std::memory_order_relaxed);
    std::uint32_t parts_left = slot.parts_pending.fetch_sub(1, std::memory_order_acq_rel);
    GOSSIP_KV_ASSERT(parts_left >= 1);  // one decrement per part dispatched
    if (parts_left != 1) return;
    Writer& out = renderer_.begin(&slot.out, sh_.id.self, req, "kv_merge_ok");
    out.Key("updated");
    out.Uint(slot.merge_updated.load(std::memory_order_relaxed));
    slot.ready.store(1, std::memory_order_release);
  }

  Shared& sh_;
  Shared::WorkerChannel& ch_;
  moodycamel::ProducerToken delta_token_;
  ReplyRenderer renderer_;
  std::string value_;  // reused read buffer
  std::int64_t now_us_ = 0;
  std::uint32_t index_;
  bool pushed_deltas_ = false;
};

}  // namespace

void worker_main(Shared& sh, std::size_t index) { Worker(sh, index).run(); }

}  // namespace gossip_kv::rt
