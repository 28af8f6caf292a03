// The two nested shapes a request can carry: init's node_ids and kv_merge's entries. Both are
// rare next to single-key requests, so they get their own SAX pass over their own span.
#include <cmath>
#include <string>

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include "gossip_kv/codec.h"
#include "gossip_kv/key.h"
#include "gossip_kv/limits.h"
#include "codec/json_util.h"

namespace gossip_kv {
namespace {

using rapidjson::SizeType;

class NodeIdsHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, NodeIdsHandler> {
 public:
  explicit NodeIdsHandler(std::vector<std::string>* out) : out_(out) {}
  bool Default() { return false; }  // anything but strings in one flat array
  bool StartArray() { return depth_++ == 0; }
  bool EndArray(SizeType) { return --depth_ == 0; }
  bool String(const char* s, SizeType n, bool) {
    if (n == 0 || n > limits::kIdBytesMax || out_->size() >= limits::kNodeIdsMax) return false;
    out_->emplace_back(s, n);
    return true;
  }

 private:
  std::vector<std::string>* out_;
  int depth_ = 0;
};

// entries: {"<key>": {"value": <any>, "ts": <seconds>, "node": "<id>", "key": <int|string>}}
// The member name is the (string) key; an entry's own "key" member overrides it, which is how
// an integer key is merged.
class EntriesHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, EntriesHandler> {
 public:
  EntriesHandler(std::string_view text, rapidjson::MemoryStream& is, Request* req,
                 std::string* problem)
      : text_(text), is_(is), req_(req), problem_(problem) {}

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
    if (depth_ == 1) return begin_entry(name);
    if (depth_ == 2) {
      member_ = name == "value" ? Member::kValue : name == "ts" ? Member::kTs
              : name == "node" ? Member::kNode : name == "key" ? Member::kKey : Member::kNone;
      if (member_ == Member::kValue) value_begin_ = json::skip_to_value(text_, key_end_);
    }
    return true;
  }
  bool StartObject() {
    if (depth_ == 2 && !typed_member_ok()) return false;
    ++depth_;  // 1: the entries object, 2: an entry, deeper: inside a value
    return true;
  }
  bool StartArray() {
    if (depth_ <= 1) return bad("each entry must be an object");
    if (depth_ == 2 && !typed_member_ok()) return false;
    ++depth_;
    return true;
  }
  bool EndObject(SizeType) { return end_container(); }
  bool EndArray(SizeType) { return end_container(); }

 private:
  enum class Member : std::uint8_t { kNone, kValue, kTs, kNode, kKey };

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
    if (depth_ == 2 && member_ == Member::kValue) end_value();
    if (depth_ == 2 && !typed_member_ok()) return false;
    if (depth_ == 2) member_ = Member::kNone;
    return true;
  }
  bool number(std::int64_t i, bool is_int, double d) {
    if (depth_ == 2 && member_ == Member::kTs) {
      if (!std::isfinite(d) || d < 0 || d > 1e11) return bad("entry ts out of range");
      current().version.ts_us = seconds_to_us(d);
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
  void end_value() {
    std::size_t end = is_.Tell();
    current().value.assign(text_.substr(value_begin_, end - value_begin_));
    has_value_ = true;
  }
  bool end_container() {
    --depth_;
    if (depth_ == 2 && member_ == Member::kValue) {
      end_value();
      member_ = Member::kNone;
    }
    if (depth_ == 1) {  // an entry closed
      if (!has_value_) return bad("entry without value");
      if (!has_ts_) return bad("entry without ts");
      if (current().value.size() > limits::kValueBytesMax) {
        return bad("value longer than 65536 bytes");
      }
    }
    return true;
  }

  std::string_view text_;
  rapidjson::MemoryStream& is_;
  Request* req_;
  std::string* problem_;
  int depth_ = 0;
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
  NodeIdsHandler h(&req->node_ids);
  rapidjson::Reader reader;
  return !reader.Parse(is, h).IsError();
}

bool parse_entries(std::string_view text, Request* req, std::string* problem) {
  req->entry_count = 0;
  problem->clear();
  rapidjson::MemoryStream is(text.data(), text.size());
  EntriesHandler h(text, is, req, problem);
  rapidjson::Reader reader;
  bool ok = !reader.Parse(is, h).IsError();
  if (!ok && problem->empty()) problem->assign("entries: malformed entry");
  return ok;
}

}  // namespace gossip_kv
