// libFuzzer target for PeerDecoder (src/replication/peer_wire.h).
//
// Input: byte 0 picks the cluster size (1..8 nodes); the rest is a peer message body.
// Invariants: the decoder never crashes, hangs or reads out of bounds (the sanitizers watch),
// decode() (a scanner first) and decode_general() (RapidJSON alone) agree on everything, and
// every message it accepts satisfies every bound, re-checked here independently of the
// decoder's own code (a second UTF-8 check, a DOM parse of each value, plain comparisons).
//
// Build by hand (the CMake infrastructure uses the tests/fuzz/<name>_fuzz.cpp convention):
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
//     -fno-sanitize=pointer-overflow -Iinclude -Isrc -DRAPIDJSON_HAS_STDSTRING=1 \
//     tests/fuzz/peer_decoder_fuzz.cpp src/replication/peer_wire.cpp -o peer_decoder_fuzz
// (pointer-overflow is off because RapidJSON 1.1's internal::Stack adds to its null pointer
// before its first allocation, stack.h:117, in every Reader and Document: not this code's.)
//   ./peer_decoder_fuzz tests/fuzz/corpus/peer_decoder -dict=tests/fuzz/gossip_kv.dict
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "replication/peer_wire.h"

namespace {

using namespace gossip_kv;

constexpr std::int64_t kMinTs = 1;
constexpr std::int64_t kMaxTs = 10'000'000'000'000'000;  // year 2286: real bodies fit

[[noreturn]] void broken(const char* what, std::string_view body) {
  std::fprintf(stderr, "broken invariant: %s\nbody: %.*s\n", what,
               static_cast<int>(body.size()), body.data());
  std::abort();
}

// Decodes code points one by one (a different method from valid_utf8's range table).
bool utf8_by_code_points(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
    if (n < 0 || i + static_cast<std::size_t>(n) >= s.size()) {
      if (n != 0) return false;
    }
    std::uint32_t cp = n == 0 ? c : n == 1 ? (c & 0x1Fu) : n == 2 ? (c & 0x0Fu) : (c & 0x07u);
    for (int k = 1; k <= n; ++k) {
      auto t = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      if ((t >> 6) != 0x2) return false;
      cp = (cp << 6) | (t & 0x3Fu);
    }
    static constexpr std::uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<std::size_t>(n) + 1;
  }
  return true;
}

int depth_of(const rapidjson::Value& v) {
  int d = 0;
  if (v.IsArray()) {
    for (const auto& x : v.GetArray()) d = std::max(d, depth_of(x));
    return d + 1;
  }
  if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      if (!utf8_by_code_points({m.name.GetString(), m.name.GetStringLength()})) return 1 << 20;
      d = std::max(d, depth_of(m.value));
    }
    return d + 1;
  }
  if (v.IsString() && !utf8_by_code_points({v.GetString(), v.GetStringLength()})) return 1 << 20;
  return 0;
}

bool mark_like(std::int64_t t) { return t == 0 || (t >= kMinTs && t <= kMaxTs); }
bool in_window(std::int64_t t) { return t >= kMinTs && t <= kMaxTs; }

void check_entry(const PeerEntry& e, const PeerBounds& b, std::string_view body) {
  if (e.key.empty() || e.key.size() > 1 + b.key_bytes_max) broken("key length", body);
  std::string_view kb = e.key.substr(1);
  if (e.key[0] == 'i') {
    char* end = nullptr;
    std::string digits(kb);
    errno = 0;
    long long v = std::strtoll(digits.c_str(), &end, 10);
    if (digits.empty() || errno != 0 || *end != '\0' || std::to_string(v) != digits) {
      broken("integer key not canonical", body);
    }
  } else if (e.key[0] != 's' || !utf8_by_code_points(kb)) {
    broken("key tag or UTF-8", body);
  }
  if (!in_window(e.ts_us)) broken("entry ts", body);
  if (e.origin > b.node_count) broken("entry origin", body);
  if (e.value.size() > b.value_bytes_max) broken("value length", body);
  // A tab is JSON whitespace a client may write between a value's tokens (2ab4e26); any other
  // control byte, above all LF and CR, would let a value forge lines.
  for (char c : e.value) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') broken("control byte in value", body);
  }
  if (!utf8_by_code_points(e.value)) broken("value UTF-8", body);
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(e.value.data(), e.value.size());
  if (d.HasParseError()) broken("value is not one JSON value", body);
  if (depth_of(d) > b.value_depth_max) broken("value depth or a string in it", body);
  if (e.stands_count > peer_wire::kStandsForMax) broken("older writes listed", body);
  for (std::uint32_t i = 0; i < e.stands_count; ++i) {
    if (e.stands[i].first < 1 || e.stands[i].first > b.node_count) broken("an older write's origin", body);
    if (!in_window(e.stands[i].second)) broken("an older write's ts", body);
  }
}

void check(const PeerMessage& m, const PeerBounds& b, std::string_view body) {
  if (m.kind == PeerKind::kNone) broken("no kind", body);
  if (m.entries.size() > b.entries_max || m.acks.size() > b.ack_spans_max ||
      m.relay_acks.size() > b.relay_acks_max || m.relay_spans.size() > b.relay_spans_max ||
      m.forwarded_acks.size() > b.forwarded_acks_max || m.relay_lives.size() > b.relay_lives_max) {
    broken("a count", body);
  }
  if (m.has_wm && m.wm.size() != b.node_count + 1u) broken("wm length", body);
  for (std::int64_t w : m.wm) {
    if (!mark_like(w)) broken("watermark", body);
  }
  if (m.has_chain && (!mark_like(m.from) || !mark_like(m.to) || m.from > m.to)) {
    broken("chain", body);
  }
  if (m.kind == PeerKind::kDigest && (!m.has_wm || m.has_entries || m.has_chain || m.has_relay)) {
    broken("digest members", body);
  }
  if (m.kind == PeerKind::kAck && (m.has_wm || m.has_entries || m.has_chain || m.has_relay)) {
    broken("ack members", body);
  }
  auto span = [&](std::int64_t lo, std::int64_t hi, std::int64_t at) {
    if (!mark_like(lo) || !mark_like(hi) || lo > hi || !in_window(at)) broken("a span", body);
  };
  auto origin = [&](std::uint32_t o) {
    if (o < 1 || o > b.node_count) broken("an origin", body);
  };
  for (const PeerEntry& e : m.entries) check_entry(e, b, body);
  for (const auto& a : m.acks) span(a.lo, a.hi, a.at_us);
  for (const auto& a : m.relay_acks) origin(a.origin), span(a.lo, a.hi, a.at_us);
  for (const auto& s : m.relay_spans) origin(s.origin), span(s.from, s.to, kMinTs);
  for (const auto& a : m.forwarded_acks) {
    origin(a.acker), origin(a.origin), span(a.lo, a.hi, a.at_us);
  }
  for (const auto& l : m.relay_lives) {
    origin(l.node);
    if (!in_window(l.floor) || !in_window(l.sent_at)) broken("a proof of life", body);
  }
  // The body itself is one JSON document, whatever the decoder's own reading.
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(body.data(),
                                                                                  body.size());
  if (d.HasParseError() || !d.IsObject()) broken("accepted a body a DOM parse refuses", body);
  if (m.has_entries && (!d.HasMember("e") || d["e"].Size() != m.entries.size())) {
    broken("entry count differs from the DOM's", body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static PeerDecoder decoder;  // reused, as the engine will: state must not leak between calls
  static PeerDecoder general;
  static PeerMessage message, general_message;
  PeerBounds bounds = PeerBounds::for_cluster(1 + data[0] % 8, kMinTs, kMaxTs);
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  PeerDecodeResult r = decoder.decode(body, bounds, &message);
  // The scanner decode() tries first agrees with RapidJSON's parse on every input: verdict,
  // reason, offset and message.
  PeerDecodeResult g = general.decode_general(body, bounds, &general_message);
  if (r.status != g.status || std::string_view(r.reason) != g.reason || r.offset != g.offset) {
    broken("decode() and decode_general() differ in verdict, reason or offset", body);
  }
  if (r.ok() && !(message == general_message)) {
    broken("decode() and decode_general() decode different messages", body);
  }
  if (r.ok()) check(message, bounds, body);
  return 0;
}
