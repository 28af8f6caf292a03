// The two nested shapes a request can carry: init's node_ids and kv_merge's entries. Both are
// rare next to single-key requests, so they get their own SAX pass over their own span.
#include <charconv>
#include <cmath>
#include <string>


#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include "gossip_kv/codec.h"
#include "gossip_kv/key.h"
#include "gossip_kv/limits.h"
#include "codec/json_util.h"
#include "common/assert.h"

namespace gossip_kv {
namespace {

using rapidjson::SizeType;

// Iterative (no stack frame per nesting level) and strict about raw UTF-8, as the line parser.
// No kParseFullPrecisionFlag: the one number decoded here (ts) is decoded from its text.
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag |
                                 rapidjson::kParseValidateEncodingFlag;

class NodeIdsHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, NodeIdsHandler> {
 public:
  NodeIdsHandler(std::vector<std::string>* out, bool check_utf8)
      : out_(out), check_utf8_(check_utf8) {}
  bool Default() { return false; }  // anything but strings in one flat array
  bool StartArray() { return depth_++ == 0; }
  bool EndArray(SizeType) { return --depth_ == 0; }
  bool String(const char* s, SizeType n, bool) {
    if (n == 0 || n > limits::kIdBytesMax || out_->size() >= limits::kNodeIdsMax) return false;
    if (check_utf8_ && !json::valid_utf8(std::string_view(s, n))) return false;
    out_->emplace_back(s, n);
    return true;
  }

 private:
  std::vector<std::string>* out_;
  bool check_utf8_;
  int depth_ = 0;
};

// entries: {"<key>": {"value": <any>, "ts": <seconds>, "node": "<id>", "key": <int|string>}}
// The member name is the (string) key; an entry's own "key" member overrides it, which is how
// an integer key is merged. Each member at most once per entry (the duplicate-member rule);
// a key may have several entries (several versions: each is merged on its own, and last-writer-
// wins makes the outcome independent of their order). Every ts at most ts_max_us; values
// nested at most limits::kValueDepthMax levels.
class EntriesHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, EntriesHandler> {
 public:
  EntriesHandler(std::string_view text, rapidjson::MemoryStream& is, Request* req,
                 std::string* problem, std::int64_t ts_max_us)
      : text_(text), is_(is), req_(req), problem_(problem), ts_max_us_(ts_max_us),
        check_utf8_(json::may_decode_invalid_utf8(text)) {}

  bool Null() { return scalar(); }
  bool Bool(bool) { return scalar(); }
  bool Int(int v) { return number(v, true, static_cast<double>(v)); }
  bool Uint(unsigned v) { return number(v, true, static_cast<double>(v)); }
  bool Int64(std::int64_t v) { return number(v, true, static_cast<double>(v)); }
  bool Uint64(std::uint64_t v) {
    return number(static_cast<std::int64_t>(v), v <= static_cast<std::uint64_t>(INT64_MAX),
                  static_cast<double>(v));
  }
  bool Double(double d) { return number(0, false, d); }
  bool String(const char* s, SizeType n, bool) {
    if (check_utf8_ && !json::valid_utf8(std::string_view(s, n))) return bad(kBadUtf8);
    if (depth_ == 2 && member_ == Member::kNode) {
      if (n > limits::kIdBytesMax) return bad("entry node longer than 64 bytes");
      current().node.assign(s, n);
    } else if (depth_ == 2 && member_ == Member::kKey) {
      if (n > limits::kKeyBytesMax) return bad("key longer than 1024 bytes");
      current().key.clear();
      key::encode_string(std::string_view(s, n), current().key);
    }
    if (depth_ == 2 && (member_ == Member::kNode || member_ == Member::kKey)) {
      member_ = Member::kNone;  // taken above
    }
    return scalar();
  }
  bool Key(const char* s, SizeType n, bool) {
    key_end_ = is_.Tell();
    std::string_view name(s, n);
    if (check_utf8_ && !json::valid_utf8(name)) return bad(kBadUtf8);
    if (depth_ == 1) return begin_entry(name);
    if (depth_ == 2) {
      member_ = name == "value" ? Member::kValue : name == "ts" ? Member::kTs
              : name == "node" ? Member::kNode : name == "key" ? Member::kKey : Member::kNone;
      if (member_ != Member::kNone) {
        unsigned bit = 1u << static_cast<unsigned>(member_);
        if ((seen_ & bit) != 0) return bad("an entry names value, ts, node or key twice");
        seen_ |= bit;
      }
      if (member_ == Member::kValue) value_begin_ = json::skip_to_value(text_, key_end_);
    }
    return true;
  }
  bool StartObject() {
    if (depth_ == 2 && !typed_member_ok()) return false;
    return deeper();  // 1: the entries object, 2: an entry, deeper: inside a value
  }
  bool StartArray() {
    if (depth_ <= 1) return bad("each entry must be an object");
    if (depth_ == 2 && !typed_member_ok()) return false;
    return deeper();
  }
  bool EndObject(SizeType) { return end_container(); }
  bool EndArray(SizeType) { return end_container(); }

 private:
  enum class Member : std::uint8_t { kNone, kValue, kTs, kNode, kKey };
  static constexpr std::string_view kBadUtf8 = "string is not valid UTF-8 (unpaired surrogate?)";

  bool deeper() {
    ++depth_;
    // A value's outermost container is level 1 of the value and depth 3 here.
    if (depth_ > 2 && static_cast<std::size_t>(depth_ - 2) > limits::kValueDepthMax) {
      return bad("value nested deeper than 128 levels");
    }
    return true;
  }

  MergeEntry& current() { return req_->entries[req_->entry_count - 1]; }
  bool bad(std::string_view why) {
    problem_->assign(why);
    return false;
  }
  bool begin_entry(std::string_view name) {
    if (req_->entry_count >= limits::kMergeEntriesMax) return bad("more than 4096 entries");
    if (name.size() > limits::kKeyBytesMax) return bad("key longer than 1024 bytes");
    if (req_->entries.size() <= req_->entry_count) req_->entries.emplace_back();
    ++req_->entry_count;
    MergeEntry& e = current();
    e.key.clear();
    key::encode_string(name, e.key);
    e.value.clear();
    e.node.clear();
    e.version = Version{};
    has_value_ = has_ts_ = false;
    seen_ = 0;
    return true;
  }
  // key, node and ts take one JSON type each; anything else in them is malformed.
  bool typed_member_ok() {
    switch (member_) {
      case Member::kKey: return bad("entry key must be a string or a 64-bit integer");
      case Member::kNode: return bad("entry node must be a string");
      case Member::kTs: return bad("entry ts must be a number");
      default: return true;
    }
  }
  bool scalar() {
    if (depth_ == 1) return bad("each entry must be an object");
    if (depth_ == 2 && member_ == Member::kValue) end_value(is_.Tell());
    if (depth_ == 2 && !typed_member_ok()) return false;
    if (depth_ == 2) member_ = Member::kNone;
    return true;
  }
  bool number(std::int64_t i, bool is_int, double) {
    if (depth_ == 2 && member_ == Member::kTs) {
      // Decoded from its text, correctly rounded: RapidJSON's full-precision strtod returns
      // garbage for a zero with a large exponent ("0e55" gave 7.9e28 with GCC and 1.5e113
      // with clang: it calls __builtin_clzll(0)), so its double is not used.
      double d = -1;
      std::size_t begin = json::skip_to_value(text_, key_end_);
      const char* first = text_.data() + begin;
      const char* last = text_.data() + is_.Tell();
      auto [end, ec] = std::from_chars(first, last, d);
      if (ec != std::errc() || end != last) d = -1;
      if (!std::isfinite(d) || d < 0 || d > 1e11) return bad("entry ts out of range");
      current().version.ts_us = seconds_to_us(d);
      if (current().version.ts_us > ts_max_us_) {
        return bad("entry ts more than 10 s ahead of this node's clock");
      }
      has_ts_ = true;
      member_ = Member::kNone;
      return true;
    }
    if (depth_ == 2 && member_ == Member::kKey) {
      if (!is_int) return bad("entry key must be a string or a 64-bit integer");
      current().key.clear();
      key::encode_int(i, current().key);
      member_ = Member::kNone;
    }
    return scalar();
  }
  void end_value(std::size_t end) {
    current().value.assign(text_.substr(value_begin_, end - value_begin_));
    has_value_ = true;
  }
  bool end_container() {
    --depth_;
    if (depth_ == 2 && member_ == Member::kValue) {
      // The iterative parser calls End* before it takes the bracket: include it.
      end_value(is_.Tell() + 1);
      member_ = Member::kNone;
    }
    if (depth_ == 1) {  // an entry closed
      if (!has_value_) return bad("entry without value");
      if (!has_ts_) return bad("entry without ts");
      if (current().value.size() > limits::kValueBytesMax) {
        return bad("value longer than 65536 bytes");
      }
      if (current().value.find('\r') != std::string::npos) return bad(json::kRawCrInValue);
    }
    return true;
  }

  std::string_view text_;
  rapidjson::MemoryStream& is_;
  Request* req_;
  std::string* problem_;
  std::int64_t ts_max_us_;
  bool check_utf8_;  // the text has a \u escape: decoded strings are checked
  int depth_ = 0;
  unsigned seen_ = 0;  // bit per Member: the current entry's members so far
  Member member_ = Member::kNone;
  std::size_t key_end_ = 0;
  std::size_t value_begin_ = 0;
  bool has_value_ = false;
  bool has_ts_ = false;
};

}  // namespace

bool parse_node_ids(std::string_view text, Request* req) {
  req->node_ids.clear();
  rapidjson::MemoryStream is(text.data(), text.size());
  NodeIdsHandler h(&req->node_ids, json::may_decode_invalid_utf8(text));
  rapidjson::Reader reader;
  return !reader.Parse<kParseFlags>(is, h).IsError();
}

bool parse_entries(std::string_view text, Request* req, std::string* problem,
                   std::int64_t ts_max_us) {
  req->entry_count = 0;
  problem->clear();
  rapidjson::MemoryStream is(text.data(), text.size());
  EntriesHandler h(text, is, req, problem, ts_max_us);
  rapidjson::Reader reader;
  bool ok = !reader.Parse<kParseFlags>(is, h).IsError();
  if (!ok && problem->empty()) problem->assign("entries: malformed entry");
  GOSSIP_KV_ASSERT(req->entry_count <= limits::kMergeEntriesMax);
  GOSSIP_KV_ASSERT(req->entry_count <= req->entries.size());
  return ok;
}

}  // namespace gossip_kv
