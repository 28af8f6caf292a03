#include "gossip_kv/store.h"

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cstring>
#include <new>

#include "codec/json_util.h"
#include "common/assert.h"
#include "gossip_kv/key.h"
#include "gossip_kv/limits.h"
#include "gossip_kv/mutex.h"

namespace gossip_kv {

// One allocation per key: this 28-byte header, the key's bytes, then the value's bytes (up to
// the inline capacity fixed at insertion) or, once a value outgrows it, a pointer to a
// HeapValue. The header, value and reads are guarded by the entry's shard lock; the key never
// changes and is read without a lock (invariant 3). An entry never moves, so a `const Entry*`
// names its key for the store's lifetime. Packed to 4-byte alignment (no tail padding before
// the key); entries start 8-aligned in their arena, so the 64-bit fields stay aligned.
struct __attribute__((packed, aligned(4))) Entry {
  std::int64_t ts_us;                // the version (see version())
  // The replication engine's mark (Store::index_mark): its thread's alone, never the store's.
  mutable std::int64_t mark_ts_us;
  std::uint32_t value_len : 17;      // limits::kValueBytesMax fits
  std::uint32_t inline_cap : 12;     // bytes after the key for an inline value (>= 8)
  std::uint32_t on_heap : 1;         // the value is in the HeapValue the inline bytes point to
  std::uint32_t read_tracked : 1;    // the shard's reads map holds this entry's reads
  std::uint32_t unused : 1;
  std::uint16_t origin;              // node ids are at most limits::kNodeIdsMax
  std::uint16_t key_len;             // limits::kKeyBytesMax + the tag fits
  mutable std::uint16_t mark_origin;  // kNoMark: the engine has not marked the entry
  std::uint16_t bucket;              // Store::bucket_of(key()), fixed

  [[nodiscard]] Version version() const { return {ts_us, origin}; }
  [[nodiscard]] const char* key_bytes() const { return reinterpret_cast<const char*>(this + 1); }
  [[nodiscard]] std::string_view key() const { return {key_bytes(), key_len}; }
  [[nodiscard]] char* tail() { return reinterpret_cast<char*>(this + 1) + key_len; }
  [[nodiscard]] const char* tail() const { return key_bytes() + key_len; }
};
static_assert(sizeof(Entry) == 28 && alignof(Entry) == 4);
static_assert(offsetof(Entry, mark_ts_us) == Store::kMarkTsOffset);
constexpr std::uint16_t kNoMark = UINT16_MAX;
static_assert(limits::kValueBytesMax < (1u << 17));
static_assert(limits::kKeyBytesMax + 1 <= UINT16_MAX && limits::kNodeIdsMax <= UINT16_MAX);

namespace {

// A value that outgrew its entry's inline bytes.
struct HeapValue {
  std::uint32_t cap;
  [[nodiscard]] char* bytes() { return reinterpret_cast<char*>(this + 1); }
};

// Values up to this size start inline; larger ones start on the heap. The inline room is at
// least the 8 bytes a HeapValue pointer needs, and takes what rounding the entry up to 8 bytes
// leaves.
constexpr std::size_t kInlineValueMax = 1024;
static_assert(kInlineValueMax + 16 < (1u << 12));
// A heap value is kept for a smaller one while it is at most this large or twice the size, so
// that a key whose value swings between sizes up to this does not allocate on every write (it
// is kept even where the smaller value would fit inline). Wider swings reallocate.
constexpr std::size_t kHeapKeepBytes = 512;

HeapValue* heap_of(const Entry& e) {
  HeapValue* h = nullptr;
  std::memcpy(&h, e.tail(), sizeof h);
  return h;
}

std::string_view value_of(const Entry& e) {
  if (e.on_heap != 0) return {heap_of(e)->bytes(), e.value_len};
  return {e.tail(), e.value_len};
}

}  // namespace

// A shard's entries, back to back in chunks: an entry lives as long as the store, so a bump
// allocator without malloc's per-chunk header and 16-byte rounding holds them (8 to 16 bytes
// a key less), and they do not interleave with short-lived buffers that would leave the heap
// holed after a burst. Chunks grow from kFirstChunkBytes to kChunkBytesMax (a nearly empty
// store stays small; at most one partly used chunk per shard). An entry is also named by a
// 4-byte reference (its chunk, and its offset in 8-byte units), which the hash tables hold
// instead of 8-byte pointers.
class EntryArena {
 public:
  using Ref = std::uint32_t;

  EntryArena() = default;
  EntryArena(const EntryArena&) = delete;
  EntryArena& operator=(const EntryArena&) = delete;
  ~EntryArena() {
    for (char* c : chunks_) ::operator delete(c);
  }

  // 8-byte aligned room for `bytes` (a multiple of 8, at most kChunkBytesMax), and its Ref.
  std::pair<void*, Ref> allocate(std::size_t bytes) {
    GOSSIP_KV_ASSERT(bytes % 8 == 0 && bytes <= kChunkBytesMax);
    if (bytes > left_) {
      GOSSIP_KV_ASSERT(chunks_.size() < (std::size_t{1} << kChunkBits));
      std::size_t chunk = std::max(bytes, next_chunk_bytes_);
      next_chunk_bytes_ = std::min(next_chunk_bytes_ * 2, kChunkBytesMax);
      chunks_.push_back(static_cast<char*>(::operator new(chunk)));
      next_ = chunks_.back();
      left_ = chunk;
    }
    auto offset = static_cast<Ref>(next_ - chunks_.back());
    Ref ref = static_cast<Ref>(chunks_.size() - 1) << kOffsetBits | offset / 8;
    void* p = next_;
    next_ += bytes;
    left_ -= bytes;
    return {p, ref};
  }

  [[nodiscard]] Entry* at(Ref ref) const {
    return reinterpret_cast<Entry*>(chunks_[ref >> kOffsetBits] + (ref & kOffsetMask) * 8);
  }

 private:
  static constexpr std::size_t kFirstChunkBytes = 512;
  static constexpr std::size_t kChunkBytesMax = 16 * 1024;
  static constexpr unsigned kOffsetBits = 11;  // kChunkBytesMax / 8 offsets
  static constexpr Ref kOffsetMask = (Ref{1} << kOffsetBits) - 1;
  static constexpr unsigned kChunkBits = 32 - kOffsetBits;  // 2M chunks: 32 GiB a shard
  static_assert(kChunkBytesMax / 8 == (std::size_t{1} << kOffsetBits));
  std::vector<char*> chunks_;
  char* next_ = nullptr;
  std::size_t left_ = 0;
  std::size_t next_chunk_bytes_ = kFirstChunkBytes;
};

namespace {

std::pair<Entry*, EntryArena::Ref> new_entry(EntryArena& arena, std::string_view key,
                                             std::uint32_t bucket, std::size_t value_hint) {
  GOSSIP_KV_ASSERT(!key.empty() && key.size() <= limits::kKeyBytesMax + 1);
  std::size_t inline_want = std::max<std::size_t>(value_hint <= kInlineValueMax ? value_hint : 0, 8);
  std::size_t bytes = (sizeof(Entry) + key.size() + inline_want + 7) / 8 * 8;
  auto [raw, ref] = arena.allocate(bytes);
  auto* e = new (raw) Entry{};
  e->mark_origin = kNoMark;
  e->bucket = static_cast<std::uint16_t>(bucket);
  e->key_len = static_cast<std::uint16_t>(key.size());
  e->inline_cap = static_cast<std::uint32_t>(bytes - sizeof(Entry) - key.size()) & 0xFFFu;
  std::memcpy(reinterpret_cast<char*>(e + 1), key.data(), key.size());
  return {e, ref};
}

void free_heap(Entry& e) {
  if (e.on_heap == 0) return;
  ::operator delete(heap_of(e));
  e.on_heap = 0;
}

// The entry's own bytes go with its arena.
void destroy_entry(Entry* e) {
  free_heap(*e);
  e->~Entry();
}

// Stores value in e (its length included), inline when it fits, else in a heap block.
void set_value(Entry& e, std::string_view value) {
  GOSSIP_KV_ASSERT(value.size() <= limits::kValueBytesMax);
  char* dest = nullptr;
  if (e.on_heap != 0) {
    HeapValue* h = heap_of(e);
    if (value.size() <= h->cap && h->cap <= std::max(kHeapKeepBytes, 2 * value.size())) {
      dest = h->bytes();
    } else {
      free_heap(e);
    }
  }
  if (dest == nullptr && value.size() <= e.inline_cap) dest = e.tail();
  if (dest == nullptr) {
    std::size_t cap = (value.size() + 15) / 16 * 16;
    auto* h = new (::operator new(sizeof(HeapValue) + cap)) HeapValue{static_cast<std::uint32_t>(cap)};
    std::memcpy(e.tail(), &h, sizeof h);
    e.on_heap = 1;
    dest = h->bytes();
  }
  if (!value.empty()) std::memcpy(dest, value.data(), value.size());
  e.value_len = static_cast<std::uint32_t>(value.size()) & 0x1FFFFu;
}

// A key with its key::hash, so that a lookup hashes the key once.
struct HashedKey {
  std::string_view key;
  std::uint64_t hash;
};

// A bucket's keys share key::hash's low 16 bits (the bucket); the table takes the others, so
// that its 7-bit tags still tell keys apart.
std::size_t table_hash(std::uint64_t h) { return static_cast<std::size_t>(std::rotr(h, 16)); }

// Hash and equality of entry references, resolved through their shard's arena.
struct EntryHash {
  using is_transparent = void;
  const EntryArena* arena;
  std::size_t operator()(EntryArena::Ref r) const {
    return table_hash(key::hash(arena->at(r)->key()));
  }
  std::size_t operator()(const HashedKey& k) const { return table_hash(k.hash); }
};
struct EntryEq {
  using is_transparent = void;
  const EntryArena* arena;
  bool operator()(EntryArena::Ref a, EntryArena::Ref b) const { return a == b; }
  bool operator()(EntryArena::Ref a, const HashedKey& b) const {
    return arena->at(a)->key() == b.key;
  }
  bool operator()(const HashedKey& a, EntryArena::Ref b) const {
    return arena->at(b)->key() == a.key;
  }
};

}  // namespace

// The entries of a few buckets (the bucket of a key: Store::bucket_of) of one shard, by
// reference into the shard's arena.
using BucketTable = absl::flat_hash_set<EntryArena::Ref, EntryHash, EntryEq>;
// About this many buckets share a table: 4,096 tables in all (224 KiB when empty), and a
// bucket_entries() walks ~1/4,096 of the keys.
constexpr std::size_t kBucketsPerTable = 16;

// The latest reads of a key's current version (a ring), how many there were, and the first:
// enough to tell, when a newer version arrives, how many of them were served after it was
// written. Kept apart from the entry, for keys read since their last change only.
struct ReadTrack {
  std::array<std::int64_t, Store::kReadsTracked> read_us{};
  std::uint32_t reads = 0;
  std::int64_t first_read_us = 0;
};

// Entry values, versions and reads are guarded by their shard's mu too (not expressible as an
// attribute: the entry does not know its shard).
struct alignas(64) Store::Shard {
  mutable Mutex mu;
  // Declared before the tables, whose hash functors point at it: it outlives them.
  EntryArena arena GOSSIP_KV_GUARDED_BY(mu);
  // The entries of buckets b with b % shard_count == this shard, in table
  // (b / shard_count) % tables.size().
  std::vector<BucketTable> tables GOSSIP_KV_GUARDED_BY(mu);
  // The sum of entry_hash() over the shard's entries.
  std::uint64_t digest GOSSIP_KV_GUARDED_BY(mu) = 0;
  absl::flat_hash_map<const Entry*, ReadTrack> reads GOSSIP_KV_GUARDED_BY(mu);

  // A new entry starts empty at version {0, 0}, counted in the digests so that replace() can
  // take it out again. Returns the entry and whether it was inserted.
  std::pair<Entry*, bool> find_or_insert(const Where& w, std::size_t value_hint, Store& store)
      GOSSIP_KV_REQUIRES(mu);
  [[nodiscard]] Entry* find(const Where& w) const GOSSIP_KV_REQUIRES(mu);
  // Replaces e's value and version, keeping the shard digest and the store's tree current,
  // and forgets the reads of the replaced version.
  void replace(Entry& e, std::string_view value, Version v, Store& store) GOSSIP_KV_REQUIRES(mu);
  // Counts the tracked reads of e's version that were served after `newer` was written.
  [[nodiscard]] std::uint32_t stale_reads_against(const Entry& e, std::int64_t newer_ts_us) const
      GOSSIP_KV_REQUIRES(mu);
};

namespace {

std::uint64_t hash_of(const Entry& e) {
  return Store::entry_hash(e.key(), e.version(), value_of(e));
}

// Where level `level` starts in Store::tree_.
constexpr std::uint32_t level_offset(std::uint32_t level) {
  return level == 0 ? 0 : level_offset(level - 1) + Store::tree_width(level - 1);
}
constexpr std::uint32_t kTreeNodes = level_offset(Store::kTreeDepth + 1);
static_assert(Store::tree_width(Store::kTreeDepth) == Store::kBuckets);

// The tie-break: a version wins by being newer, or equal with a bytewise greater value.
bool wins_over(Version v, std::string_view value, const Entry& held) {
  if (held.version() != v) return held.version() < v;
  return value_of(held) < value;
}

std::uint32_t bucket_of_hash(std::uint64_t h) {
  return static_cast<std::uint32_t>(h & (Store::kBuckets - 1));
}

}  // namespace

std::uint64_t Store::entry_hash(std::string_view key, Version version, std::string_view value) {
  std::uint64_t seed = XXH3_64bits(key.data(), key.size()) ^
                       static_cast<std::uint64_t>(version.ts_us) * 0x9E3779B97F4A7C15ull ^
                       (static_cast<std::uint64_t>(version.origin) << 32);
  return XXH3_64bits_withSeed(value.data(), value.size(), seed);
}

std::uint32_t Store::bucket_of(std::string_view key) { return bucket_of_hash(key::hash(key)); }

Store::Store(std::size_t shard_count)
    : tree_(std::make_unique<std::atomic<std::uint64_t>[]>(kTreeNodes)) {
  assert(shard_count >= 1 && shard_count <= kBuckets);
  shards_.reserve(shard_count);
  std::size_t buckets_per_shard = (kBuckets + shard_count - 1) / shard_count;
  tables_per_shard_ = std::max<std::size_t>(1, buckets_per_shard / kBucketsPerTable);
  for (std::size_t i = 0; i < shard_count; ++i) {
    shards_.push_back(std::make_unique<Shard>());
    Shard& s = *shards_.back();
    MutexLock lock(s.mu);
    s.tables.reserve(tables_per_shard_);
    for (std::size_t t = 0; t < tables_per_shard_; ++t) {
      s.tables.emplace_back(0, EntryHash{&s.arena}, EntryEq{&s.arena});
    }
  }
  for (std::uint32_t i = 0; i < kTreeNodes; ++i) tree_[i].store(0, std::memory_order_relaxed);
}

Store::~Store() {
  for (auto& s : shards_) {
    MutexLock lock(s->mu);
    for (BucketTable& t : s->tables) {
      for (EntryArena::Ref r : t) destroy_entry(s->arena.at(r));
    }
  }
}

// REQUIRES: the shard lock of `bucket`. Adds delta to the bucket's leaf and every ancestor.
void Store::tree_add(std::uint32_t bucket, std::uint64_t delta) {
  std::uint32_t index = bucket;
  for (std::uint32_t level = kTreeDepth + 1; level-- > 0; index /= kTreeFanout) {
    tree_[level_offset(level) + index].fetch_add(delta, std::memory_order_relaxed);
  }
}

void Store::Shard::replace(Entry& e, std::string_view value, Version v, Store& store) {
  // A key's timestamp never goes back (merge takes only newer versions, or an equal one with a
  // greater value; write and cas take the clock's next() above it, which saturates at
  // INT64_MAX rather than wrap).
  GOSSIP_KV_ASSERT(v.ts_us >= e.ts_us);
  GOSSIP_KV_ASSERT(v.origin <= UINT16_MAX);
  std::uint64_t before = hash_of(e);
  set_value(e, value);
  e.ts_us = v.ts_us;
  e.origin = static_cast<std::uint16_t>(v.origin);
  if (e.read_tracked != 0) {
    reads.erase(&e);
    e.read_tracked = 0;
  }
  std::uint64_t delta = hash_of(e) - before;
  digest += delta;
  store.tree_add(e.bucket, delta);
}

std::uint32_t Store::Shard::stale_reads_against(const Entry& e, std::int64_t newer_ts_us) const {
  if (e.read_tracked == 0) return 0;
  auto it = reads.find(&e);
  if (it == reads.end()) return 0;
  const ReadTrack& t = it->second;
  if (t.first_read_us > newer_ts_us) return t.reads;  // every read since the change is stale
  std::uint32_t stale = 0;
  std::size_t tracked = t.reads < Store::kReadsTracked ? t.reads : Store::kReadsTracked;
  for (std::size_t i = 0; i < tracked; ++i) stale += t.read_us[i] > newer_ts_us ? 1 : 0;
  return stale;  // a lower bound when more reads than tracked straddle the newer write
}

std::pair<Entry*, bool> Store::Shard::find_or_insert(const Where& w, std::size_t value_hint,
                                                     Store& store) {
  BucketTable& table = tables[w.table];
  HashedKey k{w.key, w.hash};
  auto it = table.find(k);
  if (it != table.end()) return {arena.at(*it), false};
  auto [e, ref] = new_entry(arena, w.key, w.bucket, value_hint);
  table.insert(ref);
  store.key_count_.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t h = hash_of(*e);
  digest += h;
  store.tree_add(w.bucket, h);
  return {e, true};
}

Entry* Store::Shard::find(const Where& w) const {
  const BucketTable& table = tables[w.table];
  auto it = table.find(HashedKey{w.key, w.hash});
  return it == table.end() ? nullptr : arena.at(*it);
}

// One bucket lives in one shard (invariant 6); for a power-of-two shard count this is the
// same shard as key::hash(k) % shard_count.
Store::Where Store::where(std::string_view k) const {
  std::uint64_t h = key::hash(k);
  std::uint32_t bucket = bucket_of_hash(h);
  return {k, h, bucket, &shard_of(bucket), table_of(bucket)};
}

Store::Shard& Store::shard_of(std::uint32_t bucket) const {
  return *shards_[bucket % shards_.size()];
}

std::size_t Store::table_of(std::uint32_t bucket) const {
  return (bucket / shards_.size()) % tables_per_shard_;
}

Store::WriteResult Store::write(std::string_view k, std::string_view value, std::int64_t now_us,
                                std::uint32_t origin, HybridClock& clock) {
  Where w = where(k);
  Shard& s = *w.shard;
  MutexLock lock(s.mu);
  Entry* e = s.find_or_insert(w, value.size(), *this).first;
  Version v{clock.next(now_us, e->ts_us), origin};
  s.replace(*e, value, v, *this);
  return {v, e};
}

Store::CasOutcome Store::cas(std::string_view k, std::string_view from, std::string_view to,
                             std::int64_t now_us, std::uint32_t origin, HybridClock& clock,
                             WriteResult* out) {
  Where w = where(k);
  Shard& s = *w.shard;
  MutexLock lock(s.mu);
  Entry* e = s.find(w);
  if (e == nullptr) return CasOutcome::kMissing;
  std::string_view held = value_of(*e);
  if (held != from && !json::values_equal(held, from)) return CasOutcome::kMismatch;
  Version v{clock.next(now_us, e->ts_us), origin};
  s.replace(*e, to, v, *this);
  *out = {v, e};
  return CasOutcome::kOk;
}

Store::MergeResult Store::merge(std::string_view k, std::string_view value, Version v,
                                std::int64_t /*now_us*/) {
  Where w = where(k);
  Shard& s = *w.shard;
  MutexLock lock(s.mu);
  MergeResult r;
  auto [e, inserted] = s.find_or_insert(w, value.size(), *this);
  r.entry = e;
  r.previous = e->version();
  if (!inserted && !wins_over(v, value, *e)) return r;
  r.stale_reads = e->version() < v ? s.stale_reads_against(*e, v.ts_us) : 0;
  s.replace(*e, value, v, *this);
  r.applied = true;
  return r;
}

bool Store::read(std::string_view k, std::int64_t now_us, std::string* value_out,
                 Version* version_out) {
  Where w = where(k);
  Shard& s = *w.shard;
  MutexLock lock(s.mu);
  Entry* e = s.find(w);
  if (e == nullptr) return false;
  value_out->assign(value_of(*e));
  if (version_out != nullptr) *version_out = e->version();
  ReadTrack& t = s.reads[e];
  e->read_tracked = 1;
  if (t.reads == 0) t.first_read_us = now_us;
  t.read_us[t.reads % kReadsTracked] = now_us;
  ++t.reads;
  return true;
}

Version Store::load(const Entry& entry, std::string* value_out) const {
  Shard& s = shard_of(entry.bucket);
  MutexLock lock(s.mu);
  if (value_out != nullptr) value_out->assign(value_of(entry));
  return entry.version();
}

std::string_view Store::key_of(const Entry& entry) { return entry.key(); }

std::optional<Version> Store::index_mark(const Entry& entry) {
  if (entry.mark_origin == kNoMark) return std::nullopt;
  return Version{entry.mark_ts_us, entry.mark_origin};
}

void Store::set_index_mark(const Entry& entry, Version v) {
  GOSSIP_KV_ASSERT(v.origin < kNoMark);
  entry.mark_ts_us = v.ts_us;
  entry.mark_origin = static_cast<std::uint16_t>(v.origin);
}

const Entry* Store::find(std::string_view k) const {
  Where w = where(k);
  MutexLock lock(w.shard->mu);
  return w.shard->find(w);
}

void Store::for_each(
    const std::function<void(const Entry&, std::string_view, Version)>& fn) const {
  for (const auto& s : shards_) {
    MutexLock lock(s->mu);
    for (const BucketTable& t : s->tables) {
      for (EntryArena::Ref r : t) {
        const Entry* e = s->arena.at(r);
        fn(*e, value_of(*e), e->version());
      }
    }
  }
}

std::size_t Store::key_count() const { return key_count_.load(std::memory_order_relaxed); }

std::uint64_t Store::digest() const {
  std::uint64_t sum = 0;
  for (const auto& s : shards_) {
    MutexLock lock(s->mu);
    sum += s->digest;
  }
  return sum;
}

std::uint64_t Store::tree_digest(std::uint32_t level, std::uint32_t index) const {
  assert(level <= kTreeDepth && index < tree_width(level));
  return tree_[level_offset(level) + index].load(std::memory_order_relaxed);
}

void Store::tree_children(std::uint32_t level, std::uint32_t index, std::uint64_t* out) const {
  assert(level < kTreeDepth && index < tree_width(level));
  std::uint32_t first = level_offset(level + 1) + index * kTreeFanout;
  for (std::uint32_t c = 0; c < kTreeFanout; ++c) {
    out[c] = tree_[first + c].load(std::memory_order_relaxed);
  }
}

void Store::bucket_entries(std::uint32_t bucket, BucketEntries* out) const {
  assert(bucket < kBuckets);
  out->entries.clear();
  out->bytes.clear();
  {
    const Shard& s = shard_of(bucket);
    MutexLock lock(s.mu);
    const BucketTable& table = s.tables[table_of(bucket)];
    // Room first, so that the views taken below never move.
    std::size_t bytes = 0;
    for (EntryArena::Ref r : table) {
      const Entry* e = s.arena.at(r);
      if (e->bucket == bucket) bytes += e->key().size() + value_of(*e).size();
    }
    out->bytes.reserve(bytes);
    for (EntryArena::Ref r : table) {
      const Entry* e = s.arena.at(r);
      if (e->bucket != bucket) continue;
      std::size_t at = out->bytes.size();
      std::string_view key = e->key(), value = value_of(*e);
      out->bytes.append(key).append(value);
      const char* p = out->bytes.data() + at;
      out->entries.push_back({std::string_view(p, key.size()), e->version(), hash_of(*e),
                              std::string_view(p + key.size(), value.size())});
    }
    assert(out->bytes.size() == bytes);
  }
  std::sort(out->entries.begin(), out->entries.end(),
            [](const BucketEntry& a, const BucketEntry& b) { return a.key < b.key; });
}

}  // namespace gossip_kv
