#include "peer_wire.h"

#include <cassert>
#include <charconv>
#include <cstring>

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>

#include "codec/json_util.h"
#include "codec/swar.h"
#include "gossip_kv/key.h"

namespace gossip_kv {
namespace {

using rapidjson::SizeType;

// No kParseValidateEncodingFlag: the body and each value are checked as UTF-8 whole before
// they are parsed (the same verdict: invalid bytes outside a string are invalid JSON anyway),
// which costs a word-at-a-time test while they are ASCII instead of a check per character.
// The body is parsed by the recursive parser: BodyHandler refuses a container wherever its flat
// grammar has none, so the recursion never goes deeper than a span in a relay list (4 levels);
// it takes about a third fewer instructions than the iterative one.
constexpr unsigned kBodyFlags = rapidjson::kParseInsituFlag;
constexpr unsigned kValueFlags = rapidjson::kParseIterativeFlag;

// Body members and r's members; one bit each in the seen mask.
enum class Member : std::uint8_t {
  kNone, kType, kMsgId, kFrom, kTo, kFloor, kOwn, kAskerFloor, kEntries, kWm, kAcks, kAckLife,
  kRelayAcks, kRelay, kRelaySpans, kForwardedAcks, kBeforeFloor, kSentAt, kSeenMin, kClockOffsets,
  kRelayLives, kReportSeq
};
static_assert(static_cast<unsigned>(Member::kReportSeq) < 32);

Member body_member(std::string_view name) {
  if (name == "type") return Member::kType;
  if (name == "msg_id") return Member::kMsgId;
  if (name == "from") return Member::kFrom;
  if (name == "to") return Member::kTo;
  if (name == "fl") return Member::kFloor;
  if (name == "ow") return Member::kOwn;
  if (name == "af") return Member::kAskerFloor;
  if (name == "e") return Member::kEntries;
  if (name == "wm") return Member::kWm;
  if (name == "a") return Member::kAcks;
  if (name == "al") return Member::kAckLife;
  if (name == "ra") return Member::kRelayAcks;
  if (name == "r") return Member::kRelay;
  if (name == "bf") return Member::kBeforeFloor;
  if (name == "st") return Member::kSentAt;
  if (name == "mo") return Member::kSeenMin;
  if (name == "co") return Member::kClockOffsets;
  if (name == "rq") return Member::kReportSeq;
  return Member::kNone;
}

Member relay_member(std::string_view name) {
  if (name == "sp") return Member::kRelaySpans;
  if (name == "fa") return Member::kForwardedAcks;
  if (name == "lv") return Member::kRelayLives;
  return Member::kNone;
}

constexpr std::uint32_t bit(Member m) { return 1u << static_cast<unsigned>(m); }

// Members each kind may carry (msg_id, type, st, mo, fl, al and rq everywhere).
constexpr std::uint32_t kCommon = bit(Member::kType) | bit(Member::kMsgId) | bit(Member::kSentAt) |
                                  bit(Member::kSeenMin) | bit(Member::kAckLife) | bit(Member::kFloor) |
                                  bit(Member::kReportSeq);
constexpr std::uint32_t kGossipMembers = kCommon | bit(Member::kFrom) | bit(Member::kTo) |
                                         bit(Member::kFloor) | bit(Member::kEntries) | bit(Member::kWm) |
                                         bit(Member::kAcks) | bit(Member::kRelayAcks) |
                                         bit(Member::kRelay) | bit(Member::kRelaySpans) |
                                         bit(Member::kForwardedAcks) | bit(Member::kRelayLives) |
                                         bit(Member::kBeforeFloor) | bit(Member::kAskerFloor) |
                                         bit(Member::kClockOffsets);
constexpr std::uint32_t kDigestMembers = kCommon | bit(Member::kWm) | bit(Member::kAcks) |
                                         bit(Member::kFloor) | bit(Member::kOwn) |
                                         bit(Member::kRelayAcks) | bit(Member::kBeforeFloor);
constexpr std::uint32_t kAckMembers = kCommon | bit(Member::kAcks) | bit(Member::kRelayAcks);

// "-?(0|[1-9][0-9]*)" within int64, as std::to_chars writes it.
bool canonical_int64(std::string_view s) {
  if (s.empty() || s == "-0") return false;
  std::size_t digits = s[0] == '-' ? 1 : 0;
  if (digits == s.size() || (s[digits] == '0' && s.size() > digits + 1)) return false;
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

// Checks one value's text as it parses: strings strictly UTF-8 (escapes can make surrogates),
// nesting bounded.
class ValueHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ValueHandler> {
 public:
  explicit ValueHandler(int depth_max) : depth_max_(depth_max) {}
  bool String(const char* s, SizeType n, bool) { return utf8(s, n); }
  bool Key(const char* s, SizeType n, bool) { return utf8(s, n); }
  bool StartObject() { return open(); }
  bool StartArray() { return open(); }
  bool EndObject(SizeType) { return close(); }
  bool EndArray(SizeType) { return close(); }
  const char* reason = nullptr;

 private:
  bool utf8(const char* s, SizeType n) {
    if (json::valid_utf8(std::string_view(s, n))) return true;
    reason = "value holds a string that is not UTF-8 (a lone surrogate escape?)";
    return false;
  }
  bool open() {
    if (++depth_ <= depth_max_) return true;
    reason = "value nested too deep";
    return false;
  }
  bool close() {
    --depth_;
    return true;
  }
  int depth_max_;
  int depth_ = 0;
};

const char* check_value_text(rapidjson::Reader& reader, std::string_view v,
                             std::size_t bytes_max, int depth_max) {
  if (v.size() > bytes_max) return "value too long";
  // A line break (LF or CR) would let a value forge lines; clients cannot store either (a line
  // holds no LF, and the codec refuses a value with a raw CR). A tab is JSON whitespace that a
  // client may write between a value's tokens, and values come back exactly as written:
  // refusing it here would refuse every message carrying such a write, on every retry.
  for (char c : v) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
      return "value holds a control byte (a newline?)";
    }
  }
  if (!json::valid_utf8(v)) return "value not UTF-8";
  if (json::plain_scalar(v)) return nullptr;  // most values: no parse needed
  rapidjson::MemoryStream vs(v.data(), v.size());
  ValueHandler h(depth_max);
  if (!reader.Parse<kValueFlags>(vs, h).IsError()) return nullptr;
  return h.reason != nullptr ? h.reason : "value is not exactly one JSON value";
}

// The body's grammar as a flat state machine: a container where none belongs stops the parse,
// so nesting never goes past 4 (body, r, sp, one span).
class BodyHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, BodyHandler> {
 public:
  BodyHandler(const PeerBounds& b, PeerMessage* m, rapidjson::InsituStringStream& is,
              rapidjson::Reader& value_reader)
      : b_(b), m_(m), is_(is), value_reader_(value_reader) {}

  PeerDecodeResult failure;

  bool Null() { return shape("null where none belongs"); }
  bool Bool(bool) { return shape("a boolean where none belongs"); }
  bool Double(double) { return shape("a number that is not an integer, or outside int64"); }
  bool Int(int v) { return integer(v); }
  bool Int64(std::int64_t v) { return integer(v); }
  bool Uint(unsigned v) { return integer(v); }
  bool Uint64(std::uint64_t v) {
    if (at_ == At::kBody && member_ == Member::kMsgId) return msg_id(v);
    if (v > static_cast<std::uint64_t>(INT64_MAX)) return range("integer outside int64");
    return integer(static_cast<std::int64_t>(v));
  }
  bool String(const char* s, SizeType n, bool);
  bool Key(const char* s, SizeType n, bool);
  bool StartObject();
  bool StartArray();
  bool EndObject(SizeType);
  bool EndArray(SizeType);
  bool finish();  // the checks that need the whole message

 private:
  enum class At : std::uint8_t { kRoot, kBody, kRelay, kList, kTuple, kDone };

  bool fail(PeerStatus s, const char* why) {
    failure = {s, why, is_.Tell()};
    return false;
  }
  bool shape(const char* why) { return fail(PeerStatus::kBadShape, why); }
  bool range(const char* why) { return fail(PeerStatus::kOutOfRange, why); }
  bool in_window(std::int64_t t) const { return t >= b_.min_ts_us && t <= b_.max_ts_us; }
  bool mark_like(std::int64_t t) const { return t == 0 || in_window(t); }
  // The exclusive lower end of a span (from, lo) may sit one below the window: (ts - 1, ts].
  bool lower_end_ok(std::int64_t t) const {
    return mark_like(t) || (b_.min_ts_us > INT64_MIN && t == b_.min_ts_us - 1);
  }
  bool origin_ok(std::int64_t o) const { return o >= 1 && o <= b_.node_count; }

  bool msg_id(std::uint64_t v) {
    m_->has_msg_id = true;
    m_->msg_id = v;
    return true;
  }
  bool integer(std::int64_t v);
  bool body_integer(std::int64_t v);
  bool list_integer(std::int64_t v);
  bool type(std::string_view name);
  bool entry_key(std::string_view k);
  bool entry_value(std::string_view v);
  bool begin_tuple();
  bool end_tuple();
  bool end_entry();
  static std::size_t arity(Member list);

  const PeerBounds& b_;
  PeerMessage* m_;
  rapidjson::InsituStringStream& is_;
  rapidjson::Reader& value_reader_;
  At at_ = At::kRoot;
  Member member_ = Member::kNone;  // the member whose value comes next (body or r)
  Member list_ = Member::kNone;    // the list being filled
  std::uint32_t seen_ = 0;
  std::size_t n_ = 0;           // elements of the current tuple so far
  std::int64_t ints_[5] = {};   // the current tuple's integers
  PeerEntry entry_;
};

bool BodyHandler::Key(const char* s, SizeType n, bool) {
  std::string_view name(s, n);
  member_ = at_ == At::kBody ? body_member(name) : relay_member(name);
  if (member_ == Member::kNone) return shape("unknown member");
  if ((seen_ & bit(member_)) != 0) return shape("duplicate member");
  seen_ |= bit(member_);
  return true;
}

bool BodyHandler::StartObject() {
  if (at_ == At::kRoot) {
    at_ = At::kBody;
    return true;
  }
  if (at_ == At::kBody && member_ == Member::kRelay) {
    m_->has_relay = true;
    at_ = At::kRelay;
    return true;
  }
  return shape("an object where none belongs (e.g. e or a list as an object)");
}

bool BodyHandler::StartArray() {
  if (at_ == At::kList) return begin_tuple();
  bool body_list = at_ == At::kBody && (member_ == Member::kEntries || member_ == Member::kWm ||
                                        member_ == Member::kAcks || member_ == Member::kRelayAcks ||
                                        member_ == Member::kBeforeFloor || member_ == Member::kClockOffsets);
  bool relay_list = at_ == At::kRelay && (member_ == Member::kRelaySpans ||
                                          member_ == Member::kForwardedAcks ||
                                          member_ == Member::kRelayLives);
  if (!body_list && !relay_list) return shape("an array where none belongs");
  list_ = member_;
  switch (list_) {
    case Member::kEntries: m_->has_entries = true; break;
    case Member::kWm: m_->has_wm = true; break;
    case Member::kAcks: m_->has_acks = true; break;
    case Member::kRelayAcks: m_->has_relay_acks = true; break;
    case Member::kRelaySpans: m_->has_relay_spans = true; break;
    case Member::kBeforeFloor: m_->has_before_floor = true; break;
    case Member::kClockOffsets: m_->has_clock_offsets = true; break;
    case Member::kRelayLives: m_->has_relay_lives = true; break;
    default: m_->has_forwarded_acks = true; break;
  }
  at_ = At::kList;
  return true;
}

bool BodyHandler::EndObject(SizeType) {
  if (at_ == At::kRelay) {
    at_ = At::kBody;
    member_ = Member::kNone;
    return true;
  }
  assert(at_ == At::kBody);  // the grammar opens no other object
  at_ = At::kDone;
  return finish();
}

bool BodyHandler::EndArray(SizeType) {
  if (at_ == At::kTuple) return list_ == Member::kEntries ? end_entry() : end_tuple();
  assert(at_ == At::kList);
  if (list_ == Member::kWm && m_->wm.size() != std::size_t{b_.node_count} + 1) {
    return shape("wm does not hold one watermark per origin plus index 0");
  }
  bool in_relay = list_ == Member::kRelaySpans || list_ == Member::kForwardedAcks ||
                  list_ == Member::kRelayLives;
  at_ = in_relay ? At::kRelay : At::kBody;
  list_ = member_ = Member::kNone;
  return true;
}

std::size_t BodyHandler::arity(Member list) {
  switch (list) {
    case Member::kEntries: return 4;
    case Member::kAcks: return 3;
    case Member::kRelayAcks: return 4;
    case Member::kRelaySpans: return 4;
    case Member::kBeforeFloor: return 3;
    case Member::kClockOffsets: return 3;
    case Member::kRelayLives: return 3;
    default: return 5;  // kForwardedAcks
  }
}

bool BodyHandler::begin_tuple() {
  std::size_t count = 0, max = 0;
  switch (list_) {
    case Member::kEntries: count = m_->entries.size(), max = b_.entries_max; break;
    case Member::kAcks: count = m_->acks.size(), max = b_.ack_spans_max; break;
    case Member::kRelayAcks: count = m_->relay_acks.size(), max = b_.relay_acks_max; break;
    case Member::kRelaySpans: count = m_->relay_spans.size(), max = b_.relay_spans_max; break;
    case Member::kForwardedAcks:
      count = m_->forwarded_acks.size(), max = b_.forwarded_acks_max;
      break;
    case Member::kBeforeFloor: count = m_->before_floor.size(), max = b_.before_floor_max; break;
    case Member::kClockOffsets: count = m_->clock_offsets.size(), max = b_.clock_offsets_max; break;
    case Member::kRelayLives: count = m_->relay_lives.size(), max = b_.relay_lives_max; break;
    default: return shape("wm holds an array where an integer belongs");
  }
  if (count >= max) return range("more list items than the bound allows");
  at_ = At::kTuple;
  n_ = 0;
  entry_ = PeerEntry{};
  return true;
}

bool BodyHandler::String(const char* s, SizeType n, bool) {
  std::string_view text(s, n);
  if (at_ == At::kBody && member_ == Member::kType) return type(text);
  if (at_ != At::kTuple || list_ != Member::kEntries) return shape("a string where none belongs");
  if (n_ == 0) return entry_key(text);
  if (n_ == 3) return entry_value(text);
  if (n_ >= 4) return shape("an entry's older writes must be integers");
  return shape("an entry's ts and origin must be integers");
}

bool BodyHandler::type(std::string_view name) {
  if (name == "gossip") m_->kind = PeerKind::kGossip;
  if (name == "digest") m_->kind = PeerKind::kDigest;
  if (name == "ack") m_->kind = PeerKind::kAck;
  if (m_->kind == PeerKind::kNone) return fail(PeerStatus::kUnknownType, "unknown type");
  return true;
}

bool BodyHandler::entry_key(std::string_view k) {
  n_ = 1;
  if (const char* why = check_encoded_key(k, b_.key_bytes_max); why != nullptr) {
    return fail(PeerStatus::kBadKey, why);
  }
  entry_.key = k;
  return true;
}

bool BodyHandler::entry_value(std::string_view v) {
  n_ = 4;
  const char* why = check_value_text(value_reader_, v, b_.value_bytes_max, b_.value_depth_max);
  if (why != nullptr) return fail(PeerStatus::kBadValue, why);
  entry_.value = v;
  return true;
}

bool BodyHandler::integer(std::int64_t v) {
  if (at_ == At::kBody) return body_integer(v);
  if (at_ == At::kList && list_ == Member::kWm) return list_integer(v);
  if (at_ != At::kTuple) return shape("an integer where none belongs");
  if (list_ == Member::kEntries) {
    if (n_ == 1) {
      if (!in_window(v)) return range("entry ts outside the window");
      entry_.ts_us = v;
    } else if (n_ == 2) {
      if (v < 0 || v > b_.node_count) return range("entry origin outside 0..N");
      entry_.origin = static_cast<std::uint32_t>(v);
    } else if (n_ < 4) {
      return shape("an entry's key and value must be strings");
    } else if (n_ >= 4 + 2 * peer_wire::kStandsForMax) {
      return shape("an entry stands for more older writes than the bound allows");
    } else if (n_ % 2 == 0) {  // the origin of an older write the entry stands for
      if (v < 1 || v > b_.node_count) return range("an older write's origin outside 1..N");
      entry_.stands[entry_.stands_count].first = static_cast<std::uint32_t>(v);
    } else {  // its timestamp
      if (!in_window(v)) return range("an older write's ts outside the window");
      entry_.stands[entry_.stands_count++].second = v;
    }
    ++n_;
    return true;
  }
  if (n_ >= arity(list_)) return shape("a list item with too many members");
  ints_[n_++] = v;
  return true;
}

bool BodyHandler::body_integer(std::int64_t v) {
  if (member_ == Member::kMsgId) {
    if (v < 0) return range("negative msg_id");
    return msg_id(static_cast<std::uint64_t>(v));
  }
  if (member_ == Member::kFloor) {
    if (!mark_like(v)) return range("fl outside the window");
    m_->has_floor = true;
    m_->floor = v;
    return true;
  }
  if (member_ == Member::kSentAt) {
    if (!in_window(v)) return range("st outside the window");
    m_->has_sent_at = true;
    m_->sent_at = v;
    return true;
  }
  if (member_ == Member::kSeenMin) {
    if (v < -peer_wire::kClockSampleAbsMaxUs || v > peer_wire::kClockSampleAbsMaxUs) {
      return range("mo further from 0 than two version windows");
    }
    m_->has_seen_min = true;
    m_->seen_min = v;
    return true;
  }
  if (member_ == Member::kReportSeq) {
    if (v < 1 || v > peer_wire::kReportSeqMax) return range("rq outside 1..2^53");
    m_->has_report_seq = true;
    m_->report_seq = v;
    return true;
  }
  if (member_ == Member::kOwn) {
    if (!mark_like(v)) return range("ow outside the window");
    m_->has_own = true;
    m_->own = v;
    return true;
  }
  if (member_ == Member::kAskerFloor) {
    if (!mark_like(v)) return range("af outside the window");
    m_->has_asker_floor = true;
    m_->asker_floor = v;
    return true;
  }
  if (member_ == Member::kAckLife) {
    if (!mark_like(v)) return range("al outside the window");
    m_->has_ack_life = true;
    m_->ack_life = v;
    return true;
  }
  if (member_ != Member::kFrom && member_ != Member::kTo) return shape("an integer where none belongs");
  if (member_ == Member::kFrom ? !lower_end_ok(v) : !mark_like(v)) {
    return range("from/to outside the window");
  }
  (member_ == Member::kFrom ? m_->from : m_->to) = v;
  return true;
}

bool BodyHandler::list_integer(std::int64_t v) {
  if (m_->wm.size() > b_.node_count) return shape("wm longer than N+1");
  if (!mark_like(v)) return range("watermark outside the window");
  m_->wm.push_back(v);
  return true;
}

bool BodyHandler::end_entry() {
  if (n_ < 4 || n_ % 2 != 0) return shape("an entry is not [key, ts, origin, value, (origin, ts)...]");
  m_->entries.push_back(entry_);
  at_ = At::kList;
  return true;
}

bool BodyHandler::end_tuple() {
  if (n_ != arity(list_)) return shape("a list item of the wrong arity");
  at_ = At::kList;
  const std::int64_t* x = ints_;
  switch (list_) {
    case Member::kAcks:  // [lo, hi, at_us]
      if (!lower_end_ok(x[0]) || !mark_like(x[1]) || x[0] > x[1] || !in_window(x[2])) {
        return range("ack span: lo/hi/at_us outside the window, or lo > hi");
      }
      m_->acks.push_back({x[0], x[1], x[2]});
      return true;
    case Member::kRelayAcks:  // [origin, lo, hi, at_us]
      if (!origin_ok(x[0])) return range("ra origin outside 1..N");
      if (!lower_end_ok(x[1]) || !mark_like(x[2]) || x[1] > x[2] || !in_window(x[3])) {
        return range("ra span: lo/hi/at_us outside the window, or lo > hi");
      }
      m_->relay_acks.push_back({static_cast<std::uint32_t>(x[0]), x[1], x[2], x[3]});
      return true;
    case Member::kRelaySpans:  // [origin, from, to, floor]
      if (!origin_ok(x[0])) return range("sp origin outside 1..N");
      if (!lower_end_ok(x[1]) || !mark_like(x[2]) || x[1] > x[2] || !mark_like(x[3])) {
        return range("sp chain: from/to/floor outside the window, or from > to");
      }
      m_->relay_spans.push_back({static_cast<std::uint32_t>(x[0]), x[1], x[2], x[3]});
      return true;
    case Member::kBeforeFloor:  // [origin, held, floor]
      if (!origin_ok(x[0])) return range("bf origin outside 1..N");
      if (!mark_like(x[1]) || !mark_like(x[2]) || x[1] > x[2]) {
        return range("bf: held/fl outside the window, or held > fl");
      }
      m_->before_floor.push_back({static_cast<std::uint32_t>(x[0]), x[1], x[2]});
      return true;
    case Member::kClockOffsets:  // [node, mid, half_width]
      if (!origin_ok(x[0])) return range("co node outside 1..N");
      if (x[1] < -peer_wire::kClockSampleAbsMaxUs || x[1] > peer_wire::kClockSampleAbsMaxUs ||
          x[2] < 0 || x[2] > peer_wire::kClockSampleAbsMaxUs) {
        return range("co mid further from 0, or half-width outside 0.., two version windows");
      }
      m_->clock_offsets.push_back({static_cast<std::uint32_t>(x[0]), x[1], x[2]});
      return true;
    case Member::kRelayLives:  // [node, floor, sent_at]
      if (!origin_ok(x[0])) return range("lv node outside 1..N");
      if (!in_window(x[1]) || !in_window(x[2])) return range("lv floor/sent_at outside the window");
      m_->relay_lives.push_back({static_cast<std::uint32_t>(x[0]), x[1], x[2]});
      return true;
    default:  // kForwardedAcks: [acker, origin, lo, hi, at_us]
      if (!origin_ok(x[0]) || !origin_ok(x[1])) return range("fa acker/origin outside 1..N");
      if (!lower_end_ok(x[2]) || !mark_like(x[3]) || x[2] > x[3] || !in_window(x[4])) {
        return range("fa span: lo/hi/at_us outside the window, or lo > hi");
      }
      m_->forwarded_acks.push_back(
          {static_cast<std::uint32_t>(x[0]), static_cast<std::uint32_t>(x[1]), x[2], x[3], x[4]});
      return true;
  }
}

bool BodyHandler::finish() {
  if (m_->kind == PeerKind::kNone) return fail(PeerStatus::kUnknownType, "no type member");
  std::uint32_t allowed = m_->kind == PeerKind::kGossip   ? kGossipMembers
                          : m_->kind == PeerKind::kDigest ? kDigestMembers
                                                          : kAckMembers;
  if ((seen_ & ~allowed) != 0) return shape("a member this kind does not carry");
  bool from = (seen_ & bit(Member::kFrom)) != 0, to = (seen_ & bit(Member::kTo)) != 0;
  if (from != to) return shape("from without to, or to without from");
  m_->has_chain = from;
  if (from && !m_->has_entries) return shape("a push chain without e");
  if (from && m_->from > m_->to) return range("from > to");
  if (m_->kind == PeerKind::kDigest && !m_->has_wm) return shape("a digest without wm");
  if (m_->has_ack_life && !m_->has_acks) return shape("al without a");
  bool answer_only = m_->has_asker_floor || m_->has_before_floor;
  if (m_->kind == PeerKind::kGossip && answer_only && (from || !m_->has_wm)) {
    return shape("af or bf outside an answer (a gossip with wm and no chain)");
  }
  return true;
}

// The bodies engines write, scanned without RapidJSON: one object, no whitespace, strings
// whose escapes are the one-character ones (\" \\ \/ \b \f \n \r \t), integers of at most 18
// digits without a leading zero. It drives the handler with the calls RapidJSON's reader would
// make, in the same order, unescaping strings in place as in-situ parsing does. Anything else
// (whitespace, \u escapes, true/false/null, fractions, longer numbers, deeper nesting than
// kDepthMax) and it gives up: run() returns false, as it does when the handler refuses, and
// the caller parses again with RapidJSON, whose verdict, reason and offset then stand. So the
// scanner only ever accepts what the general parse accepts, with the same calls: that is what
// PeerWire.TheScannerAgreesWithRapidJson and the peer_decoder fuzz target check.
//
// REQUIRES: *end == '\0' and no NUL before it (decode() checks): reads stop there.
template <class Handler>
class FlatScanner {
 public:
  FlatScanner(char* begin, char* end, Handler& h) : p_(begin), end_(end), h_(h) {}

  bool run() { return *p_ == '{' && object(1) && p_ == end_; }

 private:
  static constexpr int kDepthMax = 8;  // the grammar needs 4 (body, r, a list, a span)

  bool value(int depth) {
    char c = *p_;
    if (c == '"') {
      std::string_view s;
      return string(&s) && h_.String(s.data(), static_cast<SizeType>(s.size()), false);
    }
    if (c == '[') return array(depth + 1);
    if (c == '{') return object(depth + 1);
    return number();
  }

  bool object(int depth) {
    if (depth > kDepthMax) return false;
    ++p_;
    if (!h_.StartObject()) return false;
    SizeType members = 0;
    if (*p_ == '}') {
      ++p_;
      return h_.EndObject(0);
    }
    for (;;) {
      std::string_view name;
      if (*p_ != '"' || !string(&name)) return false;
      if (!h_.Key(name.data(), static_cast<SizeType>(name.size()), false)) return false;
      if (*p_++ != ':' || !value(depth)) return false;
      ++members;
      char c = *p_++;
      if (c == '}') return h_.EndObject(members);
      if (c != ',') return false;
    }
  }

  bool array(int depth) {
    if (depth > kDepthMax) return false;
    ++p_;
    if (!h_.StartArray()) return false;
    SizeType items = 0;
    if (*p_ == ']') {
      ++p_;
      return h_.EndArray(0);
    }
    for (;;) {
      if (!value(depth)) return false;
      ++items;
      char c = *p_++;
      if (c == ']') return h_.EndArray(items);
      if (c != ',') return false;
    }
  }

  // At the opening quote. A string is handed on NUL-free and unescaped; RapidJSON's in-situ
  // parse would also write a NUL after it, which no one here reads. Eight bytes at a time up to
  // the next quote, backslash or control byte.
  bool string(std::string_view* out) {
    char* start = ++p_;
    char* dst = start;
    for (;;) {
      if (end_ - p_ >= 8) {
        std::uint64_t x = swar::load8(p_);
        std::uint64_t stops = swar::string_stops(x);
        if (stops == 0) {
          if (dst != p_) std::memcpy(dst, &x, 8);
          dst += 8, p_ += 8;
          continue;
        }
        std::size_t plain = swar::first_flagged(stops);
        if (dst != p_) std::memmove(dst, p_, plain);
        dst += plain, p_ += plain;
      }
      auto c = static_cast<unsigned char>(*p_);
      if (c == '"') break;
      if (c == '\\') {
        char e = unescape(p_[1]);
        if (e == 0) return false;  // \u, or an escape RapidJSON refuses
        *dst++ = e;
        p_ += 2;
        continue;
      }
      if (c < 0x20) return false;  // the end of the body (NUL), or a raw control byte
      *dst++ = static_cast<char>(c);
      ++p_;
    }
    ++p_;
    *out = std::string_view(start, static_cast<std::size_t>(dst - start));
    return true;
  }

  static char unescape(char e) {
    switch (e) {
      case '"': return '"';
      case '\\': return '\\';
      case '/': return '/';
      case 'b': return '\b';
      case 'f': return '\f';
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      default: return 0;
    }
  }

  // Every integer RapidJSON would hand on as Int, Uint, Int64 or Uint64 ends, in BodyHandler,
  // as integer(v) or msg_id(v), which Int64 reaches alike for |v| < 10^18.
  bool number() {
    const bool minus = *p_ == '-';
    const char* q = p_ + (minus ? 1 : 0);
    if (*q < '0' || *q > '9') return false;  // true, false, null, or not JSON
    if (*q == '0' && (minus || (q[1] >= '0' && q[1] <= '9'))) return false;  // -0, 01
    std::int64_t v = 0;
    int digits = 0;
    if (end_ - q >= 8 && swar::eight_digits(swar::load8(q))) {  // a timestamp: 16 digits
      v = static_cast<std::int64_t>(swar::eight_digits_value(swar::load8(q)));
      q += 8, digits = 8;
      if (end_ - q >= 8 && swar::eight_digits(swar::load8(q))) {
        v = v * 100'000'000 + static_cast<std::int64_t>(swar::eight_digits_value(swar::load8(q)));
        q += 8, digits = 16;
      }
    }
    for (; *q >= '0' && *q <= '9'; ++q) {
      if (++digits > 18) return false;
      v = v * 10 + (*q - '0');
    }
    p_ += q - p_;  // a fraction or exponent next is not a ',', ']' or '}': the caller gives up
    return h_.Int64(minus ? -v : v);
  }

  char* p_;
  char* end_;
  Handler& h_;
};

}  // namespace

void PeerMessage::clear() {
  kind = PeerKind::kNone;
  has_msg_id = has_chain = has_floor = has_own = has_asker_floor = has_ack_life = false;
  has_entries = has_wm = has_acks = has_relay_acks = false;
  floor = own = asker_floor = ack_life = 0;
  has_relay = has_relay_spans = has_forwarded_acks = has_relay_lives = has_before_floor = false;
  has_sent_at = has_seen_min = has_clock_offsets = has_report_seq = false;
  sent_at = seen_min = report_seq = 0;
  clock_offsets.clear();
  msg_id = 0;
  from = to = 0;
  entries.clear();
  wm.clear();
  acks.clear();
  relay_acks.clear();
  relay_spans.clear();
  forwarded_acks.clear();
  relay_lives.clear();
  before_floor.clear();
}

PeerBounds PeerBounds::for_cluster(std::uint32_t node_count, std::int64_t min_ts_us,
                                   std::int64_t max_ts_us) {
  PeerBounds b;
  b.node_count = node_count;
  b.min_ts_us = min_ts_us;
  b.max_ts_us = max_ts_us;
  const peer_wire::WireCaps& c = peer_wire::kWireCaps;
  b.entries_max = c.entries_bytes / peer_wire::kEntryBytesMin;
  b.ack_spans_max = c.ack_spans;
  b.relay_acks_max = c.relay_acks;
  b.relay_spans_max = c.relay_spans;
  b.forwarded_acks_max = c.forwarded_acks;
  b.relay_lives_max = c.relay_lives;
  b.before_floor_max = c.before_floor;
  b.clock_offsets_max = c.clock_offsets;
  return b;
}

const char* peer_status_name(PeerStatus s) {
  switch (s) {
    case PeerStatus::kOk: return "ok";
    case PeerStatus::kNotJson: return "not_json";
    case PeerStatus::kUnknownType: return "unknown_type";
    case PeerStatus::kBadShape: return "bad_shape";
    case PeerStatus::kOutOfRange: return "out_of_range";
    case PeerStatus::kBadKey: return "bad_key";
    case PeerStatus::kBadValue: return "bad_value";
  }
  return "?";
}

PeerDecoder::PeerDecoder() = default;
PeerDecoder::~PeerDecoder() = default;

// What both parses refuse before they look at the grammar; on success the body is in buffer_
// (keeping its capacity; c_str() adds the NUL in-situ parsing stops at).
PeerDecodeResult PeerDecoder::load(std::string_view body, PeerMessage* out) {
  assert(out != nullptr);
  out->clear();
  if (body.size() > limits::kLineBytesMax) {
    return {PeerStatus::kNotJson, "body longer than the line limit", 0};
  }
  // In situ parsing ends at the first NUL: one inside the body would hide what follows it.
  if (const void* nul = std::memchr(body.data(), '\0', body.size()); nul != nullptr) {
    return {PeerStatus::kNotJson, "NUL byte in the body",
            static_cast<std::size_t>(static_cast<const char*>(nul) - body.data())};
  }
  if (!json::valid_utf8(body)) return {PeerStatus::kNotJson, "body is not UTF-8", 0};
  buffer_.assign(body);
  return {};
}

PeerDecodeResult PeerDecoder::decode(std::string_view body, const PeerBounds& bounds,
                                     PeerMessage* out) {
  assert(bounds.min_ts_us <= bounds.max_ts_us);
  if (PeerDecodeResult r = load(body, out); !r.ok()) return r;
  rapidjson::InsituStringStream unused(buffer_.data());  // a failure's offset: none taken here
  BodyHandler h(bounds, out, unused, value_reader_);
  if (FlatScanner<BodyHandler>(buffer_.data(), buffer_.data() + buffer_.size(), h).run()) {
    ++scanned_;
    return {};
  }
  // Not a body the scanner takes, or one the handler refused: RapidJSON's parse decides and
  // says why, on a fresh copy (the scanner unescaped strings in place).
  out->clear();
  buffer_.assign(body);
  return parse_general(bounds, out);
}

PeerDecodeResult PeerDecoder::decode_general(std::string_view body, const PeerBounds& bounds,
                                             PeerMessage* out) {
  assert(bounds.min_ts_us <= bounds.max_ts_us);
  if (PeerDecodeResult r = load(body, out); !r.ok()) return r;
  return parse_general(bounds, out);
}

PeerDecodeResult PeerDecoder::parse_general(const PeerBounds& bounds, PeerMessage* out) {
  rapidjson::InsituStringStream is(buffer_.data());
  BodyHandler h(bounds, out, is, value_reader_);
  rapidjson::ParseResult r = reader_.Parse<kBodyFlags>(is, h);
  if (!r.IsError()) return {};
  if (r.Code() == rapidjson::kParseErrorTermination) return h.failure;
  return {PeerStatus::kNotJson, rapidjson::GetParseError_En(r.Code()), r.Offset()};
}

const char* check_encoded_key(std::string_view k, std::size_t key_bytes_max) {
  if (k.empty() || k.size() > 1 + key_bytes_max) return "key empty or longer than the key bound";
  if (k[0] == key::kStringTag) {
    return json::valid_utf8(key::body(k)) ? nullptr : "string key not UTF-8";
  }
  if (k[0] == key::kIntTag) {
    return canonical_int64(key::body(k)) ? nullptr : "integer key not a canonical int64";
  }
  return "key without an 's' or 'i' tag";
}

const char* ValueTextChecker::check(std::string_view value_text, std::size_t bytes_max,
                                    int depth_max) {
  return check_value_text(reader_, value_text, bytes_max, depth_max);
}

}  // namespace gossip_kv
