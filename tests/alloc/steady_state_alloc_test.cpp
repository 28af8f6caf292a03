// The node's request path allocates nothing once its buffers have grown to the workload's sizes:
// a whole node (reader, workers, gossip thread with the real engine, writer) runs in this process
// on pipes, and every call into malloc is counted while it serves a mix of writes, reads and cas with
// values of up to 256 bytes, and for 200 ms after.
//
// A test executable of its own: it replaces malloc and friends (forwarding to glibc's), which
// the sanitizers' own interceptors do not allow; tests/CMakeLists.txt builds it without them.
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <string_view>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "gossip_kv/gossip_config.h"
#include "gossip_kv/gossip_io.h"
#include "gossip_kv/runtime.h"
#include "gossip_kv/store.h"
#include "gossip_kv/version.h"

namespace {

std::atomic<bool> g_counting{false};
std::atomic<std::uint64_t> g_allocations{0};

void note_allocation() {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace

// glibc's allocator under its internal names; operator new calls malloc, RapidJSON's allocator
// malloc and realloc, so every heap allocation of the node passes through one of these.
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);

void* malloc(std::size_t size) {
  note_allocation();
  return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) {
  note_allocation();
  return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) {
  note_allocation();
  return __libc_realloc(p, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) {
  note_allocation();
  return __libc_memalign(alignment, size);
}
void* memalign(std::size_t alignment, std::size_t size) {
  note_allocation();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) {
  note_allocation();
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}

namespace gossip_kv {
namespace {

constexpr std::size_t kSlots = 16'384;  // the runtime's slot ring (runtime/shared.h)
constexpr int kKeys = 1'000;

// A JSON string value of exactly `bytes` bytes, quotes included.
std::string value_of(std::size_t bytes, std::uint64_t salt) {
  std::string v(bytes - 2, 'a');
  for (std::size_t i = 0; i < v.size(); i += 7) v[i] = static_cast<char>('a' + (salt + i) % 26);
  return '"' + v + '"';
}

// A JSON object of exactly `bytes` bytes: {"a":N,"b":"..."}, or with its members the other way
// round (the same value to json::values_equal, other bytes). REQUIRES: bytes >= 20.
std::string object_of(std::size_t bytes, std::uint64_t salt, bool reversed) {
  std::string n = std::to_string(salt % 1000);
  std::string pad(bytes - 13 - n.size(), 'x');
  for (std::size_t i = 0; i < pad.size(); i += 5) pad[i] = static_cast<char>('a' + (salt + i) % 26);
  return reversed ? R"({"b":")" + pad + R"(","a":)" + n + "}"
                  : R"({"a":)" + n + R"(,"b":")" + pad + R"("})";
}

// cas keys hold objects, and every cas names the held one with its members reordered: the
// bytes differ, so the store compares them as JSON (json::values_equal), and the cas succeeds.
class CasModel {
 public:
  static constexpr int kFirstKey = 1'000'000;
  static constexpr int kKeys = 100;
  std::string initial(int key) { return set(key, 256, static_cast<std::uint64_t>(key)); }
  // The from (reordered) and to of a cas on `key` to a new value of `bytes` bytes.
  std::pair<std::string, std::string> next(int key, std::size_t bytes, std::uint64_t salt) {
    const Held& h = held_[static_cast<std::size_t>(key - kFirstKey)];
    std::string from = object_of(h.bytes, h.salt, true);
    return {from, set(key, bytes, salt)};
  }

 private:
  struct Held {
    std::size_t bytes = 0;
    std::uint64_t salt = 0;
  };
  std::string set(int key, std::size_t bytes, std::uint64_t salt) {
    held_[static_cast<std::size_t>(key - kFirstKey)] = {bytes, salt};
    return object_of(bytes, salt, false);
  }
  std::array<Held, kKeys> held_{};
};

class Requests {
 public:
  void cas(int key, const std::string& from, const std::string& to) {
    add(R"("type":"cas","key":)" + std::to_string(key) + ",\"from\":" + from + ",\"to\":" + to);
  }
  void write(int key, const std::string& value, bool bench) {
    add(std::string(bench ? R"("type":"bench_write")" : R"("type":"write")") +
        ",\"key\":" + std::to_string(key) + ",\"value\":" + value);
  }
  void read(int key, bool kv) {
    add(std::string(kv ? R"("type":"kv_read")" : R"("type":"read")") + ",\"key\":" +
        std::to_string(key));
  }
  [[nodiscard]] std::size_t count() const { return count_; }
  [[nodiscard]] const std::string& text() const { return text_; }

 private:
  void add(const std::string& members) {
    int client = 1 + static_cast<int>(count_ % 16);
    text_ += R"({"src":"c)" + std::to_string(client) + R"(","dest":"n1","body":{)" + members +
             ",\"msg_id\":" + std::to_string(++msg_id_) + "}}\n";
    ++count_;
  }
  std::string text_;
  std::size_t count_ = 0;
  std::uint64_t msg_id_ = 0;
};

void write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ASSERT_GT(n, 0);
    done += static_cast<std::size_t>(n);
  }
}

// Reads reply lines until `lines` more have come; returns how many of them were a success
// (a type ending in `_ok`), or -1 if the output ended first. No allocation (a fixed buffer).
long read_lines(int fd, std::size_t lines, char (&buf)[1 << 16]) {
  long ok = 0;
  std::uint32_t last4 = 0;  // the last four bytes read, across reads
  constexpr std::uint32_t kOk = ('_' << 24) | ('o' << 16) | ('k' << 8) | '"';
  while (lines > 0) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    for (ssize_t i = 0; i < n; ++i) {
      last4 = (last4 << 8) | static_cast<unsigned char>(buf[i]);
      ok += last4 == kOk ? 1 : 0;
      lines -= buf[i] == '\n' ? 1 : 0;
    }
  }
  return ok;
}

TEST(SteadyState, TheCounterSeesAllocations) {
  g_allocations = 0;
  g_counting = true;
  auto* p = new std::string(100, 'x');  // one allocation for the string object, one for its text
  g_counting = false;
  EXPECT_GE(g_allocations.load(), 2u);
  delete p;
}

TEST(SteadyState, ServingWritesReadsAndCasAllocatesNothing) {
  // Warm-up: every slot serves the largest write and the largest read reply at least once, and
  // every key holds a value of the largest size: whole passes of one kind over the slot ring.
  Requests warm;
  warm.write(0, value_of(256, 0), false);  // (offsets the passes by one request; harmless)
  for (int pass = 0; pass < 4; ++pass) {
    for (std::size_t i = 0; i < kSlots; ++i) {
      int key = static_cast<int>(i % kKeys);
      if (pass % 2 == 0) {
        warm.write(key, value_of(256, i), pass == 2);
      } else {
        warm.read(key, pass == 1);
      }
    }
  }
  // cas keys: objects of the largest size, then a whole pass of cas over the slot ring.
  CasModel cas;
  for (int k = 0; k < CasModel::kKeys; ++k) {
    warm.write(CasModel::kFirstKey + k, cas.initial(CasModel::kFirstKey + k), false);
  }
  for (std::size_t i = 0; i < kSlots; ++i) {
    int key = CasModel::kFirstKey + static_cast<int>(i % CasModel::kKeys);
    auto [from, to] = cas.next(key, 256, i);
    warm.cas(key, from, to);
  }
  // Steady: a deterministic mix of write, bench_write, kv_read, read and cas, values 3 to 256
  // bytes (cas: objects of 20 to 256).
  Requests steady;
  std::uint64_t rng = 12345;
  auto next = [&] {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return rng >> 33;
  };
  constexpr std::size_t kSteady = 40'000;
  for (std::size_t i = 0; i < kSteady; ++i) {
    int key = static_cast<int>(next() % kKeys);
    switch (next() % 5) {
      case 0: steady.write(key, value_of(3 + next() % 254, i), false); break;
      case 1: steady.write(key, value_of(3 + next() % 254, i), true); break;
      case 2: steady.read(key, true); break;
      case 3: steady.read(key, false); break;
      default: {
        int k = CasModel::kFirstKey + static_cast<int>(next() % CasModel::kKeys);
        auto [from, to] = cas.next(k, 20 + next() % 237, i);
        steady.cas(k, from, to);
      }
    }
  }

  int in[2];
  int out[2];
  ASSERT_EQ(::pipe(in), 0);
  ASSERT_EQ(::pipe(out), 0);
  NodeOptions options;
  options.workers = 2;
  GossipConfig gossip;
  auto make_engine = [&gossip](const std::string& self, const std::vector<std::string>& ids,
                               Store& store, std::uint64_t seed) {
    return make_gossip_engine(gossip, self, ids, store, seed, wall_clock_us());
  };
  std::thread node([&] { run_node(options, make_engine, in[0], out[1]); });
  std::atomic<bool> go{false};
  std::thread feeder([&] {
    write_all(in[1], R"({"src":"c0","dest":"n1","body":{"type":"init","msg_id":0,)"
                     R"("node_id":"n1","node_ids":["n1"]}})" "\n");
    write_all(in[1], warm.text());
    while (!go.load()) std::this_thread::yield();
    write_all(in[1], steady.text());
    ::close(in[1]);
  });

  static char buf[1 << 16];
  long warm_ok = read_lines(out[0], 1 + warm.count(), buf);
  g_allocations = 0;
  g_counting = true;
  go = true;
  long steady_ok = read_lines(out[0], steady.count(), buf);
  // The gossip thread takes the writes' deltas after their replies: count its work too.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  g_counting = false;
  std::uint64_t allocations = g_allocations.load();
  feeder.join();
  node.join();
  ::close(out[0]);
  ::close(out[1]);
  ::close(in[0]);
  ASSERT_EQ(warm_ok, static_cast<long>(1 + warm.count())) << "init and the warm-up all succeed";
  ASSERT_EQ(steady_ok, static_cast<long>(steady.count())) << "every steady request succeeds";
  // Not one per request: none at all on the request path. A few may come from the threads'
  // own timed work (a gossip round, the writer's trim), which does not grow with the requests.
  std::printf("allocations while serving %zu requests: %llu\n", steady.count(),
              static_cast<unsigned long long>(allocations));
  EXPECT_LE(allocations, 16u) << "over " << steady.count() << " requests";
}

// A node in a cluster also replicates each write: it pushes the write, takes the peers'
// reports of holding it, settles its figure, answers anti-entropy digests, and runs content
// sync, which under steady writes finds a few buckets differing every round and lists them.
// The nodes' engines exchange their messages directly (sans-IO, simulated time, 250 us
// between writes, each node writing in turn, so that the counted 10 s hold content sync rounds
// of every engine). Two nodes pushing to each other, and five behind a relay, which forwards
// entries, chains and reports. Once warm, what a message costs is allowed (its body is a
// string of its own); what a write or an entry costs is not.
struct ClusterCase {
  int nodes;
  int relays;
};

class ReplicatingCluster : public ::testing::TestWithParam<ClusterCase> {};

TEST_P(ReplicatingCluster, AllocatesPerMessageNotPerWrite) {
  constexpr std::int64_t kT0 = 1'700'000'000'000'000;
  constexpr int kReplicatedKeys = 1'000;
  const auto n = static_cast<std::size_t>(GetParam().nodes);
  GossipConfig config;
  config.relays = GetParam().relays;
  std::vector<std::string> ids;
  for (std::size_t k = 1; k <= n; ++k) ids.push_back("n" + std::to_string(k));
  std::vector<std::unique_ptr<Store>> stores;
  std::vector<HybridClock> clocks(n);
  std::vector<std::unique_ptr<ReplicationEngine>> engines;
  for (std::size_t k = 0; k < n; ++k) {
    stores.push_back(std::make_unique<Store>());
    engines.push_back(make_gossip_engine(config, ids[k], ids, *stores[k], k + 1, kT0));
  }
  std::vector<std::vector<OutMessage>> outbox(n);  // per sender; cleared, never shrunk
  std::uint64_t delivered = 0;
  std::uint64_t sync_delivered = 0;
  // Delivers every message in flight, and the replies they cause, until none is left. A
  // reply goes to its sender's outbox, never the one being read (no node messages itself).
  auto deliver = [&](std::int64_t now) {
    for (bool any = true; any;) {
      any = false;
      for (std::size_t from = 0; from < n; ++from) {
        for (std::size_t i = 0; i < outbox[from].size(); ++i) {
          const OutMessage& m = outbox[from][i];
          std::size_t to = 0;
          std::from_chars(m.dest.data() + 1, m.dest.data() + m.dest.size(), to);
          ASSERT_TRUE(to >= 1 && to <= n && to - 1 != from) << m.dest;
          engines[to - 1]->on_peer_message(ids[from], m.body, now, outbox[to - 1]);
          if (m.body.find(R"("type":"sync_)") != std::string::npos) ++sync_delivered;
          ++delivered;
          any = true;
        }
        outbox[from].clear();
      }
    }
  };
  std::int64_t now = kT0;
  std::string value = "\"" + std::string(40, 'v') + "\"";
  auto run = [&](int writes) {
    for (int i = 0; i < writes; ++i) {
      now += 250;
      char buf[16];
      int len = std::snprintf(buf, sizeof buf, "i%d", i % kReplicatedKeys);
      std::string_view key(buf, static_cast<std::size_t>(len));
      value[1 + i % 40] = static_cast<char>('a' + i % 26);
      std::size_t k = static_cast<std::size_t>(i) % n;
      Store::WriteResult w = stores[k]->write(key, value, now, static_cast<std::uint32_t>(k + 1), clocks[k]);
      engines[k]->on_local_delta(LocalDelta{w.entry, w.version, now, true}, now);
      engines[k]->on_local_watermark(w.version.ts_us);
      for (std::size_t e = 0; e < n; ++e) {
        if (engines[e]->next_deadline_us() <= now) engines[e]->tick(now, outbox[e]);
      }
      deliver(now);
    }
  };
  run(60'000);  // warm-up: every key written many times, every table and list at its size
  std::uint64_t delivered_before = delivered;
  std::uint64_t sync_before = sync_delivered;
  g_allocations = 0;
  g_counting = true;
  constexpr int kWrites = 40'000;
  run(kWrites);
  g_counting = false;
  std::uint64_t allocations = g_allocations.load();
  std::uint64_t messages = delivered - delivered_before;
  std::uint64_t sync_messages = sync_delivered - sync_before;
  for (int round = 0; round < 50; ++round) {  // 5 s more, uncounted: the last writes go too
    now += 100'000;
    for (std::size_t e = 0; e < n; ++e) engines[e]->tick(now, outbox[e]);
    deliver(now);
  }
  std::printf("%zu nodes, %d relays: %d writes in %llu messages (%llu of content sync): %llu allocations\n",
              n, GetParam().relays, kWrites, static_cast<unsigned long long>(messages),
              static_cast<unsigned long long>(sync_messages), static_cast<unsigned long long>(allocations));
  for (std::size_t k = 1; k < n; ++k) {
    EXPECT_EQ(stores[k]->digest(), stores[0]->digest()) << ids[k] << " converged with n1";
  }
  EXPECT_GT(messages, 0u);
  EXPECT_GT(sync_messages, 0u) << "content sync ran while counting";
  EXPECT_LE(allocations, 4 * messages) << "over " << kWrites << " writes";
}

INSTANTIATE_TEST_SUITE_P(SteadyState, ReplicatingCluster,
                         ::testing::Values(ClusterCase{2, 0}, ClusterCase{5, 1}),
                         [](const auto& param_info) {
                           return std::to_string(param_info.param.nodes) + "Nodes" +
                                  std::to_string(param_info.param.relays) + "Relays";
                         });

}  // namespace
}  // namespace gossip_kv
