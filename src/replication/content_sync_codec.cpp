#include "content_sync_codec.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <array>
#include <charconv>

#include "gossip_kv/key.h"
#include "gossip_kv/limits.h"
#include "gossip_kv/store.h"
#include "codec/json_util.h"
#include "replication/peer_wire.h"

namespace gossip_kv::sync {
namespace {

constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag;

// The top-level members the decoder knows.
enum class Member : std::uint8_t { kNone, kType, kLevel, kNodes, kDigests, kKeys, kEntries,
                                   kWants, kMore, kUnknown };

Member member_of(std::string_view name) {
  if (name == "type") return Member::kType;
  if (name == "l") return Member::kLevel;
  if (name == "n") return Member::kNodes;
  if (name == "d") return Member::kDigests;
  if (name == "k") return Member::kKeys;
  if (name == "e") return Member::kEntries;
  if (name == "w") return Member::kWants;
  if (name == "m") return Member::kMore;
  return Member::kUnknown;
}

std::vector<std::size_t>& thread_group_first() {
  thread_local std::vector<std::size_t> first;
  first.clear();
  return first;
}

// A SAX handler that accepts exactly the shapes in content_sync_codec.h. Depth 1 is the top
// object; an entry of "e" is depth 3; a group of "k" is depth 3 and its items depth 5.
// Returning false stops the parse; error_ says why.
class Handler {
 public:
  Handler(const DecodeLimits& limits, Message* out) : limits_(limits), out_(out) {}

  std::string error_;
  std::string type_;
  bool seen_[static_cast<int>(Member::kUnknown) + 1] = {};
  std::string digests_hex_;

  bool Null() {
    if (skipping()) return true;
    if (member_ == Member::kKeys && depth_ == 3 && (pos_ == 1 || pos_ == 2)) {
      ++pos_;
      return true;
    }
    return fail("unexpected null");
  }
  bool Bool(bool b) {
    if (skipping()) return true;
    if (depth_ == 1 && member_ == Member::kMore) {
      out_->more = b;
      return true;
    }
    return fail("unexpected boolean");
  }
  bool Int(int i) { return number(i < 0, magnitude(i)); }
  bool Int64(std::int64_t i) { return number(i < 0, magnitude(i)); }
  bool Uint(unsigned u) { return number(false, u); }
  bool Uint64(std::uint64_t u) { return number(false, u); }
  bool Double(double) { return skipping() || fail("unexpected non-integer number"); }
  bool RawNumber(const char*, rapidjson::SizeType, bool) { return fail("raw number"); }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    return string(std::string_view(s, n));
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (depth_ != 1) return skipping() || fail("object inside a message");
    member_ = member_of(std::string_view(s, n));
    if (member_ != Member::kUnknown) {
      bool& seen = seen_[static_cast<int>(member_)];
      if (seen) return fail("duplicate member");
      seen = true;
    }
    return true;
  }
  bool StartObject() {
    if (depth_ == 0) {
      depth_ = 1;
      return true;
    }
    if (skipping()) {
      if (skip_depth_ == 0) skip_depth_ = depth_ + 1;
      ++depth_;
      return true;
    }
    return fail("unexpected object");
  }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool StartArray() {
    if (skipping()) {
      if (skip_depth_ == 0) skip_depth_ = depth_ + 1;
      ++depth_;
      return true;
    }
    bool ok = false;
    switch (member_) {
      case Member::kNodes:
      case Member::kWants:
        ok = depth_ == 1;
        break;
      case Member::kEntries:
        ok = depth_ == 1 || depth_ == 2;
        if (depth_ == 2) ok = begin_item();
        break;
      case Member::kKeys:
        if (depth_ == 1) ok = true;
        if (depth_ == 2) ok = begin_group();
        if (depth_ == 3 && (pos_ == 1 || pos_ == 3)) {  // [bucket,[..]] or [bucket,a,t,[..]]
          ok = true;
          pos_ = 3;
        }
        if (depth_ == 4) ok = begin_item();
        break;
      default:
        break;
    }
    if (!ok) return error_.empty() ? fail("unexpected array") : false;
    ++depth_;
    item_pos_ = 0;
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    if (skipping()) return close();
    if (member_ == Member::kEntries && depth_ == 3 && !end_item(out_->entries)) return false;
    if (member_ == Member::kKeys) {
      if (depth_ == 5 && !end_item(out_->group_items)) return false;
      if (depth_ == 4) pos_ = 4;
      if (depth_ == 3 && pos_ != 4) return fail("short group");
    }
    --depth_;
    return true;
  }

 private:
  static std::uint64_t magnitude(std::int64_t i) {
    return i < 0 ? 0 - static_cast<std::uint64_t>(i) : static_cast<std::uint64_t>(i);
  }
  // Inside an unknown member's value (or at an unknown top-level scalar): ignored.
  bool skipping() const {
    return skip_depth_ != 0 || (depth_ == 1 && member_ == Member::kUnknown);
  }
  bool close() {
    if (skipping() && depth_ == skip_depth_) skip_depth_ = 0;
    --depth_;
    if (depth_ == 1) member_ = Member::kNone;
    return true;
  }
  bool fail(const char* why) {
    if (error_.empty()) error_ = why;
    return false;
  }
  bool count_item() {
    return ++items_ <= kItemsPerMessageMax || fail("too many items");
  }
  bool begin_item() {
    if (!count_item()) return false;
    std::vector<Item>& spare = out_->spare_items;
    if (spare.empty()) {
      item_ = Item{};
    } else {  // its strings keep their room (assigned below)
      item_ = std::move(spare.back());
      spare.pop_back();
      item_.version = {};
      item_.has_value = false;
      item_.hash = 0;
      item_.value.clear();
    }
    return true;
  }
  bool begin_group() {
    if (out_->groups.size() >= kGroupsPerMessageMax) return fail("too many groups");
    out_->groups.emplace_back();
    group_first_.push_back(out_->group_items.size());
    pos_ = 0;
    return true;
  }
  bool end_item(std::vector<Item>& to) {
    if (item_pos_ != 4) return fail("an item has four members");
    if (member_ == Member::kEntries && !item_.has_value) return fail("an entry carries a value");
    to.push_back(std::move(item_));
    return true;
  }

  bool number(bool negative, std::uint64_t mag) {
    if (skipping()) return true;
    if (depth_ == 1) {
      if (negative) return fail("negative number");
      if (member_ == Member::kLevel) {
        if (mag >= Store::kTreeDepth) return fail("tree level out of range");
        out_->level = static_cast<std::uint32_t>(mag);
        return true;
      }
      if (member_ == Member::kMore) {
        out_->more = mag != 0;
        return true;
      }
      return fail("unexpected number");
    }
    if (member_ == Member::kNodes && depth_ == 2) {
      if (negative || mag >= Store::kBuckets) return fail("tree node out of range");
      if (out_->nodes.size() >= kTreeNodesPerMessageMax) return fail("too many tree nodes");
      out_->nodes.push_back(static_cast<std::uint32_t>(mag));
      return true;
    }
    if (member_ == Member::kKeys && depth_ == 3 && pos_ == 0) {
      if (negative || mag >= Store::kBuckets) return fail("bucket out of range");
      out_->groups.back().bucket = static_cast<std::uint32_t>(mag);
      pos_ = 1;
      return true;
    }
    bool in_item = (member_ == Member::kEntries && depth_ == 3) ||
                   (member_ == Member::kKeys && depth_ == 5);
    if (!in_item) return fail("unexpected number");
    switch (item_pos_++) {
      case 1:
        if (negative || mag == 0 ||
            mag > static_cast<std::uint64_t>(std::max<std::int64_t>(limits_.ts_us_max, 0))) {
          return fail("timestamp out of range");
        }
        item_.version.ts_us = static_cast<std::int64_t>(mag);
        return true;
      case 2:
        if (negative || mag > limits_.origin_max) return fail("origin out of range");
        item_.version.origin = static_cast<std::uint32_t>(mag);
        return true;
      case 3:
        if (negative) return fail("negative hash");
        item_.hash = mag;
        return true;
      default:
        return fail("unexpected number in an item");
    }
  }

  bool string(std::string_view s) {
    if (skipping()) return true;
    if (depth_ == 1) {
      if (member_ == Member::kType) {
        type_.assign(s.substr(0, 64));
        return true;
      }
      if (member_ == Member::kDigests) {
        digests_hex_.assign(s);
        return true;
      }
      return fail("unexpected string");
    }
    if (member_ == Member::kWants && depth_ == 2) {
      if (!count_item()) return false;
      if (!valid_key(s)) return fail("bad key");
      out_->wants.emplace_back(s);
      return true;
    }
    if (member_ == Member::kKeys && depth_ == 3 && (pos_ == 1 || pos_ == 2)) {
      if (!valid_key(s)) return fail("bad range key");
      (pos_ == 1 ? out_->groups.back().after : out_->groups.back().through).emplace(s);
      ++pos_;
      return true;
    }
    bool in_item = (member_ == Member::kEntries && depth_ == 3) ||
                   (member_ == Member::kKeys && depth_ == 5);
    if (!in_item) return fail("unexpected string");
    switch (item_pos_++) {
      case 0:
        if (!valid_key(s)) return fail("bad key");
        item_.key.assign(s);
        return true;
      case 3:
        if (!valid_value(s)) return fail("bad value");
        item_.has_value = true;
        item_.value.assign(s);
        return true;
      default:
        return fail("unexpected string in an item");
    }
  }

  const DecodeLimits& limits_;
  Message* out_;

 public:
  // Per group, where its items start in group_items (spans are taken once parsing ends, when
  // the vector no longer moves): the thread's, kept between decodes.
  std::vector<std::size_t>& group_first_ = thread_group_first();

 private:
  int depth_ = 0;
  int skip_depth_ = 0;  // != 0: inside an unknown member's value, which opened this depth
  Member member_ = Member::kNone;
  int pos_ = 0;         // position inside the current group
  int item_pos_ = 0;    // position inside the current item
  std::size_t items_ = 0;
  Item item_;
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool parse_digests(std::string_view hex, std::size_t count, std::vector<std::uint64_t>* out) {
  if (hex.size() != count * 16) return false;
  out->resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::uint64_t x = 0;
    for (std::size_t j = 0; j < 16; ++j) {
      int d = hex_digit(hex[i * 16 + j]);
      if (d < 0) return false;
      x = x << 4 | static_cast<std::uint64_t>(d);
    }
    (*out)[i] = x;
  }
  return true;
}

// Orders and ranges that the SAX pass cannot see locally.
std::string check_shape(Kind kind, const Handler& h, Message* m) {
  auto has = [&](Member x) { return h.seen_[static_cast<int>(x)]; };
  bool tree_members = has(Member::kLevel) || has(Member::kNodes) || has(Member::kDigests);
  switch (kind) {
    case Kind::kTree: {
      if (!has(Member::kLevel) || !has(Member::kNodes) || !has(Member::kDigests)) {
        return "sync_tree needs l, n and d";
      }
      if (has(Member::kKeys) || has(Member::kEntries) || has(Member::kWants)) {
        return "member of another type";
      }
      for (std::size_t i = 0; i < m->nodes.size(); ++i) {
        if (m->nodes[i] >= Store::tree_width(m->level)) return "tree node out of range";
        if (i > 0 && m->nodes[i] <= m->nodes[i - 1]) return "tree nodes not ascending";
      }
      if (!parse_digests(h.digests_hex_, m->nodes.size() * Store::kTreeFanout,
                         &m->child_digests)) {
        return "bad digests";
      }
      return "";
    }
    case Kind::kKeys: {
      if (!has(Member::kKeys) || tree_members || has(Member::kEntries) || has(Member::kWants)) {
        return "sync_keys needs k only";
      }
      for (std::size_t g = 0; g < m->groups.size(); ++g) {
        const Group& group = m->groups[g];
        if (g > 0 && group.bucket < m->groups[g - 1].bucket) return "buckets not ascending";
        if (group.after && group.through && !(*group.after < *group.through)) return "empty range";
        for (std::size_t i = 0; i < group.items.size(); ++i) {
          const std::string& k = group.items[i].key;
          if (Store::bucket_of(k) != group.bucket) return "key outside its bucket";
          if ((group.after && !(*group.after < k)) || (group.through && *group.through < k)) {
            return "key outside its range";
          }
          if (i > 0 && !(group.items[i - 1].key < k)) return "keys not ascending";
        }
      }
      return "";
    }
    case Kind::kEntries:
      if (tree_members || has(Member::kKeys)) return "member of another type";
      return "";
  }
  return "unknown kind";
}

}  // namespace

bool valid_key(std::string_view k) {
  if (k.size() < 2 || k.size() > limits::kKeyBytesMax + 1) return false;
  // A string key decoded from escapes may be invalid UTF-8 (a lone surrogate): refused, as the
  // gossip decoder refuses it.
  if (k[0] == key::kStringTag) return json::valid_utf8(key::body(k));
  if (k[0] != key::kIntTag) return false;
  std::string_view digits = k.substr(k[1] == '-' ? 2 : 1);
  if (digits.empty() || digits.size() > 19 || (digits.size() > 1 && digits[0] == '0')) return false;
  return std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The gossip decoder's rule for a value (peer_wire.h): one JSON value, no control byte, its
// decoded strings strict UTF-8, nested at most as deep as the node stores.
bool valid_value(std::string_view v) {
  thread_local ValueTextChecker checker;
  return checker.check(v) == nullptr;
}

void Message::recycle() {
  auto keep = [this](std::vector<Item>& items) {
    for (Item& item : items) {
      if (spare_items.size() >= kSpareItemsMax) break;
      if (item.key.capacity() + item.value.capacity() > kSpareItemBytesMax) continue;
      spare_items.push_back(std::move(item));
    }
    items.clear();
    if (items.capacity() > kSpareItemsMax) std::vector<Item>().swap(items);
  };
  keep(entries);
  keep(group_items);
  groups.clear();
  if (groups.capacity() > kSpareItemsMax) std::vector<Group>().swap(groups);
  kind = Kind::kTree;
  more = false;
  level = 0;
  nodes.clear();
  child_digests.clear();
  wants.clear();
  if (wants.capacity() > kSpareItemsMax) std::vector<std::string>().swap(wants);
}

std::string decode(std::string_view body, const DecodeLimits& limits, Message* out) {
  out->recycle();
  Handler h(limits, out);
  // One reader per thread for bodies up to kReaderKeptBytes: its stack, where strings are
  // copied, keeps its room, and no string of such a body can grow it further. A larger body
  // gets a reader of its own, freed after the parse.
  constexpr std::size_t kReaderKeptBytes = 64 * 1024;
  thread_local rapidjson::Reader kept_reader;
  rapidjson::Reader own_reader;
  rapidjson::Reader& reader = body.size() <= kReaderKeptBytes ? kept_reader : own_reader;
  rapidjson::MemoryStream ms(body.data(), body.size());
  rapidjson::ParseResult r = reader.Parse<kParseFlags>(ms, h);
  if (r.IsError()) {
    if (!h.error_.empty()) return h.error_;
    return std::string("JSON: ") + rapidjson::GetParseError_En(r.Code());
  }
  for (std::size_t g = 0; g < out->groups.size(); ++g) {
    std::size_t first = h.group_first_[g];
    std::size_t end = g + 1 < out->groups.size() ? h.group_first_[g + 1] : out->group_items.size();
    out->groups[g].items = absl::Span<const Item>(out->group_items.data() + first, end - first);
  }
  if (h.type_ == kTreeType) {
    out->kind = Kind::kTree;
  } else if (h.type_ == kKeysType) {
    out->kind = Kind::kKeys;
  } else if (h.type_ == kEntriesType) {
    out->kind = Kind::kEntries;
  } else {
    return "not a sync message type";
  }
  return check_shape(out->kind, h, out);
}

void append_string(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\t') {  // the one control byte a valid value may hold (as whitespace)
      out.append("\\t");
    } else if (u < 0x20) {
      out.append("\\u00");
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

void append_hex64(std::uint64_t x, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(x >> shift) & 15]);
}

void append_item(std::string_view key, Version v, bool with_value, std::uint64_t hash,
                 std::string_view value, std::string& out) {
  // Numbers through a buffer on the stack: std::to_string allocated for every timestamp and
  // hash (longer than the short-string buffer).
  auto append_number = [&out](auto x) {
    std::array<char, 24> digits;
    auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), x);
    out.append(digits.data(), end);
  };
  out.push_back('[');
  append_string(key, out);
  out.push_back(',');
  append_number(v.ts_us);
  out.push_back(',');
  append_number(v.origin);
  out.push_back(',');
  if (with_value) {
    append_string(value, out);
  } else {
    append_number(hash);
  }
  out.push_back(']');
}

}  // namespace gossip_kv::sync
