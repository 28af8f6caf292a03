// The gossip thread: feeds the replication engine local deltas, peer messages and time, and
// hands the messages it returns to the writer. Without an engine it only drains the deltas.
#include <algorithm>
#include <array>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common/assert.h"
#include "runtime/shared.h"

namespace gossip_kv::rt {
namespace {

class GossipThread {
 public:
  explicit GossipThread(Shared& sh)
      : sh_(sh), dequeued_(sh.workers.size(), 0), snapshot_enqueued_(sh.workers.size(), 0) {}

  void run() {
    while (!sh_.stopping.load(std::memory_order_acquire)) {
      ReplicationEngine* engine = sh_.engine.load(std::memory_order_acquire);
      bool busy = drain_deltas(engine);
      if (engine != nullptr) publish_own_watermark(*engine);
      busy |= drain_peers(engine);
      std::int64_t now_us = wall_clock_us();
      trim_when_settled(now_us);
      std::int64_t wait_us = 50000;
      if (engine != nullptr) {
        if (now_us >= engine->next_deadline_us()) engine->tick(now_us, out_);
        wait_us = engine->next_deadline_us() - wall_clock_us();
      }
      busy |= send();
      if (busy || wait_us <= 0) continue;
      sh_.gossip_parker.park(
          [&] { return sh_.deltas.size_approx() > 0 || sh_.peer_inbox.size_approx() > 0; },
          wait_us < 50000 ? wait_us : 50000);
    }
  }

 private:
  // Takes at most as many deltas as the engine has room for; the rest wait in the queue (and
  // the workers behind it).
  // The time given is read after the dequeue: every write handed over was in the store by
  // then (the engine takes it as when this node held it).
  bool drain_deltas(ReplicationEngine* engine) {
    std::size_t room = engine != nullptr ? std::min(engine->delta_room(), deltas_.size())
                                         : deltas_.size();
    std::size_t n = room == 0 ? 0 : sh_.deltas.try_dequeue_bulk(deltas_.data(), room);
    std::int64_t now_us = n > 0 ? wall_clock_us() : 0;
    for (std::size_t i = 0; i < n; ++i) {
      ++dequeued_[deltas_[i].worker];
      if (engine != nullptr) engine->on_local_delta(deltas_[i].delta, now_us);
    }
    return n > 0;
  }

  // The own-watermark handshake. Workers take versions from the shared clock and hand their
  // deltas over in any order, so the newest delta seen says nothing about older ones still on
  // their way. The safe watermark S is the highest timestamp such that every local write with a
  // version <= S has been dequeued here:
  //  1. C = clock.last() (acquire): every write with a version <= C took it before this read.
  //  2. each worker's batch floor (seq_cst): a worker inside a batch may still hand over writes
  //     above its floor (set before the batch's first version, so it is seen here whenever one
  //     of its versions is <= C): S <= floor.
  //  3. each worker's enqueued count (acquire; stored before the floor goes back to INT64_MAX):
  //     until this thread has dequeued that many of its deltas, S stays where it was.
  //  The three reads are taken together as a snapshot, published once this thread has dequeued
  //  every delta the snapshot counted (waiting for the queue to be empty instead would stall
  //  the watermark under sustained writes, when some delta is always in flight).
  void publish_own_watermark(ReplicationEngine& engine) {
    if (!snapshot_taken_) {
      snapshot_safe_ = sh_.clock.last();
      for (std::size_t w = 0; w < sh_.workers.size(); ++w) {
        const DeltaFence& f = sh_.workers[w]->fence;
        snapshot_safe_ = std::min(snapshot_safe_, f.batch_floor_us.load(std::memory_order_seq_cst));
        snapshot_enqueued_[w] = f.enqueued.load(std::memory_order_acquire);
      }
      snapshot_taken_ = true;
    }
    for (std::size_t w = 0; w < sh_.workers.size(); ++w) {
      if (dequeued_[w] < snapshot_enqueued_[w]) return;
    }
    snapshot_taken_ = false;
    if (snapshot_safe_ > published_) {
      published_ = snapshot_safe_;
      engine.on_local_watermark(snapshot_safe_);
    }
  }

  // Each message gets the time it is handled, not the loop's: the engine records when it
  // took each version, and a bulk of messages can take milliseconds.
  bool drain_peers(ReplicationEngine* engine) {
    std::size_t n = sh_.peer_inbox.try_dequeue_bulk(peers_.data(), peers_.size());
    for (std::size_t i = 0; i < n; ++i) {
      PeerItem* item = peers_[i];
      item->handoff.receive();
      if (engine != nullptr) engine->on_peer_message(item->src, item->body, wall_clock_us(), out_);
      std::size_t queued = sh_.peer_inbox_bytes.fetch_sub(item->charged_bytes,
                                                         std::memory_order_relaxed);
      GOSSIP_KV_ASSERT(queued >= item->charged_bytes);
      item->charged_bytes = 0;
      item->trim();
      item->handoff.publish();
      sh_.peer_free.enqueue(item);
    }
    if (n > 0) sh_.reader_parker.unpark();  // it may be waiting for a free item
    return n > 0;
  }

  // A burst leaves glibc's heap holding what its transient buffers freed (tables outgrown by
  // rehashing, peer messages, queues), a fifth of the resident memory at 1M keys. Once the
  // replica's contents have not changed for kTrimAfterUs (the digest tree's root, one atomic
  // load), the free pages go back to the OS: once per settled period, never while writes
  // or merges change the replica (reads may still be running: a trim costs them a few ms,
  // once). The writer trims too, after giving back large reply buffers (writer.cpp).
  void trim_when_settled(std::int64_t now_us) {
    std::uint64_t root = sh_.store.tree_digest(0, 0);
    if (root != root_seen_) {
      root_seen_ = root;
      changed_us_ = now_us;
      trimmed_ = false;
      return;
    }
    if (trimmed_ || now_us - changed_us_ < kTrimAfterUs) return;
    trimmed_ = true;
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
  }

  // Renders the engine's messages and hands them to the writer, waiting while the outbox is
  // full (the writer always drains it, so this wait ends).
  bool send() {
    if (out_.empty()) return false;
    for (const OutMessage& m : out_) {
      ReplyRenderer::peer_message(&line_, sh_.id.self, m.dest, m.body);
      for (;;) {
        {
          MutexLock lock(sh_.outbox_mu);
          bool room = sh_.outbox.size() < limits::kPeerOutboxMax &&
                      (sh_.outbox_bytes < limits::kPeerOutboxBytesMax || sh_.outbox.empty());
          if (room) {
            sh_.outbox.emplace_back(line_.GetString(), line_.GetSize());
            sh_.outbox_bytes += line_.GetSize();
            sh_.outbox_nonempty.store(true, std::memory_order_release);
            break;
          }
        }
        sh_.writer_parker.unpark();
        sh_.gossip_parker.park([&] { return !sh_.outbox_nonempty.load(); }, 1000);
      }
    }
    out_.clear();
    sh_.writer_parker.unpark();
    return true;
  }

  static constexpr std::size_t kBulk = 1024;
  static constexpr std::int64_t kTrimAfterUs = 1'000'000;
  Shared& sh_;
  std::uint64_t root_seen_ = 0;
  std::int64_t changed_us_ = 0;
  bool trimmed_ = true;  // nothing to give back before the first change
  std::array<QueuedDelta, kBulk> deltas_;
  std::vector<std::uint64_t> dequeued_;  // per worker: its deltas taken off the queue
  std::int64_t published_ = INT64_MIN;   // the last safe own watermark given to the engine
  // The handshake's snapshot, waiting for this thread to dequeue what it counted.
  bool snapshot_taken_ = false;
  std::int64_t snapshot_safe_ = INT64_MIN;
  std::vector<std::uint64_t> snapshot_enqueued_;
  std::array<PeerItem*, kBulk> peers_;
  std::vector<OutMessage> out_;
  rapidjson::StringBuffer line_;
};

}  // namespace

void gossip_main(Shared& sh) { GossipThread(sh).run(); }

}  // namespace gossip_kv::rt
