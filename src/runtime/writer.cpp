// The writer: emits replies in arrival order and peer messages as they come, stamping each
// line's msg_id in output order, many lines per write() call.
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common/assert.h"
#include "runtime/shared.h"

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
      give_back_to_os();
      sh_.writer_parker.park([&] { return slot_ready() || has_outbox(); }, 20000);
    }
  }

 private:
  static constexpr int kSpinsBeforePark = 64;
  static constexpr std::size_t kTrimAfterBytes = std::size_t{16} << 20;

  Slot& slot(std::uint64_t seq) { return sh_.slots[seq % sh_.slots.size()]; }
  bool slot_ready() { return slot(next_).ready.load(std::memory_order_acquire) != 0; }
  bool has_outbox() const { return sh_.outbox_nonempty.load(std::memory_order_acquire); }

  bool drain_slots() {
    std::uint64_t start = next_;
    while (slot_ready()) {
      Slot& s = slot(next_);
      GOSSIP_KV_ASSERT(s.out.GetSize() > 0);  // a ready slot holds its (open) reply
      std::string_view reply(s.out.GetString(), s.out.GetSize());
      if (s.stamp_gossip_count) {
        buf_.append(reply);
        append_gossip_count(s.report_writes);
        reply = {};
      }
      close_line(buf_, reply, msg_id_++);
      s.ready.store(0, std::memory_order_relaxed);
      // Credit the slot's bytes before `released` says it is free (release() orders both).
      released_bytes_ += s.charged_bytes;
      if (s.reply_charged_bytes != 0) {
        sh_.reply_bytes.fetch_sub(s.reply_charged_bytes, std::memory_order_relaxed);
        s.reply_charged_bytes = 0;
      }
      given_back_ += s.trim();
      s.charged_bytes = 0;
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

  // Freed buffers go back to malloc, which keeps them (in the arena of the thread that
  // allocated them) for good: after a burst of large requests the node stayed at its peak. Once
  // idle after giving back kTrimAfterBytes, ask malloc to return its free pages to the OS.
  void give_back_to_os() {
    if (given_back_ < kTrimAfterBytes) return;
    given_back_ = 0;
#if defined(__GLIBC__)
    ::malloc_trim(0);
#endif
  }

  void release() {
    sh_.released_bytes.store(released_bytes_, std::memory_order_relaxed);
    sh_.released.store(next_, std::memory_order_release);
    sh_.reader_parker.unpark();
  }

  bool drain_outbox() {
    if (!has_outbox()) return false;
    {
      MutexLock lock(sh_.outbox_mu);
      lines_.swap(sh_.outbox);
      sh_.outbox_bytes = 0;
      sh_.outbox_nonempty.store(false, std::memory_order_release);
    }
    for (const std::string& line : lines_) {
      close_line(buf_, line, msg_id_++);
      if (buf_.size() >= limits::kWriteBatchBytes) flush();
    }
    peer_lines_ += lines_.size();
    lines_.clear();
    sh_.gossip_parker.unpark();  // it may wait for room in the outbox
    return true;
  }

  // The task's figures: messages sent to peers so far (every one is a line this writer wrote)
  // and their ratio to the node's client writes (0 when there are none).
  void append_gossip_count(std::uint64_t writes) {
    char num[64];
    buf_.append(",\"total_gossip_msgs\":");
    auto [end, ec] = std::to_chars(num, num + sizeof num, peer_lines_);
    buf_.append(num, end);
    buf_.append(",\"msgs_per_write\":");
    if (writes == 0) {
      buf_.push_back('0');
      return;
    }
    double ratio = static_cast<double>(peer_lines_) / static_cast<double>(writes);
    auto [rend, rec] = std::to_chars(num, num + sizeof num, ratio);
    buf_.append(num, rend);
    if (std::string_view(num, static_cast<std::size_t>(rend - num)).find_first_of(".e") ==
        std::string_view::npos) {
      buf_.append(".0");  // a ratio reads as a float, like the task's 4.5
    }
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
    // One batch may run a line past kWriteBatchBytes: never keep more than twice the batch.
    if (buf_.capacity() > 4 * limits::kWriteBatchBytes) {
      std::string().swap(buf_);
      buf_.reserve(limits::kWriteBatchBytes * 2);
    }
  }

  Shared& sh_;
  std::string buf_;
  std::vector<std::string> lines_;
  std::uint64_t next_ = 0;
  std::uint64_t released_bytes_ = 0;  // published as Shared::released_bytes
  std::size_t given_back_ = 0;        // slot buffers freed since the last malloc_trim
  std::uint64_t msg_id_ = 0;
  std::uint64_t peer_lines_ = 0;
  bool broken_ = false;
};

}  // namespace

void writer_main(Shared& sh) { OutputWriter(sh).run(); }

}  // namespace gossip_kv::rt
