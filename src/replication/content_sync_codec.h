// The messages of content anti-entropy (content_sync.h): their shapes, a compact encoder and a
// typed, range-checked decoder (RapidJSON SAX, iterative: no DOM, no recursion).
//
// Wire formats (message bodies; every member but "type" is positional or short):
//   sync_tree     {"type":"sync_tree","l":L,"n":[i,...],"d":"<hex>","m":1}
//       "For each node i at level L (ascending, unique): my digests of its kTreeFanout
//       children", 16 hex digits per child, kTreeFanout children per node, in node order.
//   sync_keys     {"type":"sync_keys","k":[[bucket,[item,...]],[bucket,after,through,[item,...]],...],"m":1}
//       "My entries of `bucket` (with after < key <= through, bytewise, null: unbounded, when
//       the group is one part of a bucket split over messages) are exactly these items",
//       buckets non-decreasing, items strictly ascending by key, each in
//       its group's bucket and range. An item is [key, ts_us, origin, hash] (hash: the
//       entry's Store::entry_hash, a JSON integer) or [key, ts_us, origin, "value"] (the value's
//       JSON text as a JSON string: the entry itself).
//   sync_entries  {"type":"sync_entries","e":[[key, ts_us, origin, "value"],...],"w":[key,...],"m":1}
//       "Take these entries; send me yours of these keys."
//   "m":1 (any type, optional): the sender stopped at a bound and left work undone; the
//   receiver starts a new exchange with it.
// Keys are encoded keys (key.h) as JSON strings. Unknown top-level members (msg_id, ...) are
// skipped whatever they hold; everything else is checked and one bad member rejects the whole
// message.
//
// Thread safety: stateless functions; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/types/span.h>

#include "gossip_kv/version.h"

namespace gossip_kv::sync {

inline constexpr std::string_view kTreeType = "sync_tree";
inline constexpr std::string_view kKeysType = "sync_keys";
inline constexpr std::string_view kEntriesType = "sync_entries";

// Nodes in one sync_tree: 1,024 nodes are 262 KiB of hex digests, half the message budget.
inline constexpr std::size_t kTreeNodesPerMessageMax = 1024;
// Items (sync_keys items, entries and wants together) in one message: bounds the merges and
// look-ups one message can ask for. A 1 MiB line holds at most ~90,000 of the smallest.
inline constexpr std::size_t kItemsPerMessageMax = 1u << 15;
// Groups in one sync_keys: bounds the bucket enumerations one message can ask for.
inline constexpr std::size_t kGroupsPerMessageMax = 1u << 13;

enum class Kind : std::uint8_t { kTree, kKeys, kEntries };

// One entry a replica holds: with its value, or with its entry_hash only.
struct Item {
  std::string key;
  Version version;
  bool has_value = false;
  std::uint64_t hash = 0;  // when !has_value
  std::string value;       // when has_value: the value's JSON text
};

// "My entries of `bucket` with after < key <= through are exactly `items`."
struct Group {
  std::uint32_t bucket = 0;
  std::optional<std::string> after;    // nullopt: from the bucket's first key
  std::optional<std::string> through;  // nullopt: to its last
  absl::Span<const Item> items;        // into Message::group_items
};

struct Message {
  // Not copyable: groups' spans point into group_items (a move keeps them: the vector's
  // buffer moves with it).
  Message() = default;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  Message(Message&&) = default;
  Message& operator=(Message&&) = default;
  ~Message() = default;

  Kind kind = Kind::kTree;
  bool more = false;
  // sync_tree
  std::uint32_t level = 0;
  std::vector<std::uint32_t> nodes;
  std::vector<std::uint64_t> child_digests;  // kTreeFanout per node
  // sync_keys
  std::vector<Group> groups;
  // sync_entries
  std::vector<Item> entries;  // every one has_value
  std::vector<std::string> wants;

  std::vector<Item> group_items;  // every group's items, in order (Group::items)

  // Items of the previous decode into this object, kept with their strings' room: decoding
  // into one Message again and again stops allocating per item once it has held a message's
  // worth. At most kSpareItemsMax items of at most kSpareItemBytesMax are kept, and vectors
  // are kept up to that many elements: under 1 MiB.
  std::vector<Item> spare_items;
  static constexpr std::size_t kSpareItemsMax = 1024;
  static constexpr std::size_t kSpareItemBytesMax = 256;
  // Empties the message, keeping its items as spares and its vectors' room up to
  // kSpareItemsMax elements.
  void recycle();
};

struct DecodeLimits {
  std::uint32_t origin_max = 0;  // origins 0..origin_max are accepted (0: kv_merge)
  std::int64_t ts_us_max = 0;    // timestamps 1..ts_us_max are accepted
};

// Decodes a whole body into *out (recycled first: reuse one Message to save allocations).
// Returns an empty string on success, otherwise why the body was rejected (then *out holds
// nothing usable). Checks: JSON syntax, every member's type and shape, key encoding and size,
// value size and validity (one JSON value, no line break), version ranges, orders, counts (the
// constants above), tree levels and node indices, hex digests of the right length.
std::string decode(std::string_view body, const DecodeLimits& limits, Message* out);

// True when a raw value text may be stored and sent: at most kValueBytesMax bytes, exactly one
// JSON value, no raw line break (a value is written verbatim into output lines).
bool valid_value(std::string_view value);
// True when an encoded key is well formed: a tag, then a string's bytes or an integer's
// digits, at most kKeyBytesMax bytes after the tag.
bool valid_key(std::string_view key);

// ---- encoding: appends to a message under construction --------------------------------------

// Appends s as a JSON string literal.
void append_string(std::string_view s, std::string& out);
// Appends [key, ts, origin, "value"] (with_value) or [key, ts, origin, hash].
void append_item(std::string_view key, Version v, bool with_value, std::uint64_t hash,
                 std::string_view value, std::string& out);
// Appends 16 lowercase hex digits.
void append_hex64(std::uint64_t x, std::string& out);

}  // namespace gossip_kv::sync
