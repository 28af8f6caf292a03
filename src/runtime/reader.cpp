// The reader: splits input into lines, parses each into its slot, and routes it: to the worker
// that owns its key, behind a barrier when it touches no key, to the gossip thread when it is
// replication traffic, or straight to the writer when it is answered with an error.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "common/assert.h"
#include "runtime/shared.h"

namespace gossip_kv::rt {
namespace {

constexpr std::size_t kFlushTasks = 128;  // tasks gathered per worker before a bulk enqueue
constexpr std::size_t kBacklogCheckLines = 128;  // lines between two looks at the backlog

}  // namespace

class Reader {
 public:
  explicit Reader(Shared& sh) : sh_(sh), pending_(sh.workers.size()), enqueued_(sh.workers.size()) {
    for (auto& w : sh_.workers) tokens_.emplace_back(w->queue);
    buf_.resize(limits::kLineBytesMax + limits::kReadBlockBytes);
  }

  [[nodiscard]] std::uint64_t seq() const { return seq_; }

  // Serves in_fd to its end; returns with every accepted request dispatched and applied.
  void run(int in_fd) {
    std::size_t have = 0;
    for (;;) {
      ssize_t n = ::read(in_fd, buf_.data() + have, buf_.size() - have);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n < 0) std::fprintf(stderr, "gossip-kv: read failed: %s\n", errno_text().c_str());
        if (have > 0 && !skipping_) on_line(std::string_view(buf_.data(), have));
        break;
      }
      have += static_cast<std::size_t>(n);
      have = split_lines(have);
      flush();
      sh_.writer_parker.unpark();
    }
    barrier();
  }

 private:
  // Serves every complete line in buf_[0, have); returns the bytes of the partial line left,
  // moved to the front. A line longer than kLineBytesMax is skipped whole, with one stderr line,
  // whether its end arrives in this block or many blocks later.
  std::size_t split_lines(std::size_t have) {
    std::size_t start = 0;
    for (;;) {
      const char* nl =
          static_cast<const char*>(std::memchr(buf_.data() + start, '\n', have - start));
      if (nl == nullptr) break;
      std::size_t end = static_cast<std::size_t>(nl - buf_.data());
      if (skipping_) {
        skipping_ = false;  // the end of an over-long line, already reported
      } else if (end - start > limits::kLineBytesMax) {
        report_long_line();
      } else {
        on_line(std::string_view(buf_.data() + start, end - start));
      }
      start = end + 1;
    }
    std::size_t rest = have - start;
    if (skipping_) return 0;  // more of a line already reported: drop it
    if (rest > limits::kLineBytesMax) {
      report_long_line();
      skipping_ = true;
      return 0;
    }
    std::memmove(buf_.data(), buf_.data() + start, rest);
    return rest;
  }

  void report_long_line() {
    std::fprintf(stderr, "gossip-kv: skipped a line longer than %zu bytes\n",
                 limits::kLineBytesMax);
    sh_.lines_skipped.fetch_add(1, std::memory_order_relaxed);
  }

  Slot& slot() { return sh_.slots[seq_ % sh_.slots.size()]; }

  // Waits until the writer has released the slot for seq_ and the bytes of the requests in
  // flight are under limits::kInflightRequestBytesMax (with nothing in flight they are 0).
  Slot& acquire() {
    auto free = [&] {
      std::uint64_t released = sh_.released.load(std::memory_order_acquire);
      std::uint64_t bytes = charged_total_ - sh_.released_bytes.load(std::memory_order_relaxed) +
                            sh_.reply_bytes.load(std::memory_order_relaxed);
      return seq_ - released < sh_.slots.size() && bytes < limits::kInflightRequestBytesMax;
    };
    if (!free()) {
      flush();  // the writer may be waiting on tasks still gathered here
      sh_.writer_parker.unpark();
      while (!free()) sh_.reader_parker.park(free, 1000);
    }
    GOSSIP_KV_ASSERT(seq_ - sh_.released.load(std::memory_order_acquire) < sh_.slots.size());
    if (++lines_since_backlog_check_ >= kBacklogCheckLines) {
      lines_since_backlog_check_ = 0;
      limit_backlog();
    }
    return slot();
  }

  // Tasks dispatched to workers and not yet applied.
  std::uint64_t backlog() const {
    std::uint64_t n = 0;
    for (std::size_t w = 0; w < enqueued_.size(); ++w) {
      n += enqueued_[w] - sh_.workers[w]->counters.completed.load(std::memory_order_acquire);
    }
    return n;
  }

  // Waits while more than limits::kWorkerBacklogTasksMax tasks wait for workers. A reply is
  // counted in flight only once rendered; this bounds the replies not yet rendered, so that a
  // burst of reads of large values cannot put one large reply in every slot.
  void limit_backlog() {
    if (backlog() <= limits::kWorkerBacklogTasksMax) return;
    flush();
    auto ok = [&] { return backlog() <= limits::kWorkerBacklogTasksMax; };
    while (!ok()) sh_.reader_parker.park(ok, 1000);
  }

  // Counts the parsed request's buffers as in flight until the writer releases its slot.
  void charge(Slot& s) {
    s.charged_bytes = s.req.capacity_bytes();
    charged_total_ += s.charged_bytes;
    GOSSIP_KV_ASSERT(charged_total_ >= sh_.released_bytes.load(std::memory_order_relaxed));
  }

  void on_line(std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;
    Slot& s = acquire();
    s.stamp_gossip_count = false;
    Request& req = s.req;
    if (parser_.parse(line, &req, &problem_) == ParseStatus::kUnanswerable) {
      std::fprintf(stderr, "gossip-kv: dropped a line (%s): %.*s\n", problem_.c_str(),
                   static_cast<int>(std::min<std::size_t>(line.size(), 200)), line.data());
      sh_.lines_skipped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (req.type == MsgType::kReply) return;  // never answer an answer
    bool initialized = sh_.initialized.load(std::memory_order_relaxed);
    if (req.type == MsgType::kPeer && initialized) {
      if (req.error == ErrorCode::kNone) return to_gossip(req);
      // A malformed peer line (nested too deep, invalid UTF-8, duplicate members) never
      // reaches the replication engine; a peer is not answered with errors.
      std::fprintf(stderr, "gossip-kv: dropped a peer line (%s)\n", req.error_text.c_str());
      sh_.lines_skipped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    charge(s);
    if (!initialized && req.type != MsgType::kInit) {
      reply_error(s, ErrorCode::kTemporarilyUnavailable, "node not initialized: send init first");
    } else if (req.error != ErrorCode::kNone) {
      reply_error(s, req.error, req.error_text);
    } else if (req.type == MsgType::kUnknown || req.type == MsgType::kPeer) {
      reply_error(s, ErrorCode::kNotSupported, "unsupported message type: " + req.type_name);
    } else {
      dispatch(s);
    }
    ++seq_;
  }

  void dispatch(Slot& s) {
    Request& req = s.req;
    switch (req.type) {
      case MsgType::kInit:
      case MsgType::kBenchReport:
      case MsgType::kBenchStats:
      case MsgType::kBenchFigures:
        barrier();
        handle_barrier_request(sh_, s, renderer_);
        s.ready.store(1, std::memory_order_release);
        return;
      case MsgType::kWrite:
      case MsgType::kBenchWrite:
        s.write_id = next_write_id_++;
        return push(sh_.worker_of(req.key), {&s, 0});
      case MsgType::kKvMerge:
        return dispatch_merge(s);
      default:
        return push(sh_.worker_of(req.key), {&s, 0});
    }
  }

  // Splits a kv_merge by key owner: each owning worker applies its entries in its queue's
  // order, so every key still sees its operations in arrival order.
  void dispatch_merge(Slot& s) {
    Request& req = s.req;
    std::vector<bool>& owners = owners_scratch_;
    owners.assign(sh_.workers.size(), false);
    std::uint32_t parts = 0;
    for (std::size_t i = 0; i < req.entry_count; ++i) {
      MergeEntry& e = req.entries[i];
      if (!e.node.empty()) {
        auto it = sh_.id.origin_of.find(e.node);
        e.version.origin = it == sh_.id.origin_of.end() ? 0 : it->second;
      }
      std::size_t w = sh_.worker_of(e.key);
      if (!owners[w]) parts += 1;
      owners[w] = true;
    }
    s.merge_updated.store(0, std::memory_order_relaxed);
    s.parts_pending.store(parts, std::memory_order_relaxed);
    if (parts == 0) {
      ReplyRenderer::Writer& w = renderer_.begin(&s.out, sh_.id.self, req, "kv_merge_ok");
      w.Key("updated");
      w.Uint(0);
      s.ready.store(1, std::memory_order_release);
      return;
    }
    for (std::size_t w = 0; w < owners.size(); ++w) {
      if (owners[w]) push(w, {&s, static_cast<std::uint32_t>(w)});
    }
  }

  void push(std::size_t worker, Task t) {
    t.slot->handoff.publish();
    pending_[worker].push_back(t);
    if (pending_[worker].size() >= kFlushTasks) flush_one(worker);
  }

  void flush_one(std::size_t w) {
    auto& tasks = pending_[w];
    if (tasks.empty()) return;
    sh_.workers[w]->queue.enqueue_bulk(tokens_[w], tasks.begin(), tasks.size());
    enqueued_[w] += tasks.size();
    tasks.clear();
  }

  void flush() {
    for (std::size_t w = 0; w < pending_.size(); ++w) flush_one(w);
  }

  // Returns once every task dispatched so far has been applied.
  void barrier() {
    flush();
    auto idle = [&] {
      for (std::size_t w = 0; w < enqueued_.size(); ++w) {
        if (sh_.workers[w]->counters.completed.load(std::memory_order_acquire) != enqueued_[w]) {
          return false;
        }
      }
      return true;
    };
    while (!idle()) sh_.reader_parker.park(idle, 1000);
  }

  void reply_error(Slot& s, ErrorCode code, std::string_view text) {
    std::string_view self = sh_.id.self.empty() ? std::string_view(s.req.dest) : sh_.id.self;
    renderer_.error(&s.out, self, s.req, code, text);
    s.ready.store(1, std::memory_order_release);
  }

  void to_gossip(Request& req) {
    PeerItem* item = nullptr;
    std::size_t bytes = req.value.size();
    // Room: a free item, and the bytes queued for the gossip thread within their bound (one
    // message always fits an empty inbox). Without room the reader waits for the gossip
    // thread: backpressure, never a drop.
    auto room = [&] {
      std::size_t queued = sh_.peer_inbox_bytes.load(std::memory_order_acquire);
      return queued == 0 || queued + bytes <= limits::kPeerInboxBytesMax;
    };
    if (!room() || !sh_.peer_free.try_dequeue(item)) {
      sh_.peer_pool_waits.fetch_add(1, std::memory_order_relaxed);
      flush();
      sh_.writer_parker.unpark();
      auto ready = [&] { return room() && sh_.peer_free.size_approx() > 0; };
      while (!room() || !sh_.peer_free.try_dequeue(item)) {
        sh_.gossip_parker.unpark();
        sh_.reader_parker.park(ready, 1000);
      }
    }
    item->handoff.receive();
    sh_.peer_inbox_bytes.fetch_add(bytes, std::memory_order_relaxed);
    item->charged_bytes = bytes;
    item->src.swap(req.src);
    item->body.swap(req.value);
    item->handoff.publish();
    sh_.peer_inbox.enqueue(item);
    sh_.gossip_parker.unpark();
  }

  Shared& sh_;
  Parser parser_;
  ReplyRenderer renderer_;
  std::string problem_;
  std::vector<std::vector<Task>> pending_;
  std::vector<std::uint64_t> enqueued_;
  std::vector<moodycamel::ProducerToken> tokens_;
  std::vector<bool> owners_scratch_;
  std::vector<char> buf_;
  std::uint64_t seq_ = 0;
  std::uint64_t charged_total_ = 0;  // sum of charged_bytes over every slot admitted
  std::size_t lines_since_backlog_check_ = 0;
  std::uint64_t next_write_id_ = 1;
  bool skipping_ = false;

};

// Runs the reader to end of input; returns the number of slots it used.
std::uint64_t run_reader(Shared& sh, int in_fd) {
  Reader reader(sh);
  reader.run(in_fd);
  return reader.seq();
}

}  // namespace gossip_kv::rt
