// Shared state of the node's threads. Private to src/: see docs/ARCHITECTURE.md.
//
// Thread safety:
//  1. Slot ring: the reader owns slot seq from when `released` passes it until it dispatches
//     it; then the workers that got its tasks own it (a kv_merge slot is shared by its parts,
//     which touch only their own entries and the atomic counters); a worker's release store
//     to `ready` hands it to the writer; the writer's release store to `released` hands it back.
//  2. NodeIdentity is written once by the reader, at init, before any task that reads it is
//     enqueued (the queue orders the accesses); it never changes afterwards.
//  3. WorkerCounters are written only by their worker (relaxed stores) and read by anyone.
//  4. The engine pointer is published once (release) by the reader and read by the gossip
//     thread (acquire) and by barrier requests on the reader.
//  5. The peer outbox is guarded by outbox_mu.
#pragma once

#include <atomic>
#include <cerrno>
#include <system_error>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <concurrentqueue/blockingconcurrentqueue.h>
#include <concurrentqueue/concurrentqueue.h>
#include <concurrentqueue/lightweightsemaphore.h>

#include "gossip_kv/codec.h"
#include "gossip_kv/gossip_io.h"
#include "gossip_kv/key.h"
#include "gossip_kv/limits.h"
#include "gossip_kv/mutex.h"
#include "gossip_kv/runtime.h"
#include "gossip_kv/store.h"
#include "gossip_kv/version.h"

// How many times a thread polls before it sleeps on a semaphore (moodycamel's default is
// 10,000). A build option for latency experiments (perf/README.md); 10,000 unless defined.
#ifndef GOSSIP_KV_PARK_SPINS
#define GOSSIP_KV_PARK_SPINS 10000
#endif

namespace gossip_kv::rt {

inline constexpr int kParkSpins = GOSSIP_KV_PARK_SPINS;
static_assert(kParkSpins >= 0, "GOSSIP_KV_PARK_SPINS counts polls: 0 or more");

// The worker queues' traits: moodycamel's, with the spin count above.
struct WorkerQueueTraits : moodycamel::ConcurrentQueueDefaultTraits {
  static const int MAX_SEMA_SPINS = kParkSpins;
};

// Lets one thread sleep until another has work for it, without a syscall when it is awake:
// the sleeper announces itself before its last check, a waker signals only when it sees it.
class Parker {
 public:
  template <class Ready>
  void park(const Ready& ready, std::int64_t timeout_us) {
    sleeping_.store(true, std::memory_order_seq_cst);
    if (!ready()) sem_.wait(timeout_us);
    sleeping_.store(false, std::memory_order_seq_cst);
  }
  void unpark() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_relaxed) && sleeping_.exchange(false)) sem_.signal();
  }

 private:
  std::atomic<bool> sleeping_{false};
  moodycamel::LightweightSemaphore sem_{0, kParkSpins};
};

// Hands plain data from one thread to another alongside a moodycamel queue. The queue already
// orders the accesses, but through standalone fences that ThreadSanitizer cannot see; this
// release/acquire pair states the same order in a form it checks. On x86 both are plain moves.
class Handoff {
 public:
  void publish() { gen_.fetch_add(1, std::memory_order_release); }
  void receive() const { (void)gen_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::uint32_t> gen_{0};
};

struct Slot {
  Handoff handoff;  // reader -> workers
  std::atomic<std::uint32_t> ready{0};
  std::atomic<std::uint32_t> parts_pending{0};  // kv_merge: workers yet to apply their entries
  std::atomic<std::uint32_t> merge_updated{0};
  std::uint64_t write_id = 0;  // write / bench_write: assigned in arrival order by the reader
  // bench_report / bench_stats: the writer appends total_gossip_msgs and msgs_per_write.
  bool stamp_gossip_count = false;
  std::uint64_t report_writes = 0;
  // Request::capacity_bytes() when the reader admitted it: credited back by the writer.
  std::size_t charged_bytes = 0;
  // A reply buffer above limits::kSlotRetainedBytesMax, counted in Shared::reply_bytes by the
  // worker that rendered it and taken out by the writer.
  std::size_t reply_charged_bytes = 0;
  Request req;
  rapidjson::StringBuffer out;  // the reply, left open for the writer's msg_id

  // Heap bytes the slot holds: its request's buffers and its reply buffer.
  [[nodiscard]] std::size_t capacity_bytes() const {
    return req.capacity_bytes() + out.stack_.GetCapacity();
  }
  // Called by the writer once the reply is out: a slot holding more than
  // limits::kSlotRetainedBytesMax gives all of it back. Returns the bytes given back. The
  // request's buffers are charged_bytes, as the reader counted them when it admitted the
  // request (workers do not grow them).
  std::size_t trim() {
    std::size_t held = charged_bytes + out.stack_.GetCapacity();
    if (held <= limits::kSlotRetainedBytesMax) return 0;
    req.release_buffers();
    out = rapidjson::StringBuffer();  // allocates nothing until its first Put
    return held;
  }
};

struct Task {
  Slot* slot = nullptr;
  std::uint32_t part = 0;  // kv_merge: the worker whose entries this task applies
};

struct alignas(64) WorkerCounters {
  std::atomic<std::uint64_t> client_writes{0};  // write and bench_write (numbered by write_id)
  std::atomic<std::uint64_t> cas_writes{0};     // successful cas: replicated, reported apart
  std::atomic<std::uint64_t> reads{0};          // read and kv_read served (found or not)
  std::atomic<std::uint64_t> merged{0};         // kv_merge entries taken
  std::atomic<std::uint64_t> stale_reads{0};    // found by kv_merge entries
  std::atomic<std::uint64_t> delta_waits{0};    // delta queue full: the worker waited (backpressure)
  std::atomic<std::uint64_t> completed{0};      // tasks finished (for the reader's barrier)

  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

// A local write on its way to the gossip thread, with the worker that took it: the gossip thread
// counts deltas per worker for the own-watermark handshake (gossip_thread.cpp).
struct QueuedDelta {
  LocalDelta delta;
  std::uint32_t worker = 0;
};

// The worker's half of the own-watermark handshake (gossip_thread.cpp), on its own cache line.
struct alignas(64) DeltaFence {
  // While the worker runs a batch: the clock's last timestamp when the batch began, so every
  // version the batch takes is above it. INT64_MAX between batches.
  std::atomic<std::int64_t> batch_floor_us{INT64_MAX};
  // Deltas the worker has enqueued for the gossip thread (stored with release after each one).
  std::atomic<std::uint64_t> enqueued{0};
};

struct NodeIdentity {
  std::string self;
  std::vector<std::string> node_ids;  // sorted
  std::uint32_t self_origin = 0;
  absl::flat_hash_map<std::string, std::uint32_t> origin_of;  // node id -> 1 + sorted index
};

struct PeerItem {
  Handoff handoff;  // reader -> gossip thread, and back through the free pool
  std::string src;
  std::string body;
  std::size_t charged_bytes = 0;  // counted in Shared::peer_inbox_bytes while queued

  // Called by the gossip thread before it returns the item to the free pool: buffers above
  // limits::kPeerBufferRetainedBytesMax are given back.
  void trim() {
    if (body.capacity() > limits::kPeerBufferRetainedBytesMax) std::string().swap(body);
    if (src.capacity() > limits::kPeerBufferRetainedBytesMax) std::string().swap(src);
  }
};

struct Shared {
  Shared(std::size_t worker_count, std::size_t shards);
  ~Shared();
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;

  std::size_t worker_of(std::string_view encoded_key) const {
    return static_cast<std::size_t>((key::hash(encoded_key) >> 32) % workers.size());
  }

  int out_fd = 1;
  EngineFactory make_engine;  // called once, at init
  std::uint64_t seed = 0;
  Store store;
  HybridClock clock;
  NodeIdentity id;
  std::atomic<bool> initialized{false};
  std::atomic<ReplicationEngine*> engine{nullptr};
  std::unique_ptr<ReplicationEngine> engine_owner;

  std::vector<Slot> slots{limits::kInflightRequestsMax};
  std::atomic<std::uint64_t> released{0};  // the writer has emitted every slot below this
  // Sum of charged_bytes over the slots below `released` (written by the writer before it
  // advances `released`); the reader's own sum over admitted slots minus this is in flight.
  std::atomic<std::uint64_t> released_bytes{0};
  // Bytes of large replies (reply_charged_bytes) rendered and not yet written: the reader counts
  // them as in flight too, so a burst of reads of 64 KiB values is bounded in bytes as well.
  std::atomic<std::uint64_t> reply_bytes{0};
  std::atomic<std::uint64_t> final_seq{UINT64_MAX};  // set at end of input

  struct alignas(64) WorkerChannel {
    moodycamel::BlockingConcurrentQueue<Task, WorkerQueueTraits> queue{limits::kInflightRequestsMax};
    WorkerCounters counters;
    DeltaFence fence;
  };
  std::vector<std::unique_ptr<WorkerChannel>> workers;
  std::atomic<bool> stopping{false};

  // Full: the worker waits (backpressure up to the reader), never drops: a dropped delta would
  // be a write the fast path vouches for without sending.
  moodycamel::ConcurrentQueue<QueuedDelta> deltas{limits::kDeltaQueueMax};
  moodycamel::ConcurrentQueue<PeerItem*> peer_inbox{limits::kPeerInboxMax};
  moodycamel::ConcurrentQueue<PeerItem*> peer_free{limits::kPeerInboxMax};
  // Times the reader found the peer pool empty and waited for the gossip thread to free one.
  std::atomic<std::uint64_t> peer_pool_waits{0};

  std::atomic<std::size_t> peer_inbox_bytes{0};  // bodies queued for the gossip thread

  Mutex outbox_mu;
  std::vector<std::string> outbox GOSSIP_KV_GUARDED_BY(outbox_mu);  // open lines to peers
  std::size_t outbox_bytes GOSSIP_KV_GUARDED_BY(outbox_mu) = 0;     // their total length
  std::atomic<bool> outbox_nonempty{false};

  std::atomic<std::uint64_t> lines_skipped{0};  // unanswerable or over-long input lines

  Parker reader_parker;  // waits for released slots, idle workers and free peer items
  Parker writer_parker;  // waits for ready slots and peer lines
  Parker gossip_parker;  // waits for deltas, peer lines or its next tick
};

void worker_main(Shared& sh, std::size_t index);
void writer_main(Shared& sh);
void gossip_main(Shared& sh);

// Runs a request that touches no key or all of them, on the reader, behind the barrier.
void handle_barrier_request(Shared& sh, Slot& slot, ReplyRenderer& renderer);

}  // namespace gossip_kv::rt

namespace gossip_kv::rt {
// The current errno as text (std::strerror is not thread safe).
inline std::string errno_text() { return std::error_code(errno, std::generic_category()).message(); }

// Runs the reader on the calling thread to end of input; returns the number of slots used.
std::uint64_t run_reader(Shared& sh, int in_fd);
}  // namespace gossip_kv::rt
