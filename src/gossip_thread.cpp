// The gossip thread: feeds the replication engine local deltas, peer messages and time, and
// hands the messages it returns to the writer. Without an engine it only drains the deltas.
#include <array>

#include "common/assert.h"
#include "runtime_internal.h"

namespace gossip_kv::rt {
namespace {

class GossipThread {
 public:
  explicit GossipThread(Shared& sh) : sh_(sh) {}

  void run() {
    while (!sh_.stopping.load(std::memory_order_acquire)) {
      ReplicationEngine* engine = sh_.engine.load(std::memory_order_acquire);
      std::int64_t now_us = wall_clock_us();
      bool busy = drain_deltas(engine, now_us);
      busy |= drain_peers(engine, now_us);
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
  bool drain_deltas(ReplicationEngine* engine, std::int64_t now_us) {
    std::size_t n = sh_.deltas.try_dequeue_bulk(deltas_.data(), deltas_.size());
    if (engine != nullptr) {
      for (std::size_t i = 0; i < n; ++i) engine->on_local_delta(deltas_[i], now_us);
    }
    return n > 0;
  }

  bool drain_peers(ReplicationEngine* engine, std::int64_t now_us) {
    std::size_t n = sh_.peer_inbox.try_dequeue_bulk(peers_.data(), peers_.size());
    for (std::size_t i = 0; i < n; ++i) {
      PeerItem* item = peers_[i];
      item->handoff.receive();
      if (engine != nullptr) engine->on_peer_message(item->src, item->body, now_us, out_);
      std::size_t queued = sh_.peer_inbox_bytes.fetch_sub(item->charged_bytes,
                                                         std::memory_order_relaxed);
      GOSSIP_KV_ASSERT(queued >= item->charged_bytes);
      item->charged_bytes = 0;
      item->trim();
      item->handoff.publish();
      sh_.peer_free.enqueue(item);
    }
    return n > 0;
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
  Shared& sh_;
  std::array<LocalDelta, kBulk> deltas_;
  std::array<PeerItem*, kBulk> peers_;
  std::vector<OutMessage> out_;
  rapidjson::StringBuffer line_;
};

}  // namespace

void gossip_main(Shared& sh) { GossipThread(sh).run(); }

}  // namespace gossip_kv::rt
