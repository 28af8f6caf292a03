// Content anti-entropy (src/replication/content_sync.h): replicas that exchange digest trees,
// key lists and entries end up identical, holding the newest version of every key any of them
// held, whatever they started from, with loss and reordering, in messages under the line
// limit; malformed input is rejected whole.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <atomic>

#include <gtest/gtest.h>

#include "gossip_kv/limits.h"
#include "gossip_kv/store.h"
#include "replication/content_sync.h"

namespace gossip_kv {
namespace {

// Bytes the runtime adds around a body: {"src":"n12","dest":"n3","body":...} with msg_id.
constexpr std::size_t kEnvelopeBytesMax = 200;
constexpr std::int64_t kNowUs = 1'700'000'000'000'000;

struct Figures {
  std::size_t rounds = 0;
  std::size_t messages = 0;
  std::size_t bytes = 0;
  std::size_t largest = 0;
  std::size_t dropped = 0;
};

// N replicas, each a Store and a ContentSync, and the messages between them: delivered in
// order or in a random order, some lost, all decided by one seeded generator.
class Cluster {
 public:
  Cluster(std::size_t n, std::uint64_t seed, ContentSyncConfig config = {}) : rng_(seed) {
    for (std::size_t i = 1; i <= n; ++i) ids_.push_back("n" + std::to_string(i));
    std::sort(ids_.begin(), ids_.end());
    const std::size_t shard_counts[] = {1, 7, 256, 16, 3};
    for (std::size_t i = 0; i < n; ++i) {
      stores_.push_back(std::make_unique<Store>(shard_counts[i % 5]));
      syncs_.push_back(std::make_unique<ContentSync>(*stores_.back(), ids_,
                                                     static_cast<std::uint32_t>(i + 1), config));
    }
  }

  Store& store(std::size_t origin) { return *stores_[origin - 1]; }
  ContentSync& sync(std::size_t origin) { return *syncs_[origin - 1]; }
  void replace_store(std::size_t origin) {  // a node restarted empty
    stores_[origin - 1] = std::make_unique<Store>(4);
    syncs_[origin - 1] = std::make_unique<ContentSync>(*stores_[origin - 1], ids_,
                                                       static_cast<std::uint32_t>(origin));
  }

  double loss = 0;
  double duplicate = 0;
  bool reorder = false;
  std::function<void(const std::string& body)> on_body;  // sees every message sent
  Figures figures;
  std::size_t applied_callbacks = 0;

  // One exchange started by `from` with `to`, then every message delivered until none is left.
  void exchange(std::uint32_t from, std::uint32_t to) {
    std::vector<OutMessage> out;
    sync(from).start_round(to, out);
    send(from, out);
    drain();
  }
  // Every node starts one exchange with a random peer (a sync interval), then all drain.
  void round() {
    ++figures.rounds;
    for (std::uint32_t o = 1; o <= stores_.size(); ++o) {
      std::vector<OutMessage> out;
      sync(o).start_round(sync(o).pick_peer(rng_()), out);
      send(o, out);
    }
    drain();
  }
  bool identical() const {
    for (const auto& s : stores_) {
      if (s->digest() != stores_[0]->digest() || s->key_count() != stores_[0]->key_count()) {
        return false;
      }
    }
    return true;
  }
  // Rounds until every digest agrees (at most max_rounds).
  std::size_t converge(std::size_t max_rounds) {
    std::size_t r = 0;
    while (!identical() && r < max_rounds) {
      round();
      ++r;
    }
    return r;
  }

 private:
  struct InFlight {
    std::uint32_t from, to;
    std::string body;
  };
  void send(std::uint32_t from, std::vector<OutMessage>& out) {
    for (OutMessage& m : out) {
      auto to = static_cast<std::uint32_t>(
          std::lower_bound(ids_.begin(), ids_.end(), m.dest) - ids_.begin() + 1);
      ASSERT_LE(to, ids_.size());
      ASSERT_LT(m.body.size() + kEnvelopeBytesMax, limits::kLineBytesMax)
          << "a message over the line limit would be skipped whole by the receiver";
      if (on_body) on_body(m.body);
      ++figures.messages;
      figures.bytes += m.body.size();
      figures.largest = std::max(figures.largest, m.body.size());
      if (loss > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < loss) {
        ++figures.dropped;
        continue;
      }
      if (duplicate > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < duplicate) {
        queue_.push_back({from, to, m.body});
      }
      queue_.push_back({from, to, std::move(m.body)});
    }
  }
  void drain() {
    while (!queue_.empty()) {
      std::size_t pick = reorder ? rng_() % queue_.size() : 0;
      InFlight m = std::move(queue_[pick]);
      queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(pick));
      std::vector<OutMessage> out;
      std::string error;
      auto outcome = sync(m.to).on_message(
          m.from, m.body, kNowUs, out,
          [this](const Store::MergeResult& r, std::string_view, Version) {
            EXPECT_TRUE(r.applied);
            ++applied_callbacks;
          },
          &error);
      ASSERT_EQ(outcome, ContentSync::Outcome::kHandled) << error << "\n" << m.body.substr(0, 300);
      send(m.to, out);
    }
  }

  std::vector<std::string> ids_;
  std::vector<std::unique_ptr<Store>> stores_;
  std::vector<std::unique_ptr<ContentSync>> syncs_;
  std::deque<InFlight> queue_;
  std::mt19937_64 rng_;
};

struct Held {
  std::string value;
  Version version;
};

// The newest (version, then value) of every key over all replicas: what each must end with.
std::map<std::string, Held> newest_of(Cluster& c, std::size_t n) {
  std::map<std::string, Held> want;
  for (std::size_t o = 1; o <= n; ++o) {
    c.store(o).for_each([&](const Entry& e, std::string_view value, Version v) {
      auto [it, inserted] = want.try_emplace(std::string(Store::key_of(e)), Held{std::string(value), v});
      if (!inserted && (it->second.version < v ||
                        (it->second.version == v && it->second.value < value))) {
        it->second = {std::string(value), v};
      }
    });
  }
  return want;
}

void expect_holds_all(Cluster& c, std::size_t n, const std::map<std::string, Held>& want) {
  for (std::size_t o = 1; o <= n; ++o) {
    ASSERT_EQ(c.store(o).key_count(), want.size()) << "node " << o;
    for (const auto& [key, held] : want) {
      std::string value;
      Version v;
      ASSERT_TRUE(c.store(o).read(key, 0, &value, &v)) << "node " << o << " lacks " << key;
      ASSERT_EQ(v, held.version) << "node " << o << " key " << key;
      ASSERT_EQ(value, held.value) << "node " << o << " key " << key;
    }
  }
}

Version ver(std::int64_t ts, std::uint32_t origin) { return Version{ts, origin}; }

TEST(ContentSync, DisjointKeySetsBecomeTheUnion) {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    Cluster c(4, seed);
    for (std::uint32_t o = 1; o <= 4; ++o) {
      for (int i = 0; i < 500; ++i) {
        c.store(o).merge("s" + std::to_string(o) + "-" + std::to_string(i), std::to_string(i),
                         ver(kNowUs - 1000 + i, o), 0);
      }
    }
    auto want = newest_of(c, 4);
    std::size_t rounds = c.converge(20);
    EXPECT_TRUE(c.identical()) << "seed " << seed << " after " << rounds << " rounds";
    expect_holds_all(c, 4, want);
    EXPECT_EQ(c.applied_callbacks, 3u * 2000) << "each node took the 1,500 keys it lacked";
  }
}

TEST(ContentSync, IdenticalReplicasExchangeOneSmallMessage) {
  Cluster c(2, 5);
  for (int i = 0; i < 1000; ++i) {
    for (std::uint32_t o : {1u, 2u}) c.store(o).merge("i" + std::to_string(i), "1", ver(5, 1), 0);
  }
  c.exchange(1, 2);
  EXPECT_EQ(c.figures.messages, 1u) << "equal roots: the responder has nothing to say";
  EXPECT_LT(c.figures.bytes, 400u);
}

// The issue's refill target: a replica restarted empty among 3 holding 150,000 keys.
TEST(ContentSync, EmptyReplicaRefillsFrom150000Keys) {
  constexpr int kKeys = 150'000;
  Cluster c(3, 11);
  for (int i = 0; i < kKeys; ++i) {
    std::string key = "i" + std::to_string(i);
    for (std::uint32_t o : {1u, 2u}) c.store(o).merge(key, std::to_string(i), ver(kNowUs - kKeys + i, 1 + i % 2), 0);
  }
  auto start = std::chrono::steady_clock::now();
  c.exchange(3, 1);  // the restarted node's own first round
  auto cpu_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - start).count();
  Figures one = c.figures;
  EXPECT_TRUE(c.store(3).digest() == c.store(1).digest())
      << "one exchange (with its continuations) refills the empty replica";
  std::printf("[ figures ] 150k refill, one exchange: %zu messages (%zu continuations), %zu bytes, "
              "largest %zu bytes, %lld ms in this process (both sides, not asserted)\n",
              one.messages, c.sync(3).stats().rounds - 1, one.bytes, one.largest,
              static_cast<long long>(cpu_ms));
  c.converge(3);
  EXPECT_TRUE(c.identical());
  expect_holds_all(c, 3, newest_of(c, 1));
  EXPECT_LE(c.figures.largest + kEnvelopeBytesMax, limits::kLineBytesMax);
}

// The issue's burst: 150,000 writes on node 1, of which the others missed 42,800 (scattered,
// so about half the buckets differ): the cost follows the differing buckets.
TEST(ContentSync, BurstRemainderIsFoundAndRepaired) {
  constexpr int kKeys = 150'000;
  Cluster c(3, 13);
  std::mt19937_64 rng(13);
  for (int i = 0; i < kKeys; ++i) {
    std::string key = "i" + std::to_string(i);
    bool missed = rng() % 150'000 < 42'800;
    for (std::uint32_t o = 1; o <= 3; ++o) {
      if (o == 1 || !missed) c.store(o).merge(key, std::to_string(i), ver(kNowUs - kKeys + i, 1), 0);
    }
  }
  std::size_t missed = c.store(1).key_count() - c.store(2).key_count();
  c.exchange(2, 1);
  Figures one = c.figures;
  EXPECT_EQ(c.store(2).digest(), c.store(1).digest());
  c.converge(3);
  ASSERT_TRUE(c.identical());
  expect_holds_all(c, 3, newest_of(c, 1));
  std::printf("[ figures ] 150k burst, %zu keys missed: one exchange: %zu messages, %zu bytes, "
              "largest %zu\n", missed,
              one.messages, one.bytes, one.largest);
}

TEST(ContentSync, RefillWithLossAndReordering) {
  constexpr int kKeys = 60'000;  // the 150,000 case is above; this one runs under TSan in CI too
  Cluster c(3, 12);
  c.loss = 0.1;
  c.reorder = true;
  for (int i = 0; i < kKeys; ++i) {
    std::string key = "i" + std::to_string(i);
    for (std::uint32_t o : {1u, 2u}) c.store(o).merge(key, std::to_string(i), ver(kNowUs - kKeys + i, 1), 0);
  }
  std::size_t rounds = c.converge(30);
  ASSERT_TRUE(c.identical()) << rounds << " rounds";
  expect_holds_all(c, 3, newest_of(c, 1));
  std::printf("[ figures ] 60k refill, 10%% loss, reordered: %zu rounds, %zu messages (%zu lost), "
              "%zu bytes\n", rounds, c.figures.messages, c.figures.dropped, c.figures.bytes);
}

TEST(ContentSync, EqualVersionsWithDifferentValuesSettleOnTheGreater) {
  Cluster c(3, 21);
  for (int i = 0; i < 300; ++i) {
    std::string key = "s" + std::to_string(i);
    std::string big(200, 'x');  // also values too large to travel inline with their key
    c.store(1).merge(key, i % 2 ? "\"a\"" : "\"" + big + "a\"", ver(77, 2), 0);
    c.store(2).merge(key, i % 2 ? "\"b\"" : "\"" + big + "b\"", ver(77, 2), 0);
    if (i % 3 == 0) c.store(3).merge(key, "\"c\"", ver(77, 2), 0);
  }
  auto want = newest_of(c, 3);
  c.converge(10);
  ASSERT_TRUE(c.identical());
  expect_holds_all(c, 3, want);
  std::string v;
  c.store(1).read("s1", 0, &v, nullptr);
  EXPECT_EQ(v, "\"b\"");
  c.store(1).read("s3", 0, &v, nullptr);
  EXPECT_EQ(v, "\"c\"");
  c.store(2).read("s2", 0, &v, nullptr);
  EXPECT_EQ(v, "\"" + std::string(200, 'x') + "b\"");
}

TEST(ContentSync, OriginZeroEntriesAreRepairedLikeAnyOther) {
  // kv_merge entries without a node have origin 0: outside every watermark, not outside this.
  Cluster c(3, 31);
  for (int i = 0; i < 200; ++i) c.store(2).merge("i" + std::to_string(i), "[0]", ver(kNowUs - i, 0), 0);
  auto want = newest_of(c, 3);
  c.converge(10);
  ASSERT_TRUE(c.identical());
  expect_holds_all(c, 3, want);
}

TEST(ContentSync, NothingRegressesNewestVersionWinsEverywhere) {
  // Each replica holds some keys newer than the others: after sync every key holds the newest
  // version any replica had, and no replica ever took an older one (LWW holds).
  Cluster c(3, 41);
  std::mt19937_64 rng(41);
  for (int i = 0; i < 3000; ++i) {
    std::string key = "s" + std::to_string(i % 1000);
    auto o = static_cast<std::uint32_t>(1 + rng() % 3);
    std::int64_t ts = kNowUs - static_cast<std::int64_t>(rng() % 100000);
    c.store(o).merge(key, std::string(static_cast<std::size_t>(rng() % 120) + 1, 'v').insert(0, "\"") + "\"",
                     ver(ts, o), 0);
  }
  auto want = newest_of(c, 3);
  std::map<std::string, Version> before;
  c.store(1).for_each([&](const Entry& e, std::string_view, Version v) {
    before[std::string(Store::key_of(e))] = v;
  });
  c.converge(10);
  ASSERT_TRUE(c.identical());
  expect_holds_all(c, 3, want);
  for (const auto& [key, v] : before) {
    Version now;
    std::string value;
    c.store(1).read(key, 0, &value, &now);
    EXPECT_GE(now, v) << key;
  }
}

TEST(ContentSync, FiveReplicasWithLossDuplicationAndReorderingConverge) {
  for (std::uint64_t seed = 100; seed < 106; ++seed) {
    Cluster c(5, seed);
    c.loss = 0.25;
    c.duplicate = 0.1;
    c.reorder = true;
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 4000; ++i) {
      auto o = static_cast<std::uint32_t>(1 + rng() % 5);
      std::string key = "i" + std::to_string(rng() % 1500);
      std::string value = rng() % 7 == 0 ? std::string(300, 'q').insert(0, "\"") + "\""
                                         : std::to_string(rng() % 1000);
      c.store(o).merge(key, value, ver(kNowUs - static_cast<std::int64_t>(rng() % 50), o), 0);
    }
    auto want = newest_of(c, 5);
    std::size_t rounds = c.converge(40);
    ASSERT_TRUE(c.identical()) << "seed " << seed << " after " << rounds << " rounds";
    expect_holds_all(c, 5, want);
  }
}

TEST(ContentSync, ExchangesDuringConcurrentWritesConvergeOnceWritesStop) {
  // Invariant stressed: Store invariant 5 (the tree is kept by relaxed atomic adds under the
  // shard locks). Exchanges read digests and buckets while a writer thread writes to node 1:
  // they may see transient differences, but once writing stops the next rounds converge.
  Cluster c(3, 91);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    HybridClock clock;
    for (int i = 0; i < 20'000 && !stop.load(); ++i) {  // bounded: TSan runs this in CI
      c.store(1).write("s" + std::to_string(i % 5000), std::to_string(i), kNowUs - 1'000'000 + i,
                       1, clock);
    }
  });
  for (int r = 0; r < 8; ++r) c.round();
  stop = true;
  writer.join();
  auto want = newest_of(c, 3);
  c.converge(20);
  ASSERT_TRUE(c.identical());
  expect_holds_all(c, 3, want);
}

TEST(ContentSync, RestartedEmptyReplicaThatWritesAgainGetsItsOldWritesBack) {
  // The watermark failure of issue 9: a restarted node's new write made its digest claim every
  // older write of its own. Contents are compared here, so the new write changes nothing.
  Cluster c(3, 51);
  for (int i = 0; i < 2000; ++i) {
    for (std::uint32_t o = 1; o <= 3; ++o) c.store(o).merge("s" + std::to_string(i), "1", ver(1000 + i, 3), 0);
  }
  c.replace_store(3);
  HybridClock clock;
  c.store(3).write("snew", "2", kNowUs, 3, clock);
  auto want = newest_of(c, 3);
  ASSERT_EQ(want.size(), 2001u);
  c.converge(10);
  ASSERT_TRUE(c.identical());
  expect_holds_all(c, 3, want);
}

TEST(ContentSync, LargeBucketsSplitOverMessagesAndBigValues) {
  // Values near the 64 KiB limit: every message still fits, each carries at least one entry.
  ContentSyncConfig small;
  small.message_bytes_max = ContentSyncConfig::kMessageBytesMin;
  small.reply_messages_max = 2;
  Cluster c(2, 61, small);
  for (int i = 0; i < 60; ++i) {
    // 64 KiB of JSON text; every tenth is a string of backslashes, which doubles when escaped.
    std::string body(limits::kValueBytesMax - 2, i % 10 == 0 ? '\\' : 'z');
    c.store(1).merge("i" + std::to_string(i), "\"" + body + "\"", ver(9, 1), 0);
  }
  // The worst single entry: a 1 KiB key of control bytes (6 bytes each, escaped) and a 64 KiB
  // value of tabs (valid JSON whitespace, 2 bytes each, escaped).
  c.store(1).merge("s" + std::string(limits::kKeyBytesMax, '\x01'),
                   "[" + std::string(limits::kValueBytesMax - 2, '\t') + "]", ver(9, 1), 0);
  auto want = newest_of(c, 2);
  c.converge(30);
  ASSERT_TRUE(c.identical());
  expect_holds_all(c, 2, want);
  EXPECT_LE(c.figures.largest, small.message_bytes_max);
}

TEST(ContentSync, OneBucketSplitOverMessagesIsComparedPartByPart) {
  // Twelve keys in one bucket with 60 KiB values: the bucket's list cannot fit one message,
  // so it goes as groups with key ranges, and with a budget of two messages a reply the
  // exchange goes on by continuations. Each side holds some keys newer than the other.
  std::vector<std::string> keys;
  std::uint32_t bucket = Store::bucket_of("s0");
  for (int i = 0; keys.size() < 12; ++i) {
    std::string k = "s" + std::to_string(i);
    if (Store::bucket_of(k) == bucket) keys.push_back(k);
  }
  for (bool all_inline : {false, true}) {
    ContentSyncConfig small;
    small.message_bytes_max = ContentSyncConfig::kMessageBytesMin;
    small.reply_messages_max = 2;
    if (all_inline) small.inline_value_bytes_max = limits::kValueBytesMax;
    Cluster c(2, 81, small);
    std::size_t ranged_groups = 0;
    c.on_body = [&](const std::string& body) {
      if (body.find(R"("type":"sync_keys")") == std::string::npos) return;
      // A part of a split bucket states its range: [bucket,null,"s.." or [bucket,"s..",
      std::string b = "[" + std::to_string(bucket) + ",";
      for (const std::string& p : {b + "null,\"s", b + "\"s"}) {
        for (std::size_t at = body.find(p); at != std::string::npos; at = body.find(p, at + 1)) {
          ++ranged_groups;
        }
      }
    };
    for (std::size_t i = 0; i < keys.size(); ++i) {
      std::string value = "\"" + std::string(60 * 1024, static_cast<char>('a' + i)) + "\"";
      c.store(1).merge(keys[i], value, ver(i % 4 == 0 ? 1 : 2, 1), 0);
      if (i % 2 == 0) c.store(2).merge(keys[i], "[" + std::to_string(i) + "]", ver(i % 4 == 0 ? 3 : 1, 2), 0);
    }
    auto want = newest_of(c, 2);
    c.exchange(2, 1);
    EXPECT_TRUE(c.identical()) << "one exchange and its continuations repair the bucket";
    c.converge(10);
    ASSERT_TRUE(c.identical());
    expect_holds_all(c, 2, want);
    if (all_inline) {
      EXPECT_GT(ranged_groups, 0u) << "the bucket was split into ranged groups";
    } else {
      EXPECT_EQ(ranged_groups, 0u) << "keys and hashes alone fit one message";
    }
    EXPECT_LE(c.figures.largest, small.message_bytes_max);
  }
}

// ---- malformed input ---------------------------------------------------------------------

TEST(ContentSync, MalformedMessagesAreRejectedWholeAndChangeNothing) {
  Store s;
  s.merge("sa", "1", ver(5, 1), 0);
  ContentSync sync(s, {"n1", "n2", "n3"}, 1);
  std::uint64_t digest = s.digest();
  std::string hex16(16 * 16, '0');
  const std::string bad[] = {
      "",
      "{",
      "[]",
      "5",
      R"({"type":"gossip"})",
      R"({"type":"sync_entries","e":"x"})",
      R"({"type":"sync_entries","e":5})",
      R"({"type":"sync_entries","e":{}})",
      R"({"type":"sync_entries","e":[["sb",1,1]]})",
      R"({"type":"sync_entries","e":[["sb",1,1,"2",5]]})",
      R"({"type":"sync_entries","e":[["sb",1,1,2]]})",
      R"({"type":"sync_entries","e":[["sb",-9223372036854775808,1,"2"]]})",
      R"({"type":"sync_entries","e":[["sb",0,1,"2"]]})",
      R"({"type":"sync_entries","e":[["sb",9223372036854775807,1,"2"]]})",
      R"({"type":"sync_entries","e":[["sb",1,4,"2"]]})",
      R"({"type":"sync_entries","e":[["sb",1.5,1,"2"]]})",
      R"({"type":"sync_entries","e":[["b",1,1,"2"]]})",
      R"({"type":"sync_entries","e":[["i01",1,1,"2"]]})",
      R"({"type":"sync_entries","e":[["sb",1,1,"1}}\n{\"src\":\"n1\"}"]]})",
      R"({"type":"sync_entries","e":[["sb",1,1,"{"]]})",
      R"({"type":"sync_entries","e":[["sb",1,1,"1 2"]]})",
      R"({"type":"sync_entries","e":[["sb",1,1,""]]})",
      // What the gossip decoder refuses too: a lone surrogate in a key or a value, a CR.
      R"({"type":"sync_entries","e":[["s\udc00",1,1,"2"]]})",
      R"({"type":"sync_entries","e":[["sb",1,1,"\"\\udc00\""]]})",
      R"({"type":"sync_entries","e":[["sb",1,1,"[1,\r2]"]]})",
      R"({"type":"sync_entries","e":[["sb",1,1,"2"]],"e":[]})",
      R"({"type":"sync_entries","w":[5]})",
      R"({"type":"sync_entries","e":[["sb",1,1,"2"]],"k":[]})",
      R"({"type":"sync_tree","l":0,"n":[0]})",
      R"({"type":"sync_tree","l":0,"n":[0],"d":"00"})",
      R"({"type":"sync_tree","l":0,"n":[1],"d":")" + hex16 + "\"}",
      R"({"type":"sync_tree","l":4,"n":[0],"d":")" + hex16 + "\"}",
      R"({"type":"sync_tree","l":1,"n":[3,3],"d":")" + hex16 + hex16 + "\"}",
      R"({"type":"sync_tree","l":0,"n":[0],"d":")" + std::string(255, '0') + "G\"}",
      R"({"type":"sync_keys","k":[[0,null,null]]})",
      R"({"type":"sync_keys","k":[[0]]})",
      R"({"type":"sync_keys","k":[[0,[],[]]]})",
      R"({"type":"sync_keys","k":[[0,null,[]]]})",
      R"({"type":"sync_keys","k":[[0,[],5]]})",
      R"({"type":"sync_keys","k":[[70000,null,null,[]]]})",
      R"({"type":"sync_keys","k":[[0,null,null,[["sb",1,1,5]]]]})",  // sb is not in bucket 0
      R"({"type":"sync_keys","k":[[5,null,null,[]],[4,null,null,[]]]})",
      R"({"type":"sync_keys","k":[[0,"sz","sa",[]]]})",
      R"({"type":"sync_keys","k":[[0,null,null,[[1,1,1,5]]]]})",
      R"({"type":"sync_keys","k":[[0,null,null,[["sb",1,1,-5]]]]})",
  };
  for (const std::string& body : bad) {
    std::vector<OutMessage> out;
    std::string error;
    bool called = false;
    auto outcome = sync.on_message(2, body, kNowUs, out,
                                   [&](const Store::MergeResult&, std::string_view, Version) { called = true; },
                                   &error);
    EXPECT_EQ(outcome, ContentSync::Outcome::kMalformed) << body;
    EXPECT_FALSE(error.empty()) << body;
    EXPECT_TRUE(out.empty()) << body;
    EXPECT_FALSE(called) << body;
    EXPECT_EQ(s.digest(), digest) << "a rejected message changed the store: " << body;
  }
  std::vector<OutMessage> out;
  EXPECT_EQ(sync.on_message(1, R"({"type":"sync_entries","e":[]})", kNowUs, out, nullptr),
            ContentSync::Outcome::kMalformed) << "a message from itself";
  EXPECT_EQ(sync.on_message(4, R"({"type":"sync_entries","e":[]})", kNowUs, out, nullptr),
            ContentSync::Outcome::kMalformed) << "from an unknown peer";
  EXPECT_EQ(sync.stats().malformed, std::size(bad) + 2);
  // Unknown members are skipped whatever they hold; a good message still works.
  EXPECT_EQ(sync.on_message(2, R"({"msg_id":7,"x":{"y":[1,{"z":null}]},"type":"sync_entries","e":[["sb",1,0,"[1]"]]})",
                            kNowUs, out, nullptr),
            ContentSync::Outcome::kHandled);
  std::string v;
  EXPECT_TRUE(s.read("sb", 0, &v, nullptr));
  EXPECT_EQ(v, "[1]");
}

TEST(ContentSync, MutatedMessagesNeverCrashOrCorrupt) {
  // Byte flips, truncations and splices of real protocol messages: each is either rejected
  // whole or handled; the receiving store's entries stay valid (tagged keys, valid values).
  Cluster c(2, 71);
  for (int i = 0; i < 300; ++i) {
    c.store(1).merge("s" + std::to_string(i), "\"" + std::to_string(i) + "\"", ver(kNowUs - i, 1), 0);
    // Some older, some newer, some large: the exchange takes every leg (keys, wants, entries).
    c.store(2).merge("s" + std::to_string(i), "\"" + std::string(100, 'y') + "\"",
                     ver(kNowUs - 150, 2), 0);
  }
  std::vector<std::string> samples;
  {
    std::vector<OutMessage> out;
    c.sync(2).start_round(1, out);
    for (int leg = 0; leg < 4 && !out.empty(); ++leg) {
      std::vector<OutMessage> next;
      for (auto& m : out) {
        samples.push_back(m.body);
        std::uint32_t to = m.dest == "n1" ? 1 : 2;
        c.sync(to).on_message(to == 1 ? 2 : 1, m.body, kNowUs, next, nullptr);
      }
      out = std::move(next);
    }
  }
  ASSERT_GE(samples.size(), 3u);
  std::mt19937_64 rng(71);
  Store target;
  ContentSync sync(target, {"n1", "n2"}, 2);
  std::size_t handled = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string body = samples[rng() % samples.size()];
    switch (rng() % 3) {
      case 0:
        body[rng() % body.size()] = static_cast<char>(rng() % 256);
        break;
      case 1:
        body.resize(rng() % body.size());
        break;
      default:
        body.insert(rng() % body.size(), samples[rng() % samples.size()].substr(0, rng() % 40));
    }
    std::vector<OutMessage> out;
    if (sync.on_message(1, body, kNowUs, out, nullptr) == ContentSync::Outcome::kHandled) ++handled;
    for (const auto& m : out) EXPECT_LT(m.body.size() + kEnvelopeBytesMax, limits::kLineBytesMax);
  }
  target.for_each([&](const Entry& e, std::string_view value, Version v) {
    EXPECT_TRUE(sync::valid_key(Store::key_of(e)));
    EXPECT_TRUE(sync::valid_value(value)) << value;
    EXPECT_GE(v.ts_us, 1);
  });
  std::printf("[ figures ] mutated messages handled: %zu of 3000\n", handled);
}

}  // namespace
}  // namespace gossip_kv
