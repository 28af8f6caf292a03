// The writer: emits replies in arrival order and peer messages as they come, stamping each
// line's msg_id in output order, many lines per write() call.
#include <cerrno>
#include <cstdio>
#include <unistd.h>

#include "runtime_internal.h"

namespace gossip_kv::rt {
namespace {

class OutputWriter {
 public:
  explicit OutputWriter(Shared& sh) : sh_(sh) { buf_.reserve(limits::kWriteBatchBytes * 2); }

  void run() {
    int idle_spins = 0;
    for (;;) {
      bool progressed = drain_slots();
      progressed |= drain_outbox();
      flush();
      if (progressed) {
        idle_spins = 0;
        continue;
      }
      if (next_ == sh_.final_seq.load(std::memory_order_acquire) &&
          sh_.stopping.load(std::memory_order_acquire) && !has_outbox()) {
        return;
      }
      if (++idle_spins < kSpinsBeforePark) continue;
      sh_.writer_parker.park([&] { return slot_ready() || has_outbox(); }, 20000);
    }
  }

 private:
  static constexpr int kSpinsBeforePark = 64;

  Slot& slot(std::uint64_t seq) { return sh_.slots[seq % sh_.slots.size()]; }
  bool slot_ready() { return slot(next_).ready.load(std::memory_order_acquire) != 0; }
  bool has_outbox() const { return sh_.outbox_nonempty.load(std::memory_order_acquire); }

  bool drain_slots() {
    std::uint64_t start = next_;
    while (slot_ready()) {
      Slot& s = slot(next_);
      close_line(buf_, std::string_view(s.out.GetString(), s.out.GetSize()), msg_id_++);
      s.ready.store(0, std::memory_order_relaxed);
      ++next_;
      if (buf_.size() >= limits::kWriteBatchBytes) {
        release();
        flush();
      }
    }
    if (next_ == start) return false;
    release();
    return true;
  }

  void release() {
    sh_.released.store(next_, std::memory_order_release);
    sh_.reader_parker.unpark();
  }

  bool drain_outbox() {
    if (!has_outbox()) return false;
    {
      std::lock_guard lock(sh_.outbox_mu);
      lines_.swap(sh_.outbox);
      sh_.outbox_nonempty.store(false, std::memory_order_release);
    }
    for (const std::string& line : lines_) close_line(buf_, line, msg_id_++);
    lines_.clear();
    sh_.gossip_parker.unpark();  // it may wait for room in the outbox
    return true;
  }

  void flush() {
    std::size_t done = 0;
    while (done < buf_.size() && !broken_) {
      ssize_t n = ::write(sh_.out_fd, buf_.data() + done, buf_.size() - done);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
        // Nobody reads our output any more: say so once and keep draining, so that no
        // other thread ever waits on a writer that cannot write.
        std::fprintf(stderr, "gossip-kv: output closed (%s); discarding replies\n",
                     errno_text().c_str());
        broken_ = true;
      }
    }
    buf_.clear();
  }

  Shared& sh_;
  std::string buf_;
  std::vector<std::string> lines_;
  std::uint64_t next_ = 0;
  std::uint64_t msg_id_ = 0;
  bool broken_ = false;
};

}  // namespace

void writer_main(Shared& sh) { OutputWriter(sh).run(); }

}  // namespace gossip_kv::rt
