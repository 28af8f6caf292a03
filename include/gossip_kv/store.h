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
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
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

  // REQUIRES: shard_count >= 1.
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
  // Takes (value, version) when version is newer than what the key holds; otherwise ignores it.
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

  // Calls fn for every entry, one shard at a time under that shard's lock: fn must not call
  // back into the Store.
  void for_each(const std::function<void(const Entry&, std::string_view value, Version)>& fn) const;

  [[nodiscard]] std::size_t key_count() const;
  // Order-independent hash of every (key, version, value) held: equal on replicas that hold the
  // same state.
  [[nodiscard]] std::uint64_t digest() const;

 private:
  struct Shard;
  Shard& shard_for(std::string_view key) const;

  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<std::size_t> key_count_{0};
};

}  // namespace gossip_kv
