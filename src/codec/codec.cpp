#include "gossip_kv/codec.h"

#include <charconv>
#include <cstring>
#include <new>

#include <rapidjson/reader.h>

#include "gossip_kv/key.h"
#include "gossip_kv/limits.h"
#include "codec/json_util.h"
#include "common/assert.h"

namespace gossip_kv {
namespace {

using rapidjson::SizeType;

// The body members the node reads; anything else in a body is ignored.
enum class Field : std::uint8_t {
  kNone, kType, kMsgId, kKey, kValue, kFrom, kTo, kNodeId, kNodeIds, kEntries, kCount
};

Field body_field(std::string_view name) {
  switch (name.size()) {
    case 2: return name == "to" ? Field::kTo : Field::kNone;
    case 3: return name == "key" ? Field::kKey : Field::kNone;
    case 4:
      if (name == "type") return Field::kType;
      if (name == "from") return Field::kFrom;
      return Field::kNone;
    case 5: return name == "value" ? Field::kValue : Field::kNone;
    case 6: return name == "msg_id" ? Field::kMsgId : Field::kNone;
    case 7:
      if (name == "node_id") return Field::kNodeId;
      if (name == "entries") return Field::kEntries;
      return Field::kNone;
    case 8: return name == "node_ids" ? Field::kNodeIds : Field::kNone;
    default: return Field::kNone;
  }
}

// The JSON type of a captured envelope or body member.
enum class ValueKind : std::uint8_t { kAbsent, kNull, kBool, kInt, kDouble, kString, kObject, kArray };

struct FieldValue {
  ValueKind kind = ValueKind::kAbsent;
  std::size_t begin = 0;  // raw JSON text: [begin, end) of the line
  std::size_t end = 0;
  std::int64_t i = 0;
  bool int_fits = true;   // an integer that fits in int64
  std::string_view str;   // decoded string: valid only until the next SAX event, see copy_
};

// What makes a parsed line unfit to serve, found during the SAX pass. One rule for duplicates:
// a member the node reads (src, dest, body; a body field of body_field()) named twice in its
// object is error 12, and makes the line unanswerable when it is src or msg_id (whom, or which
// request, to answer would be ambiguous). Members the node ignores, and members inside values,
// may repeat.
struct LineFaults {
  bool duplicate = false;       // dest, body or a body field named twice
  bool duplicate_id = false;    // src or msg_id named twice: unanswerable
  bool too_deep = false;        // nesting beyond the value depth limit somewhere in the line
  bool bad_utf8 = false;        // a decoded string or name that is not valid UTF-8
  bool bad_src = false;         // ... in src: unanswerable
};

// RapidJSON's in-situ string stream, minus its copy optimization: the parser works on a local
// copy of an InsituStringStream and writes it back only after each event, so Tell() inside the
// handler would be stale; the handler needs it to slice raw values. Same members otherwise.
class LineStream {
 public:
  using Ch = char;
  explicit LineStream(char* text) : src_(text), head_(text) {}
  [[nodiscard]] Ch Peek() const { return *src_; }
  Ch Take() { return *src_++; }
  [[nodiscard]] std::size_t Tell() const { return static_cast<std::size_t>(src_ - head_); }
  Ch* PutBegin() { return dst_ = src_; }
  void Put(Ch c) { *dst_++ = c; }
  std::size_t PutEnd(Ch* begin) { return static_cast<std::size_t>(dst_ - begin); }
  void Flush() {}
  Ch* Push(std::size_t count) {
    Ch* begin = dst_;
    dst_ += count;
    return begin;
  }
  void Pop(std::size_t count) { dst_ -= count; }

 private:
  char* src_;
  char* dst_ = nullptr;
  char* head_;
};

// SAX handler capturing the envelope (depth 1) and the body's members (depth 2).
class LineHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, LineHandler> {
 public:
  LineHandler(std::string_view text, LineStream& is, Request* req)
      : text_(text), is_(is), req_(req), check_utf8_(json::may_decode_invalid_utf8(text)) {}

  bool Null() { return scalar(ValueKind::kNull); }
  bool Bool(bool) { return scalar(ValueKind::kBool); }
  bool Int(int v) { return integer(v, true); }
  bool Uint(unsigned v) { return integer(v, true); }
  bool Int64(std::int64_t v) { return integer(v, true); }
  bool Uint64(std::uint64_t v) {
    return integer(static_cast<std::int64_t>(v), v <= static_cast<std::uint64_t>(INT64_MAX));
  }
  bool Double(double) { return scalar(ValueKind::kDouble); }
  bool String(const char* s, SizeType n, bool) {
    bool utf8 = !check_utf8_ || json::valid_utf8(std::string_view(s, n));
    if (!utf8) faults.bad_utf8 = true;
    if (depth_ == 1 && top_ != Top::kNone) {
      if (!utf8 && top_ == Top::kSrc) faults.bad_src = true;
      // An invalid src or dest is not kept: no reply may echo it.
      if (top_ == Top::kSrc && utf8) req_->src.assign(s, n);
      if (top_ == Top::kDest && utf8) req_->dest.assign(s, n);
      top_ = Top::kNone;
      return true;
    }
    if (depth_ == 2 && in_body_ && field_ != Field::kNone) {
      FieldValue& f = start(ValueKind::kString);
      f.end = is_.Tell();
      f.str = std::string_view(s, n);
      on_string(f);
    }
    return true;
  }
  bool StartObject() { return open(ValueKind::kObject); }
  bool StartArray() { return open(ValueKind::kArray); }
  bool EndObject(SizeType) { return close(); }
  bool EndArray(SizeType) { return close(); }
  bool Key(const char* s, SizeType n, bool) {
    key_end_ = is_.Tell();
    std::string_view name(s, n);
    if (check_utf8_ && !json::valid_utf8(name)) faults.bad_utf8 = true;
    if (depth_ == 1) {
      top_ = name == "src" ? Top::kSrc : name == "dest" ? Top::kDest
           : name == "body" ? Top::kBody : Top::kNone;
      if (top_ != Top::kNone) {
        unsigned bit = 1u << static_cast<unsigned>(top_);
        if ((top_seen_ & bit) != 0) {
          (top_ == Top::kSrc ? faults.duplicate_id : faults.duplicate) = true;
        }
        top_seen_ |= bit;
      }
      if (top_ == Top::kSrc) req_->src.clear();
      if (top_ == Top::kDest) req_->dest.clear();
    } else if (depth_ == 2 && in_body_) {
      field_ = body_field(name);
      if (field_ != Field::kNone) {
        unsigned bit = 1u << static_cast<unsigned>(field_);
        if ((field_seen_ & bit) != 0) {
          (field_ == Field::kMsgId ? faults.duplicate_id : faults.duplicate) = true;
        }
        field_seen_ |= bit;
      }
    }
    return true;
  }

  FieldValue fields[static_cast<int>(Field::kCount)];
  LineFaults faults;
  bool body_seen = false;
  std::size_t body_begin = 0;  // raw JSON text of the body: [body_begin, body_end)
  std::size_t body_end = 0;

 private:
  enum class Top : std::uint8_t { kNone, kSrc, kDest, kBody };

  FieldValue& start(ValueKind kind) {
    FieldValue& f = fields[static_cast<int>(field_)];
    f = FieldValue{};
    f.kind = kind;
    f.begin = json::skip_to_value(text_, key_end_);
    return f;
  }
  bool scalar(ValueKind kind) {
    if (depth_ == 1) top_ = Top::kNone;
    if (depth_ == 2 && in_body_ && field_ != Field::kNone) start(kind).end = is_.Tell();
    return true;
  }
  bool integer(std::int64_t v, bool fits) {
    if (depth_ == 1) top_ = Top::kNone;
    if (depth_ == 2 && in_body_ && field_ != Field::kNone) {
      FieldValue& f = start(ValueKind::kInt);
      f.end = is_.Tell();
      f.i = v;
      f.int_fits = fits;
    }
    return true;
  }
  void on_string(const FieldValue& f) {
    // Decoded strings die with this event: copy the ones the node keeps.
    if (field_ == Field::kType) req_->type_name.assign(f.str);
    if (field_ == Field::kNodeId) req_->node_id.assign(f.str);
    if (field_ == Field::kKey && f.str.size() <= limits::kKeyBytesMax) {
      req_->key.clear();
      key::encode_string(f.str, req_->key);
    }
  }
  // The iterative parser calls StartObject/StartArray and EndObject/EndArray before it takes
  // the bracket: Tell() is the bracket's offset in both (scalars and names come after theirs).
  bool open(ValueKind kind) {
    // A container opened here sits at level depth_ + 1 of the line. Values start at level 3
    // (envelope, body); kv_merge entry values at level 5 (entries, entry).
    std::size_t level = static_cast<std::size_t>(depth_) + 1;
    if (depth_ == 2 && in_body_) in_entries_ = field_ == Field::kEntries;
    std::size_t allowed = in_entries_ ? limits::kLineDepthMax : limits::kValueDepthMax + 2;
    if (level > allowed) faults.too_deep = true;
    if (depth_ == 1 && top_ == Top::kBody && kind == ValueKind::kObject) {
      in_body_ = true;
      body_seen = true;
      body_begin = is_.Tell();
    } else if (depth_ == 2 && in_body_ && field_ != Field::kNone) {
      FieldValue& f = start(kind);
      f.begin = is_.Tell();
      open_field_ = field_;
    }
    if (depth_ == 1) top_ = Top::kNone;
    ++depth_;
    return true;
  }
  bool close() {
    --depth_;
    if (depth_ == 1 && in_body_) {
      in_body_ = false;
      body_end = is_.Tell() + 1;
    }
    if (depth_ == 2 && in_body_ && open_field_ != Field::kNone) {
      fields[static_cast<int>(open_field_)].end = is_.Tell() + 1;
      open_field_ = Field::kNone;
    }
    return true;
  }

  std::string_view text_;  // the line as received: raw values are sliced from it
  LineStream& is_;  // over a copy of text_, at the same offsets
  Request* req_;
  bool check_utf8_;  // the line has a \u escape: decoded strings are checked
  int depth_ = 0;
  Top top_ = Top::kNone;
  bool in_body_ = false;
  bool in_entries_ = false;  // inside the body's "entries" member
  unsigned top_seen_ = 0;    // bit per Top: envelope members named so far
  unsigned field_seen_ = 0;  // bit per Field: body members named so far (every body counts)
  Field field_ = Field::kNone;
  Field open_field_ = Field::kNone;
  std::size_t key_end_ = 0;
};

// Iterative: the recursive parser takes stack frames per nesting level, and a line of 58,203 '['
// overflowed the reader's stack. The iterative one keeps its state on the heap, at most a few
// bytes per byte of the (bounded) line, for the duration of one parse.
// In situ, over a copy of the line: strings are decoded where they lie instead of being copied
// through the reader's stack, and the copy (not the line) takes the terminating NULs, so that
// raw values are still sliced from the line as received.
// No kParseValidateEncodingFlag: the whole line is validated as UTF-8 before the parse, eight
// bytes at a time while it is ASCII, instead of character by character inside every string.
// No kParseFullPrecisionFlag: the line's doubles are never used (values are kept as text), and
// RapidJSON's full-precision strtod calls __builtin_clzll(0) on "0e55" (undefined behaviour).
constexpr unsigned kParseFlags = rapidjson::kParseInsituFlag | rapidjson::kParseIterativeFlag;

struct TypeName {
  std::string_view name;
  MsgType type;
};
constexpr TypeName kTypes[] = {
    {"init", MsgType::kInit},         {"write", MsgType::kWrite},
    {"kv_read", MsgType::kKvRead},    {"kv_merge", MsgType::kKvMerge},
    {"read", MsgType::kRead},         {"cas", MsgType::kCas},
    {"bench_write", MsgType::kBenchWrite}, {"bench_report", MsgType::kBenchReport},
    {"bench_stats", MsgType::kBenchStats}, {"bench_figures", MsgType::kBenchFigures},
};

}  // namespace

MsgType classify_type(std::string_view name, bool from_peer) {
  for (const auto& t : kTypes) {
    if (t.name == name) return t.type;
  }
  if (name == "error" || (name.size() > 3 && name.substr(name.size() - 3) == "_ok")) {
    return MsgType::kReply;
  }
  return from_peer ? MsgType::kPeer : MsgType::kUnknown;
}

namespace {

MsgType classify(const Request& req) { return classify_type(req.type_name, req.from_peer()); }

void fail(Request* req, std::string_view text) {
  if (req->error != ErrorCode::kNone) return;  // the first problem found is the one reported
  req->error = ErrorCode::kMalformedRequest;
  req->error_text.assign(text);
}

std::string_view raw(std::string_view line, const FieldValue& f) {
  return line.substr(f.begin, f.end - f.begin);
}

// Fills req->key from a body field; the string case was encoded during the SAX pass.
void take_key(const FieldValue& f, Request* req) {
  if (f.kind == ValueKind::kAbsent) return fail(req, "missing field: key");
  if (f.kind == ValueKind::kString) {
    // The SAX pass encoded it unless it was over the limit.
    if (req->key.empty()) fail(req, "key longer than 1024 bytes");
    return;
  }
  if (f.kind != ValueKind::kInt || !f.int_fits) {
    return fail(req, "key must be a string or a 64-bit integer");
  }
  req->key.clear();
  key::encode_int(f.i, req->key);
}

void take_value(std::string_view line, const FieldValue& f, std::string_view name,
                std::string* out, Request* req) {
  if (f.kind == ValueKind::kAbsent) {
    std::string text = "missing field: ";
    text.append(name);
    return fail(req, text);
  }
  if (f.end - f.begin > limits::kValueBytesMax) return fail(req, "value longer than 65536 bytes");
  std::string_view text = raw(line, f);
  if (text.find('\r') != std::string_view::npos) return fail(req, json::kRawCrInValue);
  out->assign(text);
}

}  // namespace

// Defined in nested.cpp: node_ids and kv_merge entries.
bool parse_node_ids(std::string_view text, Request* req);

ParseStatus Parser::parse(std::string_view line, Request* req, std::string* problem) {
  // Invalid UTF-8 outside a string is invalid JSON anyway: checking the whole line is the
  // same verdict as checking every string.
  if (!json::valid_utf8(line)) {
    problem->assign("invalid UTF-8");
    return ParseStatus::kUnanswerable;
  }
  if (parse_flat_line(line, req)) return ParseStatus::kOk;
  return parse_json(line, req, problem);
}

ParseStatus Parser::parse_general(std::string_view line, Request* req, std::string* problem) {
  if (!json::valid_utf8(line)) {
    problem->assign("invalid UTF-8");
    return ParseStatus::kUnanswerable;
  }
  return parse_json(line, req, problem);
}

ParseStatus Parser::parse_json(std::string_view line, Request* req, std::string* problem) {
  req->src.clear();
  req->dest.clear();
  req->type_name.clear();
  req->msg_id.clear();
  req->key.clear();
  req->node_id.clear();
  req->entry_count = 0;
  req->error = ErrorCode::kNone;
  req->type = MsgType::kUnknown;

  insitu_.assign(line);  // NUL-terminated, as the in-situ stream needs
  LineStream is(insitu_.data());
  LineHandler h(line, is, req);
  rapidjson::ParseResult ok = reader_->Parse<kParseFlags>(is, h);
  if (line.size() > kReaderResetBytes) {
    reader_.emplace();
    std::string().swap(insitu_);
  }
  // A NUL byte in the line ends the in-situ stream early: whatever follows it is not JSON.
  if (ok && is.Tell() != line.size()) ok.Set(rapidjson::kParseErrorDocumentRootNotSingular, is.Tell());
  if (!ok) {
    problem->assign("invalid JSON at offset ");
    problem->append(std::to_string(ok.Offset()));
    return ParseStatus::kUnanswerable;
  }
  const auto& f = h.fields;
  const FieldValue& msg_id = f[static_cast<int>(Field::kMsgId)];
  if (h.faults.bad_src || h.faults.duplicate_id) {
    problem->assign(h.faults.bad_src ? "src is not valid UTF-8" : "src or msg_id named twice");
    return ParseStatus::kUnanswerable;
  }
  if (req->src.empty() || !h.body_seen || msg_id.kind != ValueKind::kInt || !msg_id.int_fits) {
    problem->assign(req->src.empty() ? "no string src"
                    : !h.body_seen   ? "body is not an object"
                                     : "no integer msg_id in body");
    return ParseStatus::kUnanswerable;
  }
  if (req->src.size() > limits::kIdBytesMax) {
    problem->assign("src longer than 64 bytes");
    return ParseStatus::kUnanswerable;
  }
  req->msg_id.assign(raw(line, msg_id));
  // Structural faults come first: the fields of such a line cannot be trusted.
  if (h.faults.duplicate) fail(req, "a member the node reads is named twice");
  if (h.faults.too_deep) fail(req, "value nested deeper than 128 levels");
  if (h.faults.bad_utf8) fail(req, "string is not valid UTF-8 (unpaired surrogate escape?)");
  if (req->error != ErrorCode::kNone) {
    // Classified still, so that a reply is never answered and a peer line is dropped (the
    // reader checks the error before it hands a peer line on).
    bool named = f[static_cast<int>(Field::kType)].kind == ValueKind::kString;
    req->type = named ? classify(*req) : req->from_peer() ? MsgType::kPeer : MsgType::kUnknown;
    req->type_name.clear();
    return ParseStatus::kOk;
  }

  const FieldValue& type = f[static_cast<int>(Field::kType)];
  if (type.kind != ValueKind::kString || req->type_name.size() > limits::kTypeBytesMax) {
    req->type_name.clear();
    fail(req, "missing or non-string field: type");
    return ParseStatus::kOk;
  }
  req->type = classify(*req);

  switch (req->type) {
    case MsgType::kWrite:
    case MsgType::kBenchWrite:
      take_key(f[static_cast<int>(Field::kKey)], req);
      take_value(line, f[static_cast<int>(Field::kValue)], "value", &req->value, req);
      break;
    case MsgType::kKvRead:
    case MsgType::kRead:
      take_key(f[static_cast<int>(Field::kKey)], req);
      break;
    case MsgType::kCas:
      take_key(f[static_cast<int>(Field::kKey)], req);
      take_value(line, f[static_cast<int>(Field::kFrom)], "from", &req->from, req);
      take_value(line, f[static_cast<int>(Field::kTo)], "to", &req->value, req);
      break;
    case MsgType::kKvMerge: {
      const FieldValue& e = f[static_cast<int>(Field::kEntries)];
      if (e.kind != ValueKind::kObject) {
        fail(req, "missing or non-object field: entries");
      } else if (!parse_entries(raw(line, e), req, &scratch_,
                                add_saturating(wall_clock_us(), limits::kVersionAheadMaxUs))) {
        fail(req, scratch_);
      }
      break;
    }
    case MsgType::kInit: {
      const FieldValue& ids = f[static_cast<int>(Field::kNodeIds)];
      if (f[static_cast<int>(Field::kNodeId)].kind != ValueKind::kString || req->node_id.empty() ||
          req->node_id.size() > limits::kIdBytesMax) {
        fail(req, "missing or non-string field: node_id");
      } else if (ids.kind != ValueKind::kArray || !parse_node_ids(raw(line, ids), req)) {
        fail(req, "node_ids must be an array of at most 4096 node id strings");
      }
      break;
    }
    case MsgType::kPeer:
      req->value.assign(line.substr(h.body_begin, h.body_end - h.body_begin));
      break;
    default:
      break;
  }
  return ParseStatus::kOk;
}

namespace {
// A std::string's heap capacity: 0 while it fits its inline (SSO) buffer.
const std::size_t kInlineCapacity = std::string().capacity();
std::size_t heap_bytes(const std::string& s) {
  return s.capacity() > kInlineCapacity ? s.capacity() + 1 : 0;
}
}  // namespace

std::size_t Request::capacity_bytes() const {
  std::size_t n = heap_bytes(src) + heap_bytes(dest) + heap_bytes(type_name) +
                  heap_bytes(msg_id) + heap_bytes(key) + heap_bytes(value) + heap_bytes(from) +
                  heap_bytes(node_id) + heap_bytes(error_text);
  n += node_ids.capacity() * sizeof(std::string);
  for (const std::string& id : node_ids) n += heap_bytes(id);
  n += entries.capacity() * sizeof(MergeEntry);
  for (const MergeEntry& e : entries) {
    n += heap_bytes(e.key) + heap_bytes(e.value) + heap_bytes(e.node);
  }
  return n;
}

void Request::release_buffers() {
  for (std::string* s : {&src, &dest, &type_name, &msg_id, &key, &value, &from, &node_id,
                         &error_text}) {
    std::string().swap(*s);
  }
  std::vector<std::string>().swap(node_ids);
  std::vector<MergeEntry>().swap(entries);
  entry_count = 0;
}

namespace {

void append_raw(rapidjson::StringBuffer* out, std::string_view text) {
  if (text.empty()) return;  // Push(0) on an empty buffer gives a null pointer
  std::memcpy(out->Push(text.size()), text.data(), text.size());
}

// Appends s as a JSON string. Most strings here (node and client ids) need no escape: they
// are copied as they are checked; the rest go through RapidJSON's writer.
void append_string(rapidjson::StringBuffer* out, std::string_view s) {
  char* p = out->Push(s.size() + 2);
  *p++ = '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == '"' || c == '\\') {
      out->Pop(s.size() + 2);
      rapidjson::Writer<rapidjson::StringBuffer> w(*out);
      w.String(s.data(), static_cast<SizeType>(s.size()));
      return;
    }
    *p++ = ch;
  }
  *p = '"';
}

// Appends a string known to need no escape.
void append_plain_string(rapidjson::StringBuffer* out, std::string_view s) {
  char* p = out->Push(s.size() + 2);
  p[0] = '"';
  if (!s.empty()) std::memcpy(p + 1, s.data(), s.size());
  p[s.size() + 1] = '"';
}

}  // namespace

void ReplyWriter::continue_body(rapidjson::StringBuffer& out) {
  Reset(out);
  hasRoot_ = true;
  // What the writer's own calls would have left: the envelope holds src, dest, body and their
  // values (the body's value open); the body holds type, in_reply_to and their values.
  Level* envelope = new (level_stack_.template Push<Level>()) Level(false);
  envelope->valueCount = 6;
  Level* body = new (level_stack_.template Push<Level>()) Level(false);
  body->valueCount = 4;
}

ReplyRenderer::Writer& ReplyRenderer::begin(rapidjson::StringBuffer* out, std::string_view self,
                                            const Request& req, std::string_view type) {
  if (!opening_cached_ || self != self_) {
    opening_cached_ = true;
    self_.assign(self);
    opening_.clear();
    rapidjson::StringBuffer text;
    append_raw(&text, R"({"src":)");
    append_string(&text, self);
    append_raw(&text, R"(,"dest":)");
    opening_.assign(text.GetString(), text.GetSize());
  }
  out->Clear();
  append_raw(out, opening_);
  append_string(out, req.src);
  append_raw(out, R"(,"body":{"type":)");
  append_plain_string(out, type);
  append_raw(out, R"(,"in_reply_to":)");
  append_raw(out, req.msg_id);
  writer_.continue_body(*out);
  return writer_;
}

void ReplyWriter::member_name(std::string_view name) {
  Level* level = level_stack_.template Top<Level>();
  GOSSIP_KV_ASSERT(!level->inArray && level->valueCount % 2 == 0);
  bool first = level->valueCount == 0;
  char* p = os_->Push(name.size() + (first ? 3 : 4));
  if (!first) *p++ = ',';
  *p++ = '"';
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  *p++ = '"';
  *p = ':';
  level->valueCount += 2;
}

void ReplyWriter::raw_member(std::string_view name, std::string_view json) {
  member_name(name);
  append_raw(os_, json);
}

void ReplyWriter::string_member(std::string_view name, std::string_view s) {
  member_name(name);
  append_string(os_, s);
}

void ReplyRenderer::key_member(Writer& w, std::string_view encoded_key) {
  std::string_view body = key::body(encoded_key);
  if (key::is_int(encoded_key)) return w.raw_member("key", body);
  w.string_member("key", body);
}

void ReplyRenderer::ts_member(Writer& w, std::int64_t ts_us) {
  if (ts_us < 0) {  // never on the node's clock
    w.Key("ts");
    w.Double(static_cast<double>(ts_us) / 1e6);
    return;
  }
  // The seconds change once a second: formatted then, and copied until the next.
  std::int64_t seconds = ts_us / 1'000'000;
  if (seconds != ts_seconds_) {
    auto [last, ec] = std::to_chars(ts_text_, ts_text_ + 20, seconds);
    *last = '.';
    ts_seconds_len_ = static_cast<std::size_t>(last - ts_text_) + 1;
    ts_seconds_ = seconds;
  }
  char* text = ts_text_;
  char* end = text + ts_seconds_len_;
  // Six digits of microseconds, trailing zeros dropped (one digit stays).
  auto frac = static_cast<std::uint32_t>(ts_us % 1'000'000);
  for (int i = 5; i >= 0; --i) {
    end[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  int digits = 6;
  while (digits > 1 && end[digits - 1] == '0') --digits;
  end += digits;
  w.raw_member("ts", std::string_view(text, static_cast<std::size_t>(end - text)));
}

void ReplyRenderer::peer_message(rapidjson::StringBuffer* out, std::string_view self,
                                 std::string_view dest, std::string_view body_json) {
  out->Clear();
  rapidjson::Writer<rapidjson::StringBuffer> w(*out);
  w.StartObject();
  w.Key("src");
  w.String(self.data(), static_cast<SizeType>(self.size()));
  w.Key("dest");
  w.String(dest.data(), static_cast<SizeType>(dest.size()));
  w.Key("body");
  // The body is already JSON; drop its closing brace so the writer can append msg_id.
  std::size_t end = body_json.rfind('}');
  w.RawValue(body_json.data(), end == std::string_view::npos ? 0 : end, rapidjson::kObjectType);
}

void ReplyRenderer::error(rapidjson::StringBuffer* out, std::string_view self,
                          const Request& req, ErrorCode code, std::string_view text) {
  Writer& w = begin(out, self, req, "error");
  char digits[12];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, static_cast<int>(code));
  w.raw_member("code", std::string_view(digits, static_cast<std::size_t>(end - digits)));
  w.string_member("text", text);
}

void ReplyRenderer::read_ok(rapidjson::StringBuffer* out, std::string_view self,
                            const Request& req, bool kv, std::string_view encoded_key,
                            std::string_view value, std::int64_t ts_us) {
  Writer& w = begin(out, self, req, kv ? "kv_read_ok" : "read_ok");
  if (kv) key_member(w, encoded_key);
  w.raw_member("value", value);
  if (kv) ts_member(w, ts_us);
}

void close_line(std::string& out, std::string_view open_line, std::uint64_t msg_id) {
  // One append for the line, one for its tail.
  char tail[48] = R"(,"msg_id":)";
  constexpr std::size_t kTailHead = 10;
  auto [end, ec] = std::to_chars(tail + kTailHead, tail + sizeof tail - 3, msg_id);
  std::memcpy(end, "}}\n", 3);
  out.append(open_line);
  out.append(tail, static_cast<std::size_t>(end + 3 - tail));
}

}  // namespace gossip_kv
