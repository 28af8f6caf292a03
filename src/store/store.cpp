#include "gossip_kv/store.h"

#include <absl/container/flat_hash_map.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cassert>

#include "codec/json_util.h"
#include "common/assert.h"
#include "gossip_kv/key.h"
#include "gossip_kv/mutex.h"

namespace gossip_kv {

struct Entry {
  std::string key;  // immutable after insertion
  std::string value;
  Version version;
  // The latest reads of the current version (a ring), how many there were, and the first one:
  // enough to tell, when a newer version arrives, how many of them were served after it was
  // written.
  std::array<std::int64_t, Store::kReadsTracked> read_us{};
  std::uint32_t reads = 0;
  std::int64_t first_read_us = 0;
  Entry* next_in_bucket = nullptr;  // the bucket's entries, newest insertion first; immutable
};

// Entry::value, version and the read bookkeeping are guarded by their shard's mu too (not
// expressible as an attribute: the entry does not know its shard).
struct alignas(64) Store::Shard {
  mutable Mutex mu;
  // Views into Entry::key.
  absl::flat_hash_map<std::string_view, std::unique_ptr<Entry>> map GOSSIP_KV_GUARDED_BY(mu);
  // The sum of entry_hash() over the shard's entries.
  std::uint64_t digest GOSSIP_KV_GUARDED_BY(mu) = 0;
  // The head of each of the shard's non-empty buckets' entry lists (Entry::next_in_bucket).
  absl::flat_hash_map<std::uint32_t, Entry*> bucket_heads GOSSIP_KV_GUARDED_BY(mu);

  // A new entry starts empty at version {0, 0}, counted in the digests so that replace() can
  // take it out again. Returns the entry and whether it was inserted.
  std::pair<Entry*, bool> find_or_insert(std::string_view k, Store& store) GOSSIP_KV_REQUIRES(mu);
  // Replaces e's value and version, keeping the shard digest and the store's tree current.
  void replace(Entry& e, std::string_view value, Version v, Store& store) GOSSIP_KV_REQUIRES(mu);
};

namespace {

std::uint64_t hash_of(const Entry& e) { return Store::entry_hash(e.key, e.version, e.value); }

// Where level `level` starts in Store::tree_.
constexpr std::uint32_t level_offset(std::uint32_t level) {
  return level == 0 ? 0 : level_offset(level - 1) + Store::tree_width(level - 1);
}
constexpr std::uint32_t kTreeNodes = level_offset(Store::kTreeDepth + 1);
static_assert(Store::tree_width(Store::kTreeDepth) == Store::kBuckets);

// The tie-break: a version wins by being newer, or equal with a bytewise greater value.
bool wins_over(Version v, std::string_view value, const Entry& held) {
  if (held.version != v) return held.version < v;
  return std::string_view(held.value) < value;
}

// Counts the tracked reads of the replaced version that were served after `newer` was written.
std::uint32_t stale_reads_against(const Entry& e, std::int64_t newer_ts_us) {
  if (e.reads == 0) return 0;
  if (e.first_read_us > newer_ts_us) return e.reads;  // every read since the change is stale
  std::uint32_t stale = 0;
  std::size_t tracked = e.reads < Store::kReadsTracked ? e.reads : Store::kReadsTracked;
  for (std::size_t i = 0; i < tracked; ++i) stale += e.read_us[i] > newer_ts_us ? 1 : 0;
  return stale;  // a lower bound when more reads than tracked straddle the newer write
}

}  // namespace

std::uint64_t Store::entry_hash(std::string_view key, Version version, std::string_view value) {
  std::uint64_t seed = XXH3_64bits(key.data(), key.size()) ^
                       static_cast<std::uint64_t>(version.ts_us) * 0x9E3779B97F4A7C15ull ^
                       (static_cast<std::uint64_t>(version.origin) << 32);
  return XXH3_64bits_withSeed(value.data(), value.size(), seed);
}

std::uint32_t Store::bucket_of(std::string_view key) {
  return static_cast<std::uint32_t>(key::hash(key) & (kBuckets - 1));
}

Store::Store(std::size_t shard_count)
    : tree_(std::make_unique<std::atomic<std::uint64_t>[]>(kTreeNodes)) {
  assert(shard_count >= 1 && shard_count <= kBuckets);
  shards_.reserve(shard_count);
  for (std::size_t i = 0; i < shard_count; ++i) shards_.push_back(std::make_unique<Shard>());
  for (std::uint32_t i = 0; i < kTreeNodes; ++i) tree_[i].store(0, std::memory_order_relaxed);
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
  GOSSIP_KV_ASSERT(v.ts_us >= e.version.ts_us);
  std::uint64_t before = hash_of(e);
  e.value.assign(value);
  e.version = v;
  e.reads = 0;
  e.first_read_us = 0;
  std::uint64_t delta = hash_of(e) - before;
  digest += delta;
  store.tree_add(bucket_of(e.key), delta);
}

Store::~Store() = default;

std::pair<Entry*, bool> Store::Shard::find_or_insert(std::string_view k, Store& store) {
  auto it = map.find(k);
  if (it != map.end()) return {it->second.get(), false};
  auto owned = std::make_unique<Entry>();
  owned->key.assign(k);
  Entry* e = owned.get();
  map.emplace(std::string_view(e->key), std::move(owned));
  store.key_count_.fetch_add(1, std::memory_order_relaxed);
  std::uint32_t bucket = bucket_of(e->key);
  Entry*& head = bucket_heads[bucket];
  e->next_in_bucket = head;
  head = e;
  digest += hash_of(*e);
  store.tree_add(bucket, hash_of(*e));
  return {e, true};
}

// One bucket lives in one shard (invariant 6); for a power-of-two shard count this is the
// same shard as key::hash(k) % shard_count.
Store::Shard& Store::shard_for(std::string_view k) const {
  return *shards_[bucket_of(k) % shards_.size()];
}

Store::WriteResult Store::write(std::string_view k, std::string_view value, std::int64_t now_us,
                                std::uint32_t origin, HybridClock& clock) {
  Shard& s = shard_for(k);
  MutexLock lock(s.mu);
  Entry* e = s.find_or_insert(k, *this).first;
  Version v{clock.next(now_us, e->version.ts_us), origin};
  s.replace(*e, value, v, *this);
  return {v, e};
}

Store::CasOutcome Store::cas(std::string_view k, std::string_view from, std::string_view to,
                             std::int64_t now_us, std::uint32_t origin, HybridClock& clock,
                             WriteResult* out) {
  Shard& s = shard_for(k);
  MutexLock lock(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end()) return CasOutcome::kMissing;
  Entry& e = *it->second;
  if (e.value != from && !json::values_equal(e.value, from)) return CasOutcome::kMismatch;
  Version v{clock.next(now_us, e.version.ts_us), origin};
  s.replace(e, to, v, *this);
  *out = {v, &e};
  return CasOutcome::kOk;
}

Store::MergeResult Store::merge(std::string_view k, std::string_view value, Version v,
                                std::int64_t /*now_us*/) {
  Shard& s = shard_for(k);
  MutexLock lock(s.mu);
  MergeResult r;
  auto [e, inserted] = s.find_or_insert(k, *this);
  if (!inserted && !wins_over(v, value, *e)) {
    r.entry = e;
    r.previous = e->version;
    return r;
  }
  r.previous = e->version;
  r.stale_reads = e->version < v ? stale_reads_against(*e, v.ts_us) : 0;
  s.replace(*e, value, v, *this);
  r.applied = true;
  r.entry = e;
  return r;
}

bool Store::read(std::string_view k, std::int64_t now_us, std::string* value_out,
                 Version* version_out) {
  Shard& s = shard_for(k);
  MutexLock lock(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end()) return false;
  Entry& e = *it->second;
  value_out->assign(e.value);
  if (version_out != nullptr) *version_out = e.version;
  if (e.reads == 0) e.first_read_us = now_us;
  e.read_us[e.reads % kReadsTracked] = now_us;
  ++e.reads;
  return true;
}

Version Store::load(const Entry& entry, std::string* value_out) const {
  Shard& s = shard_for(entry.key);
  MutexLock lock(s.mu);
  if (value_out != nullptr) value_out->assign(entry.value);
  return entry.version;
}

std::string_view Store::key_of(const Entry& entry) { return entry.key; }

const Entry* Store::find(std::string_view k) const {
  Shard& s = shard_for(k);
  MutexLock lock(s.mu);
  auto it = s.map.find(k);
  return it == s.map.end() ? nullptr : it->second.get();
}

void Store::for_each(
    const std::function<void(const Entry&, std::string_view, Version)>& fn) const {
  for (const auto& s : shards_) {
    MutexLock lock(s->mu);
    for (const auto& [k, e] : s->map) fn(*e, e->value, e->version);
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

}  // namespace gossip_kv

namespace gossip_kv {

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

void Store::bucket_entries(std::uint32_t bucket, std::vector<BucketEntry>* out) const {
  assert(bucket < kBuckets);
  out->clear();
  {
    const Shard& s = *shards_[bucket % shards_.size()];
    MutexLock lock(s.mu);
    auto it = s.bucket_heads.find(bucket);
    if (it == s.bucket_heads.end()) return;
    for (const Entry* e = it->second; e != nullptr; e = e->next_in_bucket) {
      out->push_back({e->key, e->version, hash_of(*e), e->value});
    }
  }
  std::sort(out->begin(), out->end(),
            [](const BucketEntry& a, const BucketEntry& b) { return a.key < b.key; });
}

}  // namespace gossip_kv
