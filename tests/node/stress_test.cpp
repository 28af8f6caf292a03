// Concurrency stress tests.
//
// NodeStress drives the real node binary (GOSSIP_KV_NODE_BIN; the TSan build under the tsan
// preset) with many client threads pipelining writes, reads and cas on a few shared keys, and
// checks every reply against a sequential model run in arrival order.
//
// StoreStress hammers gossip_kv::Store in process from several threads (writes, merges, reads
// of shared keys) and checks the final state, digest and key count.
//
// Sizes are kept moderate: a second or two in Release, well under a minute under TSan. Each
// test prints its seed on failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cctype>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <rapidjson/document.h>

#include "gossip_kv/key.h"
#include "gossip_kv/store.h"
#include "gossip_kv/version.h"
#include "node_process.h"

// GCC 12 reports a false -Wrestrict inside std::string's operator+ ("literal" + std::string&&)
// at -O2 and above (GCC bug 105651).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

namespace gossip_kv::test {
namespace {

// ---- Self-checking values -------------------------------------------------------------------
// A value names its writer and counter and carries a checksum over both and a padding of varying
// length, so a torn or mixed value (bytes of two writes) fails the check.

std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string pad_for(int client, int counter) {
  std::uint64_t h = fnv1a(std::to_string(client) + ":" + std::to_string(counter));
  std::string pad(h % 300, 'a');
  for (std::size_t i = 0; i < pad.size(); ++i) pad[i] = static_cast<char>('a' + (h >> (i % 56)) % 26);
  return pad;
}

std::uint64_t checksum(int client, int counter, std::string_view pad) {
  return fnv1a(pad, fnv1a(std::to_string(client) + "|" + std::to_string(counter) + "|"));
}

std::string make_value(int client, int counter) {
  std::string pad = pad_for(client, counter);
  return R"({"c":)" + std::to_string(client) + R"(,"n":)" + std::to_string(counter) +
         R"(,"pad":")" + pad + R"(","sum":")" + std::to_string(checksum(client, counter, pad)) +
         R"("})";
}

// True when raw is a whole value from make_value (not torn, not mixed).
bool value_intact(std::string_view raw) {
  rapidjson::Document d;
  if (!parse_json(raw, &d) || !d.IsObject() || !d.HasMember("c") || !d["c"].IsInt() ||
      !d.HasMember("n") || !d["n"].IsInt() || !d.HasMember("pad") || !d["pad"].IsString() ||
      !d.HasMember("sum") || !d["sum"].IsString()) {
    return false;
  }
  int c = d["c"].GetInt();
  int n = d["n"].GetInt();
  std::string_view pad(d["pad"].GetString(), d["pad"].GetStringLength());
  return pad == pad_for(c, n) && std::to_string(checksum(c, n, pad)) == d["sum"].GetString() &&
         raw == make_value(c, n);
}

// ---- The node under many pipelining clients ---------------------------------------------------

enum class OpKind { kWrite, kKvRead, kRead, kCas };

struct Op {
  int client = 0;
  std::int64_t msg_id = 0;
  OpKind kind = OpKind::kWrite;
  std::string key;    // raw JSON
  std::string value;  // write value / cas to
  std::string from;   // cas from
  std::string reply;  // the reply line
};

struct StressParams {
  std::vector<std::string> args;
  int clients = 16;
  int ops_per_client = 500;
  int window = 8;  // requests a client has in flight at most
};

// For test listings: the flags and sizes, not the struct's bytes.
void PrintTo(const StressParams& p, std::ostream* os) {
  *os << "args:";
  for (const auto& a : p.args) *os << " " << a;
  *os << " clients " << p.clients << " ops " << p.ops_per_client << " window " << p.window;
}

class NodeStress : public testing::TestWithParam<StressParams> {};

// Invariants stressed (the node works in parallel but must behave as if it handled its input
// one line at a time):
//  1. No lost or duplicated replies: every request gets exactly one reply.
//  2. Replies to one src leave in the order of its requests.
//  3. The node's msg_id counts 0, 1, 2, ... over its output, with no gaps or repeats.
//  4. Values are never torn: every value read is whole, byte for byte as one write wrote it.
//  5. Operations on one key take effect in arrival order whichever src sent them: each read
//     returns exactly the latest value that arrived before it, each cas succeeds exactly when
//     that value equals `from`, and write versions grow in arrival order.
//  6. Reads of one key by one client never go back in version ts.
//  7. The final read of each key returns the last write in arrival order.
TEST_P(NodeStress, PipelinedClientsOnSharedKeys) {
  const StressParams& p = GetParam();
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::vector<std::string> keys = {R"("hot")", R"("warm")", "1", R"("1")", "-7"};
  const std::string kCasKey = R"("cas")";
  const auto kDeadline = std::chrono::seconds(90);  // generous: TSan builds are slow

  NodeProcess node(p.args);
  ASSERT_EQ(node.start_error(), "");
  ASSERT_TRUE(node.send(R"({"src":"c0","dest":"n1","body":{"type":"init","msg_id":0,"node_id":"n1","node_ids":["n1"]}})"));

  std::mutex mu;  // guards everything below, except `log`, which send_mutex guards
  std::condition_variable cv;
  std::vector<Op> log;                                 // in arrival order
  std::map<std::pair<int, std::int64_t>, std::size_t> op_index;  // (client, msg_id) -> log index
  std::vector<std::deque<std::int64_t>> in_flight(static_cast<std::size_t>(p.clients) + 2);
  std::vector<std::string> problems;
  std::uint64_t lines_out = 0;
  bool failed = false;
  auto problem = [&](std::string text) {  // REQUIRES: mu held
    if (problems.size() < 20) problems.push_back(std::move(text));
    failed = true;
    cv.notify_all();
  };

  // The reader: routes each reply to its request, checking invariants 1-3 as they arrive.
  std::thread reader([&] {
    auto until = Clock::now() + kDeadline;
    bool init_seen = false;
    for (;;) {
      std::optional<std::string> line = node.read_line(std::chrono::milliseconds(200));
      if (!line) {
        if (node.eof()) return;
        if (Clock::now() > until) {
          std::lock_guard lock(mu);
          problem("no output for too long: replies lost or the node hung");
          return;
        }
        continue;
      }
      rapidjson::Document d;
      std::lock_guard lock(mu);
      if (!parse_json(*line, &d) || !d.IsObject() || !d.HasMember("body") ||
          !d["body"].IsObject() || !d["body"].HasMember("in_reply_to") ||
          !d["body"]["in_reply_to"].IsInt64() || !d.HasMember("dest") || !d["dest"].IsString()) {
        problem("not a reply: " + line->substr(0, 300));
        continue;
      }
      const auto& body = d["body"];
      if (!body.HasMember("msg_id") || !body["msg_id"].IsUint64() ||
          body["msg_id"].GetUint64() != lines_out) {
        problem("output line " + std::to_string(lines_out) + " has the wrong msg_id: " + *line);
      }
      ++lines_out;
      std::string dest = d["dest"].GetString();
      std::int64_t irt = body["in_reply_to"].GetInt64();
      if (!init_seen) {
        init_seen = true;
        if (dest != "c0" || irt != 0) problem("first reply is not init_ok: " + *line);
        continue;
      }
      int client = dest.size() > 1 && dest[0] == 'c' ? std::atoi(dest.c_str() + 1) : -1;
      if (client < 1 || client > p.clients + 1) {
        problem("reply to an unknown src: " + *line);
        continue;
      }
      auto& q = in_flight[static_cast<std::size_t>(client)];
      if (q.empty() || q.front() != irt) {
        problem("reply to " + dest + " out of request order or unasked for (expected " +
                (q.empty() ? std::string("none") : std::to_string(q.front())) + "): " + *line);
        auto it = std::find(q.begin(), q.end(), irt);
        if (it != q.end()) q.erase(it);
      } else {
        q.pop_front();
      }
      auto idx = op_index.find({client, irt});
      if (idx == op_index.end()) {
        problem("reply to a request never sent: " + *line);
      } else if (!log[idx->second].reply.empty()) {
        problem("second reply to one request: " + *line);
      } else {
        log[idx->second].reply = std::move(*line);
      }
      cv.notify_all();
    }
  });

  // Sends one op, recording its arrival position; waits while the client has `window` in flight.
  auto send_op = [&](Op op, int window) -> bool {
    {
      std::unique_lock lock(mu);
      auto& q = in_flight[static_cast<std::size_t>(op.client)];
      if (!cv.wait_for(lock, kDeadline, [&] { return failed || q.size() < static_cast<std::size_t>(window); })) {
        problem("client c" + std::to_string(op.client) + " waited too long for replies");
      }
      if (failed) return false;
    }
    static const char* kTypes[] = {"write", "kv_read", "read", "cas"};
    std::string body = R"({"type":")" + std::string(kTypes[static_cast<int>(op.kind)]) +
                       R"(","msg_id":)" + std::to_string(op.msg_id) + R"(,"key":)" + op.key;
    if (op.kind == OpKind::kWrite) body += R"(,"value":)" + op.value;
    if (op.kind == OpKind::kCas) body += R"(,"from":)" + op.from + R"(,"to":)" + op.value;
    std::string line = R"({"src":"c)" + std::to_string(op.client) + R"(","dest":"n1","body":)" +
                       body + "}}";
    // The arrival order is the order lines enter the pipe: record and write under one lock.
    std::lock_guard send_lock(node.send_mutex());
    {
      std::lock_guard lock(mu);
      op_index[{op.client, op.msg_id}] = log.size();
      in_flight[static_cast<std::size_t>(op.client)].push_back(op.msg_id);
      log.push_back(std::move(op));
    }
    return node.send_locked(line);
  };

  const int final_client = p.clients + 1;
  {
    Op seed_write;
    seed_write.client = final_client;
    seed_write.msg_id = 1000;
    seed_write.key = kCasKey;
    seed_write.value = make_value(final_client, 0);
    EXPECT_TRUE(send_op(std::move(seed_write), 1));
  }
  std::vector<std::thread> clients;
  for (int c = 1; c <= p.clients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937_64 rng(seed * 1000003u + static_cast<std::uint64_t>(c));
      std::map<std::string, std::int64_t> last_read;  // key -> msg_id of this client's last read
      for (int n = 0; n < p.ops_per_client; ++n) {
        Op op;
        op.client = c;
        op.msg_id = n + 1;
        op.key = keys[rng() % keys.size()];
        std::uint64_t dice = rng() % 100;
        op.kind = dice < 40 ? OpKind::kWrite : dice < 65 ? OpKind::kKvRead
                : dice < 85 ? OpKind::kRead : OpKind::kCas;
        if (rng() % 5 == 0) {  // the cas key: only reads and cas, so that many cas succeed
          op.key = kCasKey;
          op.kind = rng() % 2 ? OpKind::kKvRead : OpKind::kCas;
        }
        if (op.kind == OpKind::kWrite || op.kind == OpKind::kCas) op.value = make_value(c, n);
        if (op.kind == OpKind::kKvRead || op.kind == OpKind::kRead) last_read[op.key] = op.msg_id;
        if (op.kind == OpKind::kCas) {
          // From the value this client's last answered read of the key returned (another client
          // may have replaced it since), or from a value no one wrote.
          op.from = make_value(c, -1);
          auto it = last_read.find(op.key);
          if (it != last_read.end() && rng() % 8 != 0) {
            std::lock_guard lock(mu);
            const std::string& reply = log[op_index[{c, it->second}]].reply;
            auto raw = raw_body_member(reply, "value");
            if (raw) op.from = std::string(*raw);
          }
        }
        if (!send_op(std::move(op), p.window)) return;
      }
    });
  }
  for (auto& t : clients) t.join();
  // Final reads, after every client's last request has been answered.
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, kDeadline, [&] {
      if (failed) return true;
      for (const auto& q : in_flight) {
        if (!q.empty()) return false;
      }
      return true;
    });
  }
  std::vector<std::string> final_keys = keys;
  final_keys.push_back(kCasKey);
  for (std::size_t k = 0; k < final_keys.size(); ++k) {
    Op op;
    op.client = final_client;
    op.msg_id = static_cast<std::int64_t>(k) + 1;
    op.kind = OpKind::kKvRead;
    op.key = final_keys[k];
    send_op(std::move(op), 1000);
  }
  node.close_stdin();
  reader.join();
  int status = node.wait(std::chrono::seconds(30));
  EXPECT_EQ(status, 0) << "stderr:\n" << node.stderr_text();
  {
    std::lock_guard lock(mu);
    for (const auto& pr : problems) ADD_FAILURE() << pr;
  }
  ASSERT_FALSE(failed);
  EXPECT_EQ(node.stderr_text(), "");

  // Invariants 4-7: replay the log in arrival order against a sequential model.
  struct KeyState {
    std::optional<std::string> value;
    double ts = 0;         // the current version's ts, when known
    bool ts_known = true;  // false after a cas (cas_ok carries no ts)
    double ts_floor = 0;   // the current version is newer than this
  };
  std::map<std::string, KeyState> model;
  std::map<std::pair<int, std::string>, double> last_read_ts;  // (client, key) -> ts
  std::set<std::string> written;
  int failures = 0;
  auto fail = [&](const Op& op, const std::string& why) {
    if (++failures <= 15) {
      ADD_FAILURE() << why << "\n  request c" << op.client << "/" << op.msg_id << " on key "
                    << op.key << "\n  reply " << op.reply.substr(0, 500);
    }
  };
  for (const Op& op : log) {
    rapidjson::Document d;
    if (op.reply.empty() || !parse_json(op.reply, &d)) {
      fail(op, "no reply (invariant 1)");
      continue;
    }
    const auto& b = d["body"];
    std::string type = b.HasMember("type") && b["type"].IsString() ? b["type"].GetString() : "";
    int code = b.HasMember("code") && b["code"].IsInt() ? b["code"].GetInt() : 0;
    KeyState& st = model[op.key];
    switch (op.kind) {
      case OpKind::kWrite: {
        if (type != "write_ok" || !b.HasMember("ts") || !b["ts"].IsNumber()) {
          fail(op, "want write_ok with ts");
          break;
        }
        double ts = b["ts"].GetDouble();
        double prev = st.ts_known ? st.ts : st.ts_floor;
        if (st.value && !(ts > prev)) fail(op, "write version not newer than the key's last (invariant 5)");
        st = KeyState{op.value, ts, true, ts};
        written.insert(op.value);
        break;
      }
      case OpKind::kKvRead:
      case OpKind::kRead: {
        if (!st.value) {
          if (!(type == "error" && code == 20)) fail(op, "want error 20 on a key not yet written");
          break;
        }
        const char* want = op.kind == OpKind::kKvRead ? "kv_read_ok" : "read_ok";
        auto raw = raw_body_member(op.reply, "value");
        if (type != want || !raw) {
          fail(op, std::string("want ") + want);
          break;
        }
        if (!value_intact(*raw)) {
          fail(op, "torn or mixed value (invariant 4)");
          break;
        }
        if (written.count(std::string(*raw)) == 0) fail(op, "a value no write wrote (invariant 4)");
        if (*raw != *st.value) {
          fail(op, "not the latest value that arrived before the read (invariant 5); want " +
                       st.value->substr(0, 40));
        }
        if (op.kind == OpKind::kKvRead) {
          if (!b.HasMember("ts") || !b["ts"].IsNumber()) {
            fail(op, "kv_read_ok without ts");
            break;
          }
          double ts = b["ts"].GetDouble();
          if (st.ts_known && ts != st.ts) fail(op, "ts is not the version's ts (invariant 5)");
          if (!st.ts_known) {
            if (!(ts > st.ts_floor)) fail(op, "a cas did not take a newer version");
            st.ts = ts;
            st.ts_known = true;
          }
          double& last = last_read_ts[{op.client, op.key}];
          if (ts < last) fail(op, "read ts went backwards for this client (invariant 6)");
          last = ts;
        }
        break;
      }
      case OpKind::kCas: {
        if (!st.value) {
          if (!(type == "error" && code == 20)) fail(op, "want error 20 for cas on a missing key");
          break;
        }
        bool match = json_text_equal(*st.value, op.from);
        if (match && type != "cas_ok") fail(op, "want cas_ok: from matches the latest value");
        if (!match && !(type == "error" && code == 22)) {
          fail(op, "want error 22: from does not match the latest value");
        }
        if (match) {
          st.ts_floor = st.ts_known ? st.ts : st.ts_floor;
          st.value = op.value;
          st.ts_known = false;
          written.insert(op.value);
        }
        break;
      }
    }
  }
  // Invariant 7, stated on its own: the final reads (the log's last entries) return the last
  // value written in arrival order.
  for (const Op& op : log) {
    if (op.client != final_client || op.kind != OpKind::kKvRead) continue;
    auto raw = raw_body_member(op.reply, "value");
    const auto& st = model[op.key];
    if (st.value) {
      EXPECT_TRUE(raw && *raw == *st.value) << "final read of " << op.key << ": " << op.reply.substr(0, 300);
    }
  }
  EXPECT_EQ(failures, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Workers, NodeStress,
    testing::Values(StressParams{{"--workers", "4"}}, StressParams{{}},
                    StressParams{{"--workers", "4", "--shards", "1"}, 16, 200, 32},
                    StressParams{{"--workers", "3"}, 8, 600, 64}),
    [](const testing::TestParamInfo<StressParams>& param_info) {
      std::string name;
      for (const auto& a : param_info.param.args) {
        for (char ch : a) {
          if (std::isalnum(static_cast<unsigned char>(ch))) name += ch;
        }
      }
      return (name.empty() ? std::string("defaultworkers") : name) + "_window" +
             std::to_string(param_info.param.window);
    });

// ---- gossip_kv::Store in process --------------------------------------------------------------

// Invariants stressed, with threads writing, merging and reading a few shared keys at once:
//  1. No torn values: every value read is whole, and is the value written with the version
//     read alongside it (value and version are never mixed from two writes).
//  2. One thread's reads of a key never go back in version (versions per key only grow).
//  3. Last writer wins: each key ends holding the highest version ever written or merged to
//     it, with that version's value.
//  4. digest() and key_count(), kept incrementally under concurrent writes, equal those of a
//     fresh store built from the final state alone.
TEST(StoreStress, ConcurrentWritesMergesAndReads) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  constexpr int kThreads = 4;
  constexpr int kOps = 15000;
  constexpr int kKeys = 6;
  std::vector<std::string> keys;
  for (int k = 0; k < kKeys; ++k) {
    std::string e;
    if (k % 2 == 0) {
      key::encode_string("key" + std::to_string(k), e);
    } else {
      key::encode_int(k, e);
    }
    keys.push_back(e);
  }
  Store store(4);  // few shards: threads meet on the same locks
  HybridClock clock;

  struct Offered {
    int key;
    Version version;
    std::string value;
  };
  struct Observed {
    int key;
    Version version;
    std::string value;
  };
  std::vector<std::vector<Offered>> offered(kThreads);
  std::vector<std::vector<Observed>> observed(kThreads);
  std::atomic<int> problems{0};
  std::vector<std::string> messages(kThreads);

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(seed + static_cast<std::uint64_t>(t));
      std::vector<Version> last_read(kKeys);
      std::unordered_set<std::int64_t> merge_ts_used;
      std::string value_out;
      for (int n = 0; n < kOps; ++n) {
        int k = static_cast<int>(rng() % kKeys);
        std::int64_t now = wall_clock_us();
        std::uint64_t dice = rng() % 10;
        if (dice < 4) {
          std::string v = make_value(t, n);
          Store::WriteResult w = store.write(keys[k], v, now, 1, clock);
          offered[t].push_back({k, w.version, std::move(v)});
        } else if (dice < 7) {
          // A version from up to 2 s in the past to 1 s in the future, unique to this thread
          // (origin 2 + t; no two merges of one thread share a ts).
          std::int64_t ts = now - 2'000'000 + static_cast<std::int64_t>(rng() % 3'000'000);
          if (!merge_ts_used.insert(ts).second) continue;
          Version ver{ts, static_cast<std::uint32_t>(2 + t)};
          std::string v = make_value(100 + t, n);
          store.merge(keys[k], v, ver, now);
          offered[t].push_back({k, ver, std::move(v)});
        } else {
          Version ver;
          if (!store.read(keys[k], now, &value_out, &ver)) continue;
          if (!value_intact(value_out) && problems.fetch_add(1) == 0) {
            messages[t] = "torn value read: " + value_out.substr(0, 200);
          }
          if (ver < last_read[k] && problems.fetch_add(1) == 0) {
            messages[t] = "a read went back in version on key " + std::to_string(k);
          }
          last_read[k] = ver;
          observed[t].push_back({k, ver, value_out});
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& m : messages) {
    if (!m.empty()) ADD_FAILURE() << m;
  }
  EXPECT_EQ(problems.load(), 0);

  // Every version offered, with its value; versions are unique (writes: strictly increasing
  // clock, origin 1; merges: unique per thread, origin 2 + t).
  std::vector<std::map<Version, std::string>> by_version(kKeys);
  for (const auto& per_thread : offered) {
    for (const Offered& o : per_thread) {
      bool fresh = by_version[o.key].emplace(o.version, o.value).second;
      ASSERT_TRUE(fresh) << "two offers share a version on key " << o.key;
    }
  }
  // Invariant 1: the value read is the one written with the version read.
  for (const auto& per_thread : observed) {
    for (const Observed& o : per_thread) {
      auto it = by_version[o.key].find(o.version);
      ASSERT_NE(it, by_version[o.key].end()) << "a read returned a version no one wrote";
      ASSERT_EQ(it->second, o.value) << "value and version of a read come from two writes";
    }
  }
  // Invariant 3: the highest version offered wins, with its value.
  Store fresh(64);
  std::size_t touched = 0;
  for (int k = 0; k < kKeys; ++k) {
    if (by_version[k].empty()) continue;
    ++touched;
    const auto& [top_version, top_value] = *by_version[k].rbegin();
    std::string value;
    Version ver;
    ASSERT_TRUE(store.read(keys[k], wall_clock_us(), &value, &ver));
    EXPECT_EQ(ver, top_version) << "key " << k << " does not hold its newest version";
    EXPECT_EQ(value, top_value) << "key " << k;
    fresh.merge(keys[k], top_value, top_version, 0);
  }
  // Invariant 4.
  EXPECT_EQ(store.key_count(), touched);
  EXPECT_EQ(fresh.key_count(), store.key_count());
  EXPECT_EQ(fresh.digest(), store.digest()) << "incremental digest differs from a recomputation";
  // The digest tells states apart: one changed value changes it.
  if (!by_version[0].empty()) {
    auto [v, val] = *by_version[0].rbegin();
    fresh.merge(keys[0], make_value(999, 0), Version{v.ts_us, v.origin + 1000}, 0);
    EXPECT_NE(fresh.digest(), store.digest());
  }
}

}  // namespace
}  // namespace gossip_kv::test
