// peer_wire: the replication messages between nodes, decoded in one typed, range-checked step,
// and the byte arithmetic that keeps every message under the receiver's line limit.
//
// Wire format (the body of a Maelstrom message between two node ids; docs/REPLICATION.md):
//
//   {"type": "gossip" | "digest" | "ack",   required, first member as the engine writes it
//    "msg_id": u64,                           stamped by the writer on every line
//    "from": ts, "to": ts,                    gossip push: the sender's chain (from, to]
//    "fl": ts,                                the sender's floor, the start of its life (a
//                                             restart starts a new one); on every message an
//                                             engine writes, with st it proves that life alive
//    "e": [[key, ts_us, origin, value], ...], entries; key is the encoded key (key.h: a tag
//                                             's' or 'i', then the string or the digits),
//                                             value a JSON string holding the value's JSON text
//    "wm": [ts, ...],                         watermark per origin, index 0 unused (N+1 of them)
//    "af": ts,                                gossip answer: the asker's floor as its digest
//                                             said (an answer to an earlier life vouches for
//                                             nothing)
//    "ow": ts,                                digest: how far the sender's own writes of this
//                                             life go (its wm entry for itself claims less)
//    "bf": [[origin, held, fl], ...],         digest: for an origin that restarted and whose
//                                             chain skipped to its floor fl, the sender holds
//                                             its writes up to held and (fl, wm] only;
//                                             a complete answer: the asker now holds them up to
//                                             held (held <= fl)
//    "a":  [[lo, hi, at_us], ...],            acknowledgement spans for the recipient
//    "al": ts,                                with a: the floor of the recipient's life the
//                                             spans are about, as the sender knows it (absent
//                                             when it knows none); spans of several versions
//                                             about another life are ignored
//    "ra": [[origin, lo, hi, at_us], ...],    spans for other origins, for the relay
//    "r":  {"sp": [[origin, from, to, fl], ...],  a relay's forwarded chains, with the floor
//           "fa": [[acker, origin, lo, hi, at_us], ...],  and acknowledgements
//           "lv": [[node, fl, st], ...]},     and the newest message the relay had from each
//                                             listed node: its floor and "st"
//    "st": ts,                                the sender's clock when it sent the message
//    "mo": µs,                                the sender's least (receive time - "st") over
//                                             the recipient's messages (clock_offsets.h)
//    "co": [[node, mid, half_width], ...],    gossip from a relay: its clock minus each
//                                             listed node's lies within mid +- half_width (µs)
//    "rq": n}                                 this message carries reports for the recipient
//                                             ("a" spans owed to it), the n-th such message
//                                             this life of the sender sent about the
//                                             recipient's life in "al" (1..2^53): a gap shows
//                                             the recipient that reports were lost
//
// Which members each kind may carry: gossip: from+to (together, and only with e), e, wm, af
// and bf (an answer: with wm, without a chain), a, ra, r, co; digest: wm (required), ow, a, ra
// (a gap repair to the relay), bf; ack: a, ra. msg_id, st, mo, fl, rq and al (only with a) are
// allowed everywhere.
//
// Checks, each with its reason (a message failing any one is rejected whole; the caller counts
// it in gossip_msgs_malformed):
//  - The body is one JSON object, UTF-8 valid, at most limits::kLineBytesMax bytes, without a
//    NUL byte. Every member is known (unknown members are REJECTED: every node runs the same
//    binary, so an unknown member is a bug or a forgery, and silently dropping it would hide
//    both); no member appears twice (which one would count?).
//  - Every number is an integer of its type; doubles, and integers outside int64, are refused.
//  - Timestamps (entry ts, at_us) lie in [min_ts_us, max_ts_us]; watermark-like fields (to, hi,
//    wm[i]) are 0 ("nothing yet") or in the window; a span's exclusive lower end (from, lo) may
//    also be min_ts_us - 1 (the engine acknowledges one write ts as (ts - 1, ts]). Why: INT64_MIN overflowed
//    ms_between and INT64_MAX poisoned a key for good (no later write can supersede it).
//    from <= to and lo <= hi: a reversed span means nothing the engine can act on.
//  - Origins: an entry's origin is 0..N (0: a kv_merge entry without a node); every other
//    origin or acker is 1..N. wm has exactly N+1 members.
//  - Keys: tag 's' or 'i'; at most 1 + key_bytes_max bytes; an 's' body is strict UTF-8 (no
//    surrogates, which a "\uDC00" escape would otherwise produce); an 'i' body is a canonical
//    int64 decimal ("-?(0|[1-9][0-9]*)", no "-0"), as key::encode_int writes it.
//  - Values: at most value_bytes_max bytes of exactly one JSON value, strict UTF-8 (escaped
//    strings included), no byte below 0x20 anywhere (a value is copied verbatim into client
//    replies: a raw newline would end the line and let the rest forge another), nesting at most
//    value_depth_max (values are later parsed recursively by json::values_equal).
//  - bf: origins 1..N, held and fl 0 or in the window, held <= fl.
//  - Counts: entries, a, ra, r.sp, r.fa, r.lv, bf each at most their bound in PeerBounds (the work one
//    message can cause is bounded).
//
// Parsing is one pass over an in-situ copy of the body, plus one SAX pass over each value's text
// that is not a plain scalar. No DOM. The pass is a scanner for the bodies engines write (no
// whitespace, one-character escapes, integers under 10^18); any other body, or any the checks
// refuse, is copied again and parsed from the start by RapidJSON's recursive SAX parse, so such
// a body costs at most about two copies and two passes. Both drive the same checks with the same calls, and the
// verdict and reason for a refused body are RapidJSON's. Nesting is bounded by the
// grammar itself: the first container where none belongs stops either parse.
//
// Thread safety: a PeerDecoder belongs to one thread. A decoded PeerMessage's string_views
// point into its decoder's buffer and live until that decoder's next decode().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/reader.h>

#include "gossip_kv/limits.h"

namespace gossip_kv {

// ---- the encoder's bound: worst-case bytes, so a message always fits a line ---------------

namespace peer_wire {

inline constexpr std::size_t kInt64TextBytesMax = 20;   // "-9223372036854775808"
inline constexpr std::size_t kUint32TextBytesMax = 10;  // "4294967295" (an origin)
inline constexpr std::size_t kUint64TextBytesMax = 20;  // msg_id

// A node id as a JSON string: quotes, and every byte escaped as \u00XX at worst.
inline constexpr std::size_t kIdStringBytesMax = 2 + 6 * limits::kIdBytesMax;

// What the runtime wraps around a body (ReplyRenderer::peer_message then close_line):
// {"src":ID,"dest":ID,"body":BODY-without-its-"}" ,"msg_id":N}}\n
inline constexpr std::size_t kEnvelopeBytesMax =
    (sizeof R"({"src":)" - 1) + kIdStringBytesMax + (sizeof R"(,"dest":)" - 1) +
    kIdStringBytesMax + (sizeof R"(,"body":)" - 1) + (sizeof R"(,"msg_id":)" - 1) +
    kUint64TextBytesMax + (sizeof "}}\n" - 1);

// One tuple of integers in a list, with the comma before it.
constexpr std::size_t tuple_bytes_max(std::size_t origins, std::size_t int64s) {
  return 2 + origins * kUint32TextBytesMax + int64s * kInt64TextBytesMax + (origins + int64s - 1) +
         1;
}
inline constexpr std::size_t kAckSpanBytesMax = tuple_bytes_max(0, 3);       // a  [lo,hi,at]
inline constexpr std::size_t kRelayAckBytesMax = tuple_bytes_max(1, 3);      // ra [o,lo,hi,at]
inline constexpr std::size_t kRelaySpanBytesMax = tuple_bytes_max(1, 3);     // sp [o,from,to,fl]
inline constexpr std::size_t kForwardedAckBytesMax = tuple_bytes_max(2, 3);  // fa [a,o,lo,hi,at]
inline constexpr std::size_t kBeforeFloorBytesMax = tuple_bytes_max(1, 2);   // bf [o,held,fl]
inline constexpr std::size_t kClockOffsetBytesMax = tuple_bytes_max(1, 2);   // co [node,mid,hw]
inline constexpr std::size_t kRelayLifeBytesMax = tuple_bytes_max(1, 2);     // lv [node,fl,st]
// How far a clock offset or a minimum of (receive - send) may lie from 0 (clock_offsets.h).
inline constexpr std::int64_t kClockSampleAbsMaxUs = 2 * limits::kVersionAheadMaxUs;
// The largest report number ("rq"): a sender numbers each life's messages from 1, and one
// past it still fits an int64 (and a double, for any JSON reader).
inline constexpr std::int64_t kReportSeqMax = std::int64_t{1} << 53;

// Older writes an entry stands for (its version is a newer one of their key): at most this
// many (origin, ts) pairs after the value.
inline constexpr std::size_t kStandsForMax = 8;
// One entry with its comma: the key as a JSON string (1 + kKeyBytesMax bytes, a control byte
// escaped to 6), the value's text as a JSON string (it holds no control byte but JSON
// whitespace, so each byte takes at most 2: '"', '\\', \t, \r, \n), and the writes it stands for.
inline constexpr std::size_t kEntryBytesMax =
    2 + (2 + 6 * (1 + limits::kKeyBytesMax)) + 1 + kInt64TextBytesMax + 1 + kUint32TextBytesMax +
    1 + (2 + 2 * limits::kValueBytesMax) + 1 +
    kStandsForMax * (1 + kUint32TextBytesMax + 1 + kInt64TextBytesMax);
// The smallest entry: ["s",0,0,"0"], -- bounds how many entries fit in a byte budget.
inline constexpr std::size_t kEntryBytesMin = sizeof R"(["s",0,0,"0"],)" - 1;

// "wm": N+1 int64s.
constexpr std::size_t watermarks_bytes_max(std::size_t node_count) {
  return (node_count + 1) * (kInt64TextBytesMax + 1) + 1;
}

// Every member name, bracket and scalar a body can hold, each member present once.
inline constexpr std::size_t kBodyFixedBytesMax =
    (sizeof R"({"type":"gossip")" - 1) + (sizeof R"(,"from":)" - 1) + kInt64TextBytesMax +
    (sizeof R"(,"to":)" - 1) + kInt64TextBytesMax + (sizeof R"(,"fl":)" - 1) +
    kInt64TextBytesMax + (sizeof R"(,"ow":)" - 1) + kInt64TextBytesMax + (sizeof R"(,"af":)" - 1) +
    kInt64TextBytesMax + (sizeof R"(,"al":)" - 1) + kInt64TextBytesMax + (sizeof R"(,"e":[])" - 1) +
    (sizeof R"(,"wm":[])" - 1) + (sizeof R"(,"a":[])" - 1) + (sizeof R"(,"ra":[])" - 1) +
    (sizeof R"(,"r":{"sp":[],"fa":[],"lv":[]})" - 1) + (sizeof R"(,"bf":[])" - 1) + (sizeof R"(,"st":)" - 1) +
    kInt64TextBytesMax + (sizeof R"(,"mo":)" - 1) + kInt64TextBytesMax + (sizeof R"(,"co":[])" - 1) +
    (sizeof R"(,"rq":)" - 1) + kInt64TextBytesMax + (sizeof "}" - 1);

// What one message may carry. The engine caps what it writes by these; the decoder's default
// bounds are the same figures, so whatever an engine writes at the caps decodes.
struct WireCaps {
  std::size_t entries_bytes;   // the "e" array's text, entries and commas
  std::size_t ack_spans;       // a
  std::size_t relay_acks;      // ra
  std::size_t relay_spans;     // r.sp
  std::size_t forwarded_acks;  // r.fa
  std::size_t relay_lives;     // r.lv
  std::size_t before_floor;    // bf
  std::size_t clock_offsets;   // co
};

// The worst-case line (envelope, newline included) of a message at these caps.
constexpr std::size_t line_bytes_max(const WireCaps& c, std::size_t node_count) {
  return kEnvelopeBytesMax + kBodyFixedBytesMax + c.entries_bytes +
         watermarks_bytes_max(node_count) + c.ack_spans * kAckSpanBytesMax +
         c.relay_acks * kRelayAckBytesMax + c.relay_spans * kRelaySpanBytesMax +
         c.forwarded_acks * kForwardedAckBytesMax + c.relay_lives * kRelayLifeBytesMax +
         c.before_floor * kBeforeFloorBytesMax +
         c.clock_offsets * kClockOffsetBytesMax;
}

// How many items of per_item_bytes fit in bytes_left.
constexpr std::size_t items_that_fit(std::size_t bytes_left, std::size_t per_item_bytes) {
  return bytes_left / per_item_bytes;
}

// The split of one line: half for entries (room for the default 256 KiB batch plus the one
// entry the engine may write past it), the rest for watermarks at the largest cluster and the
// acknowledgement lists. A relay carries what does not fit to its next round.
inline constexpr WireCaps kWireCaps = {
    .entries_bytes = limits::kLineBytesMax / 2,
    .ack_spans = 768,  // an engine writes 256 owed + 32 held steps + 256 recent per origin
    .relay_acks = 2048,      // 2,048 x 76 B = 152 KiB
    .relay_spans = 512,      // one push chain per served node per round, with room
    .forwarded_acks = 2048,  // 2,048 x 87 B = 174 KiB (a relay round once reached 2.4 MB)
    .relay_lives = 128,      // nodes heard from since the last round; the rest go next
    .before_floor = 64,      // restarted origins a digest lists; beyond, claimed whole
    .clock_offsets = 64,     // a relay's table; a longer one goes out in turns
};
static_assert(line_bytes_max(kWireCaps, limits::kNodeIdsMax) <= limits::kLineBytesMax,
              "a message at the caps must fit the receiver's line, at the largest cluster");

// The largest batch_bytes_max the engine may use: it stops adding entries once the batch
// reaches batch_bytes_max, so one more entry (kEntryBytesMax) may go past it.
inline constexpr std::size_t kBatchBytesLimit = kWireCaps.entries_bytes - kEntryBytesMax;

// Deepest nesting of a value (an array or object inside a value counts one level). Deeper than
// any Maelstrom workload; bounds the recursion of whoever parses the value later.
inline constexpr int kValueDepthMax = 128;

}  // namespace peer_wire

// ---- the decoded message ------------------------------------------------------------------

enum class PeerKind : std::uint8_t { kNone, kGossip, kDigest, kAck };

struct PeerEntry {
  std::string_view key;    // encoded (key.h), checked
  std::int64_t ts_us = 0;  // in the window
  std::uint32_t origin = 0;  // 0..N
  std::string_view value;  // the value's JSON text: one valid single-line JSON value
  // Older writes of this key the entry stands for: [key, ts, origin, value, o1, ts1, ...].
  // Origins 1..N, timestamps in the window; not checked to be older (the engine does).
  std::uint32_t stands_count = 0;
  std::array<std::pair<std::uint32_t, std::int64_t>, peer_wire::kStandsForMax> stands{};
  friend bool operator==(const PeerEntry&, const PeerEntry&) = default;
};
struct PeerAckSpan {  // a: "I hold your writes in (lo, hi] since at_us"
  std::int64_t lo = 0, hi = 0, at_us = 0;
  friend bool operator==(const PeerAckSpan&, const PeerAckSpan&) = default;
};
struct PeerRelayAck {  // ra: the same, for origin, through the relay
  std::uint32_t origin = 0;
  std::int64_t lo = 0, hi = 0, at_us = 0;
  friend bool operator==(const PeerRelayAck&, const PeerRelayAck&) = default;
};
struct PeerRelaySpan {  // r.sp: origin's chain (from, to], forwarded by a relay
  std::uint32_t origin = 0;
  std::int64_t from = 0, to = 0;
  std::int64_t floor = 0;  // the origin's floor, as its push said
  friend bool operator==(const PeerRelaySpan&, const PeerRelaySpan&) = default;
};
struct PeerBeforeFloor {  // bf: origin's writes held up to `held`, and above floor `fl`
  std::uint32_t origin = 0;
  std::int64_t held = 0, floor = 0;
  friend bool operator==(const PeerBeforeFloor&, const PeerBeforeFloor&) = default;
};
struct PeerClockOffset {  // co: a relay's clock minus node's, within mid +- half_width
  std::uint32_t node = 0;
  std::int64_t mid = 0, half_width = 0;
  friend bool operator==(const PeerClockOffset&, const PeerClockOffset&) = default;
};

struct PeerRelayLife {  // r.lv: the newest message a relay had from node: its fl and st
  std::uint32_t node = 0;
  std::int64_t floor = 0, sent_at = 0;
  friend bool operator==(const PeerRelayLife&, const PeerRelayLife&) = default;
};

struct PeerForwardedAck {  // r.fa: acker's span of origin's writes, forwarded by a relay
  std::uint32_t acker = 0, origin = 0;
  std::int64_t lo = 0, hi = 0, at_us = 0;
  friend bool operator==(const PeerForwardedAck&, const PeerForwardedAck&) = default;
};

// One decoded peer message. Vectors keep their capacity from message to message.
struct PeerMessage {
  PeerKind kind = PeerKind::kNone;
  bool has_msg_id = false;
  std::uint64_t msg_id = 0;
  bool has_chain = false;  // from and to (always together)
  std::int64_t from = 0, to = 0;
  bool has_floor = false;  // fl: the sender's floor
  std::int64_t floor = 0;
  bool has_own = false;  // ow (digests)
  std::int64_t own = 0;
  bool has_asker_floor = false;  // af (answers)
  std::int64_t asker_floor = 0;
  bool has_entries = false;
  std::vector<PeerEntry> entries;
  bool has_wm = false;
  std::vector<std::int64_t> wm;  // N+1 when present
  bool has_acks = false;
  std::vector<PeerAckSpan> acks;
  bool has_ack_life = false;  // al: the floor of the recipient's life a's spans are about
  std::int64_t ack_life = 0;
  bool has_relay_acks = false;
  std::vector<PeerRelayAck> relay_acks;
  bool has_relay = false;  // "r" present
  bool has_relay_spans = false;
  std::vector<PeerRelaySpan> relay_spans;
  bool has_forwarded_acks = false;
  std::vector<PeerForwardedAck> forwarded_acks;
  bool has_relay_lives = false;
  std::vector<PeerRelayLife> relay_lives;
  bool has_before_floor = false;
  std::vector<PeerBeforeFloor> before_floor;
  bool has_sent_at = false;  // st: the sender's clock when it sent the message
  std::int64_t sent_at = 0;
  bool has_seen_min = false;  // mo: the sender's least (receive - send) for the recipient's
  std::int64_t seen_min = 0;
  bool has_report_seq = false;  // rq: the number of this report-carrying message
  std::int64_t report_seq = 0;
  bool has_clock_offsets = false;  // co: a relay's clock minus each listed node's
  std::vector<PeerClockOffset> clock_offsets;

  void clear();  // keeps the vectors' capacity
  // Member by member (string_views by content): for tests comparing two decodes.
  friend bool operator==(const PeerMessage&, const PeerMessage&) = default;
};

// What a decode checks against. for_cluster() fills the counts from peer_wire::kWireCaps.
struct PeerBounds {
  std::uint32_t node_count = 0;  // N: origins 1..N; wm has N+1 members
  // The timestamp window, inclusive. The caller passes its clock minus how old a timestamp may
  // legitimately be (anti-entropy carries writes of any age, and an acknowledgement re-sent on
  // a digest keeps its first at_us, so this is loose; 0 accepts any non-negative time) and its
  // clock plus how far ahead a peer's clock may run.
  std::int64_t min_ts_us = 0;
  std::int64_t max_ts_us = 0;
  std::size_t entries_max = 0;
  std::size_t ack_spans_max = 0;       // a
  std::size_t relay_acks_max = 0;      // ra
  std::size_t relay_spans_max = 0;     // r.sp
  std::size_t forwarded_acks_max = 0;  // r.fa
  std::size_t relay_lives_max = 0;     // r.lv
  std::size_t before_floor_max = 0;    // bf
  std::size_t clock_offsets_max = 0;   // co
  std::size_t key_bytes_max = limits::kKeyBytesMax;  // a key's body, without its tag
  std::size_t value_bytes_max = limits::kValueBytesMax;
  int value_depth_max = peer_wire::kValueDepthMax;

  static PeerBounds for_cluster(std::uint32_t node_count, std::int64_t min_ts_us,
                                std::int64_t max_ts_us);
};

enum class PeerStatus : std::uint8_t {
  kOk,
  kNotJson,      // not one JSON object: syntax, encoding, NUL byte, over the line limit
  kUnknownType,  // no type member, or a type string other than gossip/digest/ack
  kBadShape,     // a member of the wrong JSON type or arity, unknown, duplicated, or not
                 // allowed in this kind; a required member missing
  kOutOfRange,   // a timestamp, origin, count or span outside its bound
  kBadKey,       // untagged, too long, not UTF-8, or a non-canonical integer
  kBadValue,     // not exactly one JSON value, not UTF-8, a control byte, too long or deep
};

const char* peer_status_name(PeerStatus s);

struct PeerDecodeResult {
  PeerStatus status = PeerStatus::kOk;
  const char* reason = "";  // static text: which check failed
  std::size_t offset = 0;   // about where in the body (bytes), for a log line
  [[nodiscard]] bool ok() const { return status == PeerStatus::kOk; }
};

class PeerDecoder {
 public:
  PeerDecoder();
  ~PeerDecoder();
  PeerDecoder(const PeerDecoder&) = delete;
  PeerDecoder& operator=(const PeerDecoder&) = delete;

  // Decodes body into *out, checking everything listed at the top of this file. On failure
  // *out holds a partial message that must not be used. Once the decoder's buffers have grown
  // to the traffic's sizes, a decode allocates nothing, whatever the number of entries.
  // REQUIRES: bounds.min_ts_us <= bounds.max_ts_us.
  PeerDecodeResult decode(std::string_view body, const PeerBounds& bounds, PeerMessage* out);

  // The same verdict by RapidJSON's parse alone. decode() first tries a scanner for the bodies
  // engines write (no whitespace, one-character escapes, integers under 10^18) and falls back
  // to this for anything else or anything refused; tests and the fuzz target compare the two.
  PeerDecodeResult decode_general(std::string_view body, const PeerBounds& bounds,
                                  PeerMessage* out);
  // How many decode() calls the scanner settled (the rest went to RapidJSON).
  [[nodiscard]] std::uint64_t scanned() const { return scanned_; }

 private:
  PeerDecodeResult load(std::string_view body, PeerMessage* out);
  PeerDecodeResult parse_general(const PeerBounds& bounds, PeerMessage* out);

  std::string buffer_;  // the in-situ copy: decoded strings stay in it
  std::uint64_t scanned_ = 0;
  rapidjson::Reader reader_;
  rapidjson::Reader value_reader_;
};

// The per-entry checks on their own, for the client path: a node must not take from a client a
// key or value its peers would refuse (the message carrying it would be rejected whole, again
// at every anti-entropy round). Each returns nullptr when the text passes, else the reason.
const char* check_encoded_key(std::string_view encoded_key,
                              std::size_t key_bytes_max = limits::kKeyBytesMax);
class ValueTextChecker {
 public:
  const char* check(std::string_view value_text, std::size_t bytes_max = limits::kValueBytesMax,
                    int depth_max = peer_wire::kValueDepthMax);

 private:
  rapidjson::Reader reader_;  // reused: no allocation once warm
};


}  // namespace gossip_kv
