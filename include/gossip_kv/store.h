// The replica: a sharded, versioned, last-writer-wins key-value map.
//
// Thread safety:
//  1. Every public method may be called from any thread at any time.
//  2. Each shard has its own mutex, held only for the map lookup and the copy of one value;
//     no method holds two shard locks at once, so there is no lock order to get wrong.
//  3. Entries are never erased, so a `const Entry*` handed out stays valid for the Store's
//     lifetime; an entry's key never changes after insertion and may be read without a lock,
//     while its value and version are read only through load() (under the shard lock).
//  4. key_count() and digest() are exact when no write runs concurrently; the runtime calls
//     them behind a barrier (see runtime.h).
//  5. The digest tree (tree_digest, tree_children) is kept by relaxed atomic adds made under
//     the writing shard's lock: a reader running concurrently with writes may see a leaf
//     updated before its ancestors (a transient mismatch between levels), never a torn
//     digest. With no write running, every node equals the sum of its children, and the root
//     equals digest().
//  6. A bucket lives in exactly one shard (shard = bucket % shard_count), so bucket_entries()
//     takes one shard lock and walks one table: that bucket's entries and those of ~15 others.
//
// Sizes: keys are encoded keys of 1 to limits::kKeyBytesMax + 1 bytes, values at most
// limits::kValueBytesMax bytes (the codec and the peer decoder check both; the store asserts).
//
// Memory (store.cpp): one allocation per key, from its shard's arena, holds a 28-byte header
// (the version, the replication engine's mark, lengths), the key and the value; a value that
// outgrows the room fixed at insertion moves to a heap block of its own, and the entry stays
// where it is. Every 16 buckets of a shard share a hash set of 4-byte entry references (6 to
// 11 bytes per key, by load). Reads are tracked (for stale reads) in a side table, only for
// keys read since their last change. Fixed: the digest tree (546 KiB) and 4,096 empty tables
// (224 KiB). One node holds 1,000,000 "key%08d" keys with small integer values in 67 bytes per
// key (BENCHMARKS.md).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gossip_kv/version.h"

namespace gossip_kv {

struct Entry;  // defined in store.cpp

class Store {
 public:
  // Reads remembered per key for stale-read detection (see merge()).
  static constexpr std::size_t kReadsTracked = 4;
  static constexpr std::size_t kDefaultShards = 256;

  // REQUIRES: 1 <= shard_count <= kBuckets.
  explicit Store(std::size_t shard_count = kDefaultShards);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  struct WriteResult {
    Version version;
    const Entry* entry = nullptr;
  };

  // A client write taken by this node: stores value with a version from clock that is newer
  // than the key's current version. `value` is raw JSON text, kept verbatim.
  WriteResult write(std::string_view key, std::string_view value, std::int64_t now_us,
                    std::uint32_t origin, HybridClock& clock);

  enum class CasOutcome { kOk, kMissing, kMismatch };
  // Compare-and-set against the local replica only: when the stored value equals `from` (as a
  // JSON value), stores `to` as write() would and fills *out.
  CasOutcome cas(std::string_view key, std::string_view from, std::string_view to,
                 std::int64_t now_us, std::uint32_t origin, HybridClock& clock, WriteResult* out);

  struct MergeResult {
    bool applied = false;       // the version was newer than the stored one and was taken
    const Entry* entry = nullptr;
    Version previous;           // the version held before (ts_us 0: the key was missing)
    std::uint32_t stale_reads = 0;  // reads served after `version` was written that returned
                                    // the older value: found stale now
  };
  // Takes (value, version) when version is newer than what the key holds, or equal to it with a
  // value that is bytewise greater (the tie-break of Maelstrom's lww-kv, so that two writes
  // with one version reconcile to the same value on every replica); otherwise ignores it.
  MergeResult merge(std::string_view key, std::string_view value, Version version,
                    std::int64_t now_us);

  // Copies the key's value into *value_out (replacing its contents) and returns true, or returns
  // false when the key is missing. Records the read at now_us for stale-read detection.
  bool read(std::string_view key, std::int64_t now_us, std::string* value_out,
            Version* version_out);

  // The entry's current value (copied into *value_out when not null) and version.
  Version load(const Entry& entry, std::string* value_out) const;
  // The entry's encoded key; safe without a lock (invariant 3).
  static std::string_view key_of(const Entry& entry);
  // The entry for a key, or nullptr.
  const Entry* find(std::string_view key) const;

  // A version-sized mark in every entry that belongs to the store's one replication engine
  // (its anti-entropy index: the version the entry is indexed at), so that the engine keeps
  // no table keyed by entry. The store never reads or writes it; only the engine's thread
  // may, without a lock. A new entry has none (nullopt). REQUIRES: v.origin < 65535, and one
  // engine per store for the store's life: the engine's index is ordered by the marks.
  static std::optional<Version> index_mark(const Entry& entry);
  // The mark's timestamp alone (unspecified for an unmarked entry): what the engine's index
  // orders its entries by, so it is inline (store.cpp asserts the offset).
  static std::int64_t index_mark_ts(const Entry& entry) {
    std::int64_t ts;
    std::memcpy(&ts, reinterpret_cast<const char*>(&entry) + kMarkTsOffset, sizeof ts);
    return ts;
  }
  static constexpr std::size_t kMarkTsOffset = 8;
  static void set_index_mark(const Entry& entry, Version v);

  // Calls fn for every entry, one shard at a time under that shard's lock: fn must not call
  // back into the Store.
  void for_each(const std::function<void(const Entry&, std::string_view value, Version)>& fn) const;

  [[nodiscard]] std::size_t key_count() const;
  // Order-independent hash of every (key, version, value) held: equal on replicas that hold the
  // same state.
  [[nodiscard]] std::uint64_t digest() const;

  // ---- The digest tree: content anti-entropy (src/replication/content_sync.h) -------------
  // The key space is cut into kBuckets buckets by key hash; the tree has kTreeFanout children
  // per node and kTreeDepth levels below the root (level 0: the root, one node; level l:
  // kTreeFanout^l nodes; level kTreeDepth: the buckets). A node's digest is the sum of
  // entry_hash over every entry in its buckets. Both are protocol constants: replicas compare
  // trees node by node, whatever their shard counts.
  static constexpr std::uint32_t kTreeFanout = 16;
  static constexpr std::uint32_t kTreeDepth = 4;
  static constexpr std::uint32_t kBuckets = 1u << 16;  // kTreeFanout^kTreeDepth
  // Nodes at a level: kTreeFanout^level. REQUIRES: level <= kTreeDepth.
  static constexpr std::uint32_t tree_width(std::uint32_t level) {
    return level == 0 ? 1 : kTreeFanout * tree_width(level - 1);
  }

  // The bucket of an encoded key: the low 16 bits of key::hash (the worker pick uses bits
  // 32..63, so buckets and workers stay independent).
  static std::uint32_t bucket_of(std::string_view key);
  // The order-independent contribution of one (key, version, value) to every digest.
  static std::uint64_t entry_hash(std::string_view key, Version version, std::string_view value);

  // The digest of node `index` at `level`. REQUIRES: level <= kTreeDepth,
  // index < tree_width(level). tree_digest(0, 0) == digest() when no write runs concurrently.
  [[nodiscard]] std::uint64_t tree_digest(std::uint32_t level, std::uint32_t index) const;
  // Fills out[0..kTreeFanout) with the digests of the children of node `index` at `level`.
  // REQUIRES: level < kTreeDepth, index < tree_width(level).
  void tree_children(std::uint32_t level, std::uint32_t index, std::uint64_t* out) const;

  struct BucketEntry {
    std::string_view key;  // into the BucketEntries' bytes
    Version version;
    std::uint64_t hash = 0;  // entry_hash(key, version, value)
    std::string_view value;
  };
  // A copy of one bucket's entries: keys and values in one buffer, so that a reused object
  // stops allocating once it has held the largest bucket (content sync lists buckets
  // whenever replicas differ, which under steady writes is every round).
  struct BucketEntries {
    // Neither copied nor moved: the views point into `bytes` (a short string moves by copy).
    BucketEntries() = default;
    BucketEntries(const BucketEntries&) = delete;
    BucketEntries& operator=(const BucketEntries&) = delete;
    ~BucketEntries() = default;
    std::vector<BucketEntry> entries;
    std::string bytes;
    [[nodiscard]] std::size_t size() const { return entries.size(); }
    [[nodiscard]] bool empty() const { return entries.empty(); }
    const BucketEntry& operator[](std::size_t i) const { return entries[i]; }
    [[nodiscard]] auto begin() const { return entries.begin(); }
    [[nodiscard]] auto end() const { return entries.end(); }
  };
  // Replaces *out with a copy of every entry in `bucket`, sorted by key (bytewise); its views
  // stay valid until *out is filled again. Takes one shard lock and walks that bucket only.
  // REQUIRES: bucket < kBuckets.
  void bucket_entries(std::uint32_t bucket, BucketEntries* out) const;

 private:
  struct Shard;
  // Where a key lives: its key::hash (computed once per operation), bucket, shard, and the
  // shard's table that holds the bucket.
  struct Where {
    std::string_view key;
    std::uint64_t hash;
    std::uint32_t bucket;
    Shard* shard;
    std::size_t table;
  };
  [[nodiscard]] Where where(std::string_view key) const;
  [[nodiscard]] Shard& shard_of(std::uint32_t bucket) const;
  [[nodiscard]] std::size_t table_of(std::uint32_t bucket) const;
  void tree_add(std::uint32_t bucket, std::uint64_t delta);

  std::vector<std::unique_ptr<Shard>> shards_;
  std::size_t tables_per_shard_ = 1;
  std::atomic<std::size_t> key_count_{0};
  // Every tree node, level by level (level l starts at (kTreeFanout^l - 1) / (kTreeFanout - 1)): 69,905
  // counters, 546 KiB per Store whatever its size.
  std::unique_ptr<std::atomic<std::uint64_t>[]> tree_;
};

}  // namespace gossip_kv
