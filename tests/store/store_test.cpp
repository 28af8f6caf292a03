// The last-writer-wins map: newer versions win in any arrival order, ties by origin, digests
// that depend on state only, stale-read detection.
#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "gossip_kv/store.h"
#include "gossip_kv/version.h"

namespace gossip_kv {
namespace {

struct Versioned {
  std::string key;
  std::string value;
  Version version;
};

std::string value_of(Store& s, std::string_view key, Version* v = nullptr) {
  std::string out;
  if (!s.read(key, 0, &out, v)) return "<missing>";
  return out;
}

TEST(Store, NewerVersionWinsInAnyArrivalOrder) {
  std::vector<Versioned> all;
  for (int k = 0; k < 5; ++k) {
    for (int i = 0; i < 6; ++i) {
      // ts collide across origins on purpose, so ties have to be broken by origin.
      all.push_back({"k" + std::to_string(k), "v" + std::to_string(k) + "-" + std::to_string(i),
                     Version{100 + i / 2, static_cast<std::uint32_t>(1 + i % 2)}});
    }
  }
  std::uint64_t digest = 0;
  std::mt19937_64 rng(42);
  for (int round = 0; round < 50; ++round) {
    std::shuffle(all.begin(), all.end(), rng);
    Store s(4);
    for (const auto& e : all) s.merge(e.key, e.value, e.version, 0);
    for (int k = 0; k < 5; ++k) {
      Version v;
      EXPECT_EQ(value_of(s, "k" + std::to_string(k), &v), "v" + std::to_string(k) + "-5")
          << "round " << round;
      EXPECT_EQ(v, (Version{102, 2}));
    }
    if (round == 0) digest = s.digest();
    EXPECT_EQ(s.digest(), digest) << "same state, same digest, round " << round;
  }
}

TEST(Store, MergeReportsAppliedAndIgnored) {
  Store s;
  auto r1 = s.merge("sa", "1", {10, 1}, 0);
  EXPECT_TRUE(r1.applied);
  EXPECT_EQ(r1.previous, Version{});
  auto r2 = s.merge("sa", "1", {10, 1}, 0);
  EXPECT_FALSE(r2.applied) << "the same version and value again is not newer";
  EXPECT_FALSE(s.merge("sa", "0", {10, 1}, 0).applied)
      << "an equal version with a bytewise smaller value loses the tie-break";
  auto r3 = s.merge("sa", "3", {10, 2}, 0);
  EXPECT_TRUE(r3.applied) << "the higher origin wins a timestamp tie";
  EXPECT_EQ(r3.previous, (Version{10, 1}));
  auto r4 = s.merge("sa", "4", {9, 9}, 0);
  EXPECT_FALSE(r4.applied);
  EXPECT_EQ(value_of(s, "sa"), "3");
  EXPECT_EQ(s.key_count(), 1u);
}

TEST(Store, EqualVersionsReconcileToTheGreaterValueInAnyOrder) {
  // Two replicas took different values at one version (a forged or replayed version, or a
  // kv_merge): whatever order they arrive in, every replica keeps the bytewise greater value.
  std::vector<std::string> values = {"1", "\"b\"", "[2]", "10", "\"a\"", "{\"x\":1}"};
  std::string greatest = *std::max_element(values.begin(), values.end());
  std::uint64_t digest = 0;
  std::mt19937_64 rng(7);
  for (int round = 0; round < 30; ++round) {
    std::shuffle(values.begin(), values.end(), rng);
    Store s(round % 3 + 1);
    for (const auto& v : values) s.merge("sk", v, {42, 3}, 0);
    EXPECT_EQ(value_of(s, "sk"), greatest) << "round " << round;
    if (round == 0) digest = s.digest();
    EXPECT_EQ(s.digest(), digest) << "round " << round;
  }
  Store s;
  s.merge("sk", "\"z\"", {41, 3}, 0);
  auto r = s.merge("sk", "\"a\"", {42, 3}, 0);
  EXPECT_TRUE(r.applied) << "a newer version wins whatever its value";
  EXPECT_FALSE(s.merge("sk", "\"z\"", {41, 3}, 0).applied) << "an older one never does";
  EXPECT_EQ(value_of(s, "sk"), "\"a\"");
}

TEST(Store, DigestTreeSumsEveryLevelAndFollowsReplaces) {
  // Every node is the sum of its children, the root is digest(), and every leaf equals the
  // sum of entry_hash over bucket_entries(), after inserts and replaces (merge, write, cas).
  Store s(8);
  HybridClock clock;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 3000; ++i) {
    std::string key = "s" + std::to_string(rng() % 1500);
    if (i % 3 == 0) {
      s.write(key, std::to_string(i), 1000 + i, 1, clock);
    } else {
      s.merge(key, std::to_string(i), {static_cast<std::int64_t>(rng() % 5000), 2}, 0);
    }
  }
  Store::WriteResult w;
  s.write("sc", "1", 0, 1, clock);
  ASSERT_EQ(s.cas("sc", "1", "2", 0, 1, clock, &w), Store::CasOutcome::kOk);
  EXPECT_EQ(s.tree_digest(0, 0), s.digest());
  for (std::uint32_t level = 0; level < Store::kTreeDepth; ++level) {
    for (std::uint32_t i = 0; i < Store::tree_width(level); ++i) {
      std::uint64_t children[Store::kTreeFanout];
      s.tree_children(level, i, children);
      std::uint64_t sum = 0;
      for (std::uint64_t c : children) sum += c;
      ASSERT_EQ(sum, s.tree_digest(level, i)) << "level " << level << " node " << i;
    }
  }
  Store::BucketEntries entries;
  std::size_t keys = 0;
  for (std::uint32_t b = 0; b < Store::kBuckets; ++b) {
    s.bucket_entries(b, &entries);
    std::uint64_t sum = 0;
    for (const auto& e : entries) {
      EXPECT_EQ(Store::bucket_of(e.key), b);
      EXPECT_EQ(e.hash, Store::entry_hash(e.key, e.version, e.value));
      Version v;
      EXPECT_EQ(value_of(s, e.key, &v), e.value);
      EXPECT_EQ(v, e.version);
      sum += e.hash;
    }
    EXPECT_TRUE(std::is_sorted(entries.begin(), entries.end(),
                               [](const auto& a, const auto& b2) { return a.key < b2.key; }));
    ASSERT_EQ(sum, s.tree_digest(Store::kTreeDepth, b)) << "bucket " << b;
    keys += entries.size();
  }
  EXPECT_EQ(keys, s.key_count()) << "every key is in exactly one bucket";
}

TEST(Store, DigestTreeIsIndependentOfTheShardCount) {
  Store a(1), b(256), c(7);
  for (int i = 0; i < 2000; ++i) {
    std::string key = "i" + std::to_string(i);
    for (Store* s : {&a, &b, &c}) s->merge(key, std::to_string(i % 17), {i + 1, 1}, 0);
  }
  for (std::uint32_t level = 0; level <= 2; ++level) {
    for (std::uint32_t i = 0; i < Store::tree_width(level); ++i) {
      ASSERT_EQ(a.tree_digest(level, i), b.tree_digest(level, i));
      ASSERT_EQ(a.tree_digest(level, i), c.tree_digest(level, i));
    }
  }
  EXPECT_EQ(a.digest(), c.digest());
}

TEST(Store, WriteSupersedesWhateverTheClockSays) {
  Store s;
  HybridClock clock;
  s.merge("sk", "future", {5'000'000, 2}, 0);
  auto w = s.write("sk", "now", 1'000, 1, clock);
  EXPECT_GT(w.version.ts_us, 5'000'000) << "a local write must beat the version it replaces";
  EXPECT_EQ(value_of(s, "sk"), "now");
  auto w2 = s.write("sk", "again", 1'000, 1, clock);
  EXPECT_GT(w2.version, w.version);
}

TEST(Store, CasComparesJsonValues) {
  Store s;
  HybridClock clock;
  Store::WriteResult w;
  EXPECT_EQ(s.cas("sk", "1", "2", 0, 1, clock, &w), Store::CasOutcome::kMissing);
  s.write("sk", R"({"a":1,"b":[1.0]})", 0, 1, clock);
  EXPECT_EQ(s.cas("sk", R"({"b":[1],"a":1})", "7", 0, 1, clock, &w), Store::CasOutcome::kOk);
  EXPECT_EQ(value_of(s, "sk"), "7");
  EXPECT_EQ(s.cas("sk", "8", "9", 0, 1, clock, &w), Store::CasOutcome::kMismatch);
  EXPECT_EQ(s.cas("sk", "\"7\"", "9", 0, 1, clock, &w), Store::CasOutcome::kMismatch)
      << "a string is not a number";
  EXPECT_EQ(value_of(s, "sk"), "7");
}

TEST(Store, CasComparesValuesLargerThanItsBuffersAndFromManyThreads) {
  // json::values_equal parses into per-thread buffers of 16 KiB; larger values spill into the
  // heap. Both must compare as JSON, on any thread.
  auto object = [](int members, bool reversed) {
    std::string out = "{";
    for (int i = 0; i < members; ++i) {
      int m = reversed ? members - 1 - i : i;
      if (i > 0) out += ",";
      out += "\"k" + std::to_string(m) + "\":[" + std::to_string(m) + ",\"" +
             std::string(static_cast<std::size_t>(m % 50), 'v') + "\"]";
    }
    return out + "}";
  };
  for (int members : {3, 400, 1500}) {  // from ~50 bytes to ~60 KiB
    std::string held = object(members, false);
    std::string same = object(members, true);
    // Valid JSON that differs as a value: the reversed object ends "k0":[0,""]}, and its
    // number becomes 1 (a malformed `other` would fail the compare for the wrong reason).
    std::string other = same;
    ASSERT_EQ(other.substr(other.size() - 9), R"(":[0,""]})");
    other[other.size() - 6] = '1';
    ASSERT_LE(held.size(), 64u * 1024);
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&, t] {
        Store s;
        HybridClock clock;
        Store::WriteResult w;
        std::string key = "sk" + std::to_string(t);
        for (int round = 0; round < 5; ++round) {
          s.write(key, held, 0, 1, clock);
          bool mismatch = s.cas(key, other, "1", 0, 1, clock, &w) == Store::CasOutcome::kMismatch;
          bool match = s.cas(key, same, "2", 0, 1, clock, &w) == Store::CasOutcome::kOk;
          ok += mismatch && match ? 1 : 0;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok.load(), 15) << members << " members, " << held.size() << " bytes";
  }
}

TEST(Store, DigestTracksState) {
  Store a(8), b(1);
  EXPECT_EQ(a.digest(), b.digest()) << "empty stores agree";
  a.merge("sx", "1", {1, 1}, 0);
  EXPECT_NE(a.digest(), b.digest());
  b.merge("sx", "1", {1, 1}, 0);
  EXPECT_EQ(a.digest(), b.digest()) << "the shard count does not matter";
  b.merge("sx", "1", {2, 1}, 0);
  EXPECT_NE(a.digest(), b.digest()) << "the version is part of the digest";
  a.merge("sx", "2", {2, 1}, 0);
  EXPECT_NE(a.digest(), b.digest()) << "the value is part of the digest";
}

TEST(Store, FindLoadKeyOfAndForEach) {
  Store s;
  EXPECT_EQ(s.find("sa"), nullptr);
  s.merge("sa", "[1]", {3, 1}, 0);
  s.merge("i7", "2", {4, 1}, 0);
  const Entry* e = s.find("sa");
  ASSERT_NE(e, nullptr);
  std::string v;
  EXPECT_EQ(s.load(*e, &v), (Version{3, 1}));
  EXPECT_EQ(v, "[1]");
  EXPECT_EQ(Store::key_of(*e), "sa");
  std::vector<std::string> keys;
  s.for_each([&](const Entry& en, std::string_view, Version) {
    keys.emplace_back(Store::key_of(en));
  });
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"i7", "sa"}));
}

TEST(Store, StaleReadsFoundWhenTheNewerVersionArrives) {
  Store s;
  s.merge("sk", "old", {1'000, 1}, 0);
  std::string v;
  s.read("sk", 2'000, &v, nullptr);  // served before the newer write existed: fine
  s.read("sk", 5'000, &v, nullptr);  // served after it: stale
  s.read("sk", 6'000, &v, nullptr);  // stale
  auto r = s.merge("sk", "new", {3'000, 2}, 7'000);
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(r.stale_reads, 2u);
  auto r2 = s.merge("sk", "newer", {8'000, 2}, 9'000);
  EXPECT_EQ(r2.stale_reads, 0u) << "reads are counted against the version they returned";
}

TEST(Store, ValuesOfEverySizeComeBackExactlyAndEntriesNeverMove) {
  // A value lives inline in its entry up to the capacity fixed at insertion, then in a heap
  // block that is kept for smaller values within bounds, and inline again below them. Every
  // crossing, both ways, must keep the value, the digest and the entry's address.
  std::mt19937_64 rng(7);
  const std::vector<std::size_t> sizes = {0,   1,   7,    8,    9,    23,    24,  25, 100, 511,
                                          512, 513, 1024, 1025, 4000, 65536, 3,   600, 0,  10,
                                          0,   257, 2,    1500, 700,  40,    1,   300};
  Store s(8);
  HybridClock clock;
  std::map<std::string, std::string> model;
  std::map<std::string, const Entry*> first_address;
  for (std::size_t key_len : {1u, 11u, 40u, 1025u}) {
    // Starts at sizes 0, 23, 512, 65536 and 1500: a key can be created with a value of any
    // size, inline or not.
    for (int variant = 0; variant < 5; ++variant) {
      std::string key(key_len, static_cast<char>('a' + variant));
      key[0] = 's';
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        // Each key walks the sizes from its own start: heap to smaller heap, to inline, to
        // empty, and back up, from every kind of first value.
        static constexpr std::size_t kStart[] = {0, 5, 10, 15, 23};
        std::size_t size = sizes[(i + kStart[variant]) % sizes.size()];
        std::string value(size, '\0');
        for (char& c : value) c = static_cast<char>('0' + rng() % 10);
        if (i % 3 == 0) {
          s.write(key, value, 1'000 + static_cast<std::int64_t>(i), 1, clock);
        } else {
          s.merge(key, value, {clock.next(0, 0), 2}, 0);
        }
        model[key] = value;
        const Entry* e = s.find(key);
        ASSERT_NE(e, nullptr);
        auto [it, fresh] = first_address.try_emplace(key, e);
        EXPECT_EQ(it->second, e) << "an entry moved when its value changed size";
        std::string back;
        ASSERT_TRUE(s.read(key, 0, &back, nullptr));
        ASSERT_EQ(back, value) << "key length " << key_len << ", value size " << size;
        EXPECT_EQ(Store::key_of(*e), key);
      }
    }
  }
  EXPECT_EQ(s.key_count(), model.size());
  Store copy(1);
  for (const auto& [k, v] : model) {
    Version held;
    std::string value;
    ASSERT_TRUE(s.read(k, 0, &value, &held));
    copy.merge(k, v, held, 0);
  }
  EXPECT_EQ(copy.digest(), s.digest()) << "the digest follows every resize";
  EXPECT_EQ(copy.tree_digest(0, 0), s.tree_digest(0, 0));
}

TEST(Store, BucketEntriesListExactlyTheBucketsKeys) {
  Store s(16);
  std::map<std::uint32_t, std::vector<std::string>> by_bucket;
  for (int i = 0; i < 3000; ++i) {
    std::string key = "skey" + std::to_string(i);
    s.merge(key, std::to_string(i), {i + 1, 1}, 0);
    by_bucket[Store::bucket_of(key)].push_back(key);
  }
  Store::BucketEntries got;
  std::size_t seen = 0;
  for (auto& [bucket, keys] : by_bucket) {
    std::sort(keys.begin(), keys.end());
    s.bucket_entries(bucket, &got);
    ASSERT_EQ(got.size(), keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      EXPECT_EQ(got[i].key, keys[i]);
      EXPECT_EQ(got[i].value, keys[i].substr(4));
      EXPECT_EQ(got[i].hash, Store::entry_hash(got[i].key, got[i].version, got[i].value));
    }
    seen += got.size();
  }
  EXPECT_EQ(seen, 3000u);
  std::uint32_t empty_bucket = 0;
  while (by_bucket.count(empty_bucket) != 0) ++empty_bucket;
  s.bucket_entries(empty_bucket, &got);
  EXPECT_TRUE(got.empty());
}

TEST(Store, ReadsAreForgottenWithTheVersionTheyReturned) {
  Store s;
  HybridClock clock;
  s.merge("sk", "a", {1'000, 1}, 0);
  std::string v;
  s.read("sk", 5'000, &v, nullptr);  // a read of version 1,000
  EXPECT_EQ(s.merge("sk", "b", {2'000, 1}, 0).stale_reads, 1u);  // stale, and now forgotten
  auto r = s.merge("sk", "c", {3'000, 1}, 0);
  EXPECT_EQ(r.stale_reads, 0u);
  s.read("sk", 30'000, &v, nullptr);    // a read of "c"
  s.write("sk", "d", 10'000, 1, clock);  // a local write (ts 10,000) forgets it too
  // Newer than "d" and older than the read: a read still remembered would count as stale.
  auto r2 = s.merge("sk", "e", {20'000, 2}, 0);
  EXPECT_TRUE(r2.applied);
  EXPECT_EQ(r2.stale_reads, 0u);
}

TEST(Store, ConcurrentWritersOnSharedKeysLoseNothing) {
  // Invariant stressed: per-shard locking keeps every key's latest write and the digest exact.
  Store s(4);
  HybridClock clock;
  constexpr int kThreads = 4, kWrites = 5000, kKeys = 16;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        std::string key = "s" + std::to_string(i % kKeys);
        s.write(key, std::to_string(t * kWrites + i), wall_clock_us(), 1, clock);
        std::string v;
        s.read(key, 0, &v, nullptr);
        EXPECT_FALSE(v.empty());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(s.key_count(), static_cast<std::size_t>(kKeys));
  Store copy(1);
  s.for_each([&](const Entry& e, std::string_view value, Version v) {
    copy.merge(Store::key_of(e), value, v, 0);
  });
  EXPECT_EQ(copy.digest(), s.digest());
}

}  // namespace
}  // namespace gossip_kv
