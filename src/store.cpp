#include "gossip_kv/store.h"

#include <absl/container/flat_hash_map.h>
#include <xxhash.h>

#include <array>
#include <cassert>

#include "common/assert.h"
#include "gossip_kv/json_util.h"
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
};

// Entry::value, version and the read bookkeeping are guarded by their shard's mu too (not
// expressible as an attribute: the entry does not know its shard).
struct alignas(64) Store::Shard {
  mutable Mutex mu;
  // Views into Entry::key.
  absl::flat_hash_map<std::string_view, std::unique_ptr<Entry>> map GOSSIP_KV_GUARDED_BY(mu);
  // The sum of entry_hash() over the shard's entries.
  std::uint64_t digest GOSSIP_KV_GUARDED_BY(mu) = 0;

  // A new entry starts empty at version {0, 0}, counted in the digest so that replace() can
  // take it out again. Returns the entry and whether it was inserted.
  std::pair<Entry*, bool> find_or_insert(std::string_view k, std::atomic<std::size_t>& keys)
      GOSSIP_KV_REQUIRES(mu);
};

namespace {

std::uint64_t entry_hash(const Entry& e) {
  std::uint64_t seed = XXH3_64bits(e.key.data(), e.key.size()) ^
                       static_cast<std::uint64_t>(e.version.ts_us) * 0x9E3779B97F4A7C15ull ^
                       (static_cast<std::uint64_t>(e.version.origin) << 32);
  return XXH3_64bits_withSeed(e.value.data(), e.value.size(), seed);
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

// Replaces e's value and version, keeping the shard digest current.
void replace(std::uint64_t& shard_digest, Entry& e, std::string_view value,
             Version v) {
  // A key's timestamp never goes back (merge takes only newer versions; write and cas take
  // the clock's next() above it, which saturates at INT64_MAX rather than wrap).
  GOSSIP_KV_ASSERT(v.ts_us >= e.version.ts_us);
  shard_digest -= entry_hash(e);
  e.value.assign(value);
  e.version = v;
  e.reads = 0;
  e.first_read_us = 0;
  shard_digest += entry_hash(e);
}

}  // namespace

Store::Store(std::size_t shard_count) {
  assert(shard_count >= 1);
  shards_.reserve(shard_count);
  for (std::size_t i = 0; i < shard_count; ++i) shards_.push_back(std::make_unique<Shard>());
}

Store::~Store() = default;

std::pair<Entry*, bool> Store::Shard::find_or_insert(std::string_view k,
                                                     std::atomic<std::size_t>& keys) {
  auto it = map.find(k);
  if (it != map.end()) return {it->second.get(), false};
  auto owned = std::make_unique<Entry>();
  owned->key.assign(k);
  Entry* e = owned.get();
  map.emplace(std::string_view(e->key), std::move(owned));
  keys.fetch_add(1, std::memory_order_relaxed);
  digest += entry_hash(*e);
  return {e, true};
}

Store::Shard& Store::shard_for(std::string_view k) const {
  return *shards_[key::hash(k) % shards_.size()];
}

Store::WriteResult Store::write(std::string_view k, std::string_view value, std::int64_t now_us,
                                std::uint32_t origin, HybridClock& clock) {
  Shard& s = shard_for(k);
  MutexLock lock(s.mu);
  Entry* e = s.find_or_insert(k, key_count_).first;
  Version v{clock.next(now_us, e->version.ts_us), origin};
  replace(s.digest, *e, value, v);
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
  replace(s.digest, e, to, v);
  *out = {v, &e};
  return CasOutcome::kOk;
}

Store::MergeResult Store::merge(std::string_view k, std::string_view value, Version v,
                                std::int64_t /*now_us*/) {
  Shard& s = shard_for(k);
  MutexLock lock(s.mu);
  MergeResult r;
  auto [e, inserted] = s.find_or_insert(k, key_count_);
  if (!inserted && !(e->version < v)) {
    r.entry = e;
    r.previous = e->version;
    return r;
  }
  r.previous = e->version;
  r.stale_reads = stale_reads_against(*e, v.ts_us);
  replace(s.digest, *e, value, v);
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
