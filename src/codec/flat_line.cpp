// The fast path of the line decoder: the request shapes that make nearly all of a node's load
// (write, bench_write, kv_read, read, cas) in their plain form, decoded in one forward scan; and
// peers' replication messages, whose bodies it only delimits (their decoder checks them).
//
// Plain form: one envelope object whose members are src, dest, body and other scalars (such as
// Maelstrom's "id"); a body whose members are type, msg_id, key, value, from, to and other
// scalars; strings without any escape or control character; integers of at most 18 digits; no
// container anywhere except the envelope and the body. Anything else - an escape, a nested
// value, a fraction, a duplicate member, a missing field, another type - returns false, and
// the general RapidJSON parse decides, with its errors and limits. So the fast path only ever
// takes lines that the general parse decodes without error, and fills the Request as it does:
// tests/codec (the differential cases) and the line_decoder fuzz target compare the two.
#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "gossip_kv/codec.h"
#include "gossip_kv/key.h"
#include "gossip_kv/limits.h"
#include "codec/json_util.h"
#include "codec/swar.h"

namespace gossip_kv {
namespace {

// The largest integer that certainly fits in int64: 18 digits.
constexpr std::size_t kIntDigitsMax = 18;

enum class Kind : std::uint8_t { kNone, kString, kInt, kLiteral };

struct Token {
  Kind kind = Kind::kNone;
  std::string_view text;  // a string's bytes without quotes; a number's or literal's text
};

// `"name":` of a member name of at most 13 bytes, as two little-endian words and masks.
struct NamePattern {
  std::string_view name;
  std::size_t bytes;  // name.size() + 3
  std::uint64_t word[2];
  std::uint64_t mask[2];
};

constexpr NamePattern name_pattern(std::string_view name) {
  NamePattern p{name, name.size() + 3, {0, 0}, {0, 0}};
  auto put = [&p](std::size_t i, char c) {
    p.word[i / 8] |= std::uint64_t{static_cast<unsigned char>(c)} << (8 * (i % 8));
    p.mask[i / 8] |= std::uint64_t{0xFF} << (8 * (i % 8));
  };
  put(0, '"');
  for (std::size_t i = 0; i < name.size(); ++i) put(1 + i, name[i]);
  put(name.size() + 1, '"');
  put(name.size() + 2, ':');
  return p;
}

class FlatScanner {
 public:
  explicit FlatScanner(std::string_view line) : p_(line.data()), end_(line.data() + line.size()) {}

  void skip_ws() {
    while (p_ != end_ && static_cast<unsigned char>(*p_) <= ' ' &&
           (*p_ == ' ' || *p_ == '\t' || *p_ == '\r' || *p_ == '\n')) {
      ++p_;
    }
  }
  // Takes c, after whitespace if any. Most lines have none between tokens: the first test is
  // for c itself.
  bool take(char c) {
    if (p_ != end_ && *p_ == c) {
      ++p_;
      return true;
    }
    skip_ws();
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }
  // Takes a or b, after whitespace if any: 1 for a, 2 for b, 0 (taking nothing) for neither.
  int take_either(char a, char b) {
    if (p_ != end_ && static_cast<unsigned char>(*p_) <= ' ') skip_ws();
    if (p_ == end_) return 0;
    if (*p_ == a) {
      ++p_;
      return 1;
    }
    if (*p_ == b) {
      ++p_;
      return 2;
    }
    return 0;
  }
  [[nodiscard]] bool at_end() const { return p_ == end_; }
  // The next byte after whitespace, or '\0' at the end.
  char peek_ws() {
    skip_ws();
    return p_ == end_ ? '\0' : *p_;
  }

  // A string without escapes or control characters; false for anything else.
  bool plain_string(std::string_view* out) {
    if (!take('"')) return false;
    const char* begin = p_;
    // Eight bytes at a time while eight are left: the lowest byte that is a quote, a
    // backslash or a control character ends the plain run (the flags of the bytes above it
    // may be false positives, the lowest one never is).
    while (end_ - p_ >= 8) {
      std::uint64_t stops = swar::string_stops(swar::load8(p_));
      if (stops != 0) {
        p_ += swar::first_flagged(stops);
        break;
      }
      p_ += 8;
    }
    for (;;) {
      if (p_ == end_) return false;
      auto c = static_cast<unsigned char>(*p_);
      if (c == '"') break;
      if (c == '\\' || c < 0x20) return false;
      ++p_;
    }
    *out = std::string_view(begin, static_cast<std::size_t>(p_ - begin));
    ++p_;
    return true;
  }

  // Skips one value without checking it: a string (escapes and all), an array or object
  // (brackets matched outside strings), or the bytes of a number or literal up to the next
  // delimiter. False only when the line ends inside it or no value starts here. What it skips
  // is not known to be JSON: only a caller that has the value checked later may use it.
  bool skip_unchecked() {
    if (p_ != end_ && static_cast<unsigned char>(*p_) <= ' ') skip_ws();
    if (p_ == end_) return false;
    if (*p_ == '"') return skip_string();
    if (*p_ != '{' && *p_ != '[') {
      const char* begin = p_;
      while (p_ != end_ && *p_ != ',' && *p_ != '}' && *p_ != ']' &&
             static_cast<unsigned char>(*p_) > ' ') {
        ++p_;
      }
      return p_ != begin;
    }
    std::size_t depth = 0;
    while (p_ != end_) {
      char c = *p_;
      if (c == '"') {
        if (!skip_string()) return false;
        continue;
      }
      ++p_;
      if (c == '{' || c == '[') {
        // As deep as the general parse allows a value (it reports deeper ones): a member's
        // value starts at level 3 of the line.
        if (++depth > limits::kValueDepthMax) return false;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return true;
      }
    }
    return false;
  }
  [[nodiscard]] const char* position() const { return p_; }

  // Takes a member name's `"name":` (a NamePattern) when the line has exactly these bytes
  // next (no whitespace), as it does for members in the order Maelstrom's clients write them;
  // false (taking nothing) otherwise. One or two masked 8-byte compares where the bytes are
  // there to load.
  bool take_name(const NamePattern& name) {
    if (name.bytes <= 8 && end_ - p_ >= 8) {  // src, dest, body, type, key, value: one word
      if (((swar::load8(p_) ^ name.word[0]) & name.mask[0]) != 0) return false;
    } else if (end_ - p_ >= 16) {
      std::uint64_t w[2];
      std::memcpy(w, p_, 16);
      if (((w[0] ^ name.word[0]) & name.mask[0]) != 0 || ((w[1] ^ name.word[1]) & name.mask[1]) != 0) {
        return false;
      }
    } else {
      if (static_cast<std::size_t>(end_ - p_) < name.bytes) return false;
      for (std::size_t i = 0; i < name.bytes; ++i) {
        auto want = static_cast<char>(name.word[i / 8] >> (8 * (i % 8)));
        if (p_[i] != want) return false;
      }
    }
    p_ += name.bytes;
    return true;
  }

  // A scalar value in plain form; false for containers, fractions, exponents, long integers,
  // "-0" and anything malformed.
  bool scalar(Token* out) {
    if (p_ != end_ && static_cast<unsigned char>(*p_) <= ' ') skip_ws();
    if (p_ == end_) return false;
    char c = *p_;
    if (c == '"') {
      out->kind = Kind::kString;
      return plain_string(&out->text);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return integer(out);
    for (std::string_view lit : {std::string_view("true"), std::string_view("false"),
                                 std::string_view("null")}) {
      if (static_cast<std::size_t>(end_ - p_) >= lit.size() &&
          std::string_view(p_, lit.size()) == lit) {
        p_ += lit.size();
        out->kind = Kind::kLiteral;
        out->text = lit;
        return true;
      }
    }
    return false;
  }

 private:
  bool integer(Token* out) {
    const char* begin = p_;
    if (*p_ == '-') ++p_;
    const char* digits = p_;
    while (p_ != end_ && static_cast<unsigned char>(*p_ - '0') < 10) ++p_;
    auto n = static_cast<std::size_t>(p_ - digits);
    if (n == 0 || n > kIntDigitsMax) return false;
    if (*digits == '0' && (n > 1 || digits != begin)) return false;  // "01" is not JSON; "-0"
    // A fraction or exponent makes it a double: the general parse's case.
    if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
    out->kind = Kind::kInt;
    out->text = std::string_view(begin, static_cast<std::size_t>(p_ - begin));
    return true;
  }

  // Past a string starting at p_, escapes skipped whole.
  bool skip_string() {
    ++p_;
    for (;;) {
      p_ = quote_or_backslash(p_, end_);
      if (p_ == end_) return false;
      if (*p_ == '"') {
        ++p_;
        return true;
      }
      if (end_ - p_ < 2) {  // a backslash that ends the line
        p_ = end_;
        return false;
      }
      p_ += 2;  // a backslash and the byte it escapes
    }
  }
  // The first '"' or '\\' in [p, end), eight bytes at a time while eight are left.
  static const char* quote_or_backslash(const char* p, const char* end) {
    while (end - p >= 8) {
      std::uint64_t w = swar::load8(p);
      std::uint64_t stops = swar::bytes_equal(w, '"') | swar::bytes_equal(w, '\\');
      if (stops != 0) return p + swar::first_flagged(stops);
      p += 8;
    }
    while (p != end && *p != '"' && *p != '\\') ++p;
    return p;
  }

  const char* p_;
  const char* end_;
};

// Calls member(name) for each member of the object starting at the scanner's position, which
// reads the member's value; false as soon as anything is not in plain form. The i-th member's
// name is first tried as expected[i] (the usual order), byte for byte, before the general scan.
template <std::size_t kExpected, typename Member>
bool members(FlatScanner& s, const std::array<NamePattern, kExpected>& expected, Member&& member) {
  if (!s.take('{')) return false;
  if (s.take('}')) return true;
  for (std::size_t i = 0;; ++i) {
    std::string_view name;
    if (i < kExpected && s.take_name(expected[i])) {
      name = expected[i].name;
    } else if (!s.plain_string(&name) || !s.take(':')) {
      return false;
    }
    if (!member(name)) return false;
    int next = s.take_either(',', '}');
    if (next != 1) return next == 2;
  }
}

// The members' usual order: Maelstrom's envelope, and its clients' request bodies.
constexpr std::array<NamePattern, 3> kEnvelopeOrder = {name_pattern("src"), name_pattern("dest"),
                                                       name_pattern("body")};
constexpr std::array<NamePattern, 4> kBodyOrder = {name_pattern("type"), name_pattern("msg_id"),
                                                   name_pattern("key"), name_pattern("value")};

// The fields every request decoded here sets, as the general parse sets them; the caller adds
// the key and value.
void fill_envelope(Request* req, std::string_view src, std::string_view dest, MsgType type,
                   std::string_view type_name, std::string_view msg_id) {
  req->src.assign(src);
  req->dest.assign(dest);
  req->type = type;
  req->type_name.assign(type_name);
  req->msg_id.assign(msg_id);
  req->key.clear();
  req->node_id.clear();
  req->entry_count = 0;
  req->error = ErrorCode::kNone;
}

// A peer's message: type names none of the node's requests or replies, and src is a node. The
// reader hands its body on whole; the gossip thread's decoder checks every byte of it, so its
// members may have been skipped unchecked here (a body that is not JSON is dropped there, as
// the general parse drops a line that is not JSON).
bool peer_body(std::string_view src, std::string_view dest, std::string_view type,
               std::string_view msg_id, std::string_view body, Request* req) {
  if (type.size() > limits::kTypeBytesMax) return false;
  // A \u escape can decode to invalid UTF-8 (a lone surrogate), which the general parse
  // reports; not every decoder behind the gossip thread checks every string for it.
  if (json::may_decode_invalid_utf8(body)) return false;
  fill_envelope(req, src, dest, MsgType::kPeer, type, msg_id);
  req->value.assign(body);
  return true;
}

}  // namespace

namespace json {

bool plain_scalar(std::string_view text) {
  if (text.empty() || static_cast<unsigned char>(text.front()) <= ' ') return false;
  FlatScanner s(text);
  Token t;
  return s.scalar(&t) && s.at_end();
}

}  // namespace json

bool parse_flat_line(std::string_view line, Request* req) {
  FlatScanner s(line);
  std::string_view src;
  std::string_view dest;
  bool has_src = false;
  bool has_dest = false;
  bool has_body = false;
  Token type, msg_id, key, value, from, to;
  Token ignored;
  // A member the node does not read whose value was skipped unchecked: only a peer's body, which
  // the gossip thread's decoder checks whole, may hold one.
  bool unchecked = false;
  const char* body_begin = nullptr;
  const char* body_end = nullptr;
  auto once = [](Token& t, FlatScanner& sc) { return t.kind == Kind::kNone && sc.scalar(&t); };
  auto body_member = [&](std::string_view name) {
    if (name == "type") return once(type, s);
    if (name == "msg_id") return once(msg_id, s);
    if (name == "key") return once(key, s);
    if (name == "value") return once(value, s);
    if (name == "from") return once(from, s);
    if (name == "to") return once(to, s);
    // node_id, node_ids and entries belong to init and kv_merge: the general parse's.
    if (name == "node_id" || name == "node_ids" || name == "entries") return false;
    FlatScanner probe = s;
    if (probe.scalar(&ignored)) {
      s = probe;
      return true;
    }
    unchecked = true;
    return s.skip_unchecked();
  };
  auto envelope_member = [&](std::string_view name) {
    if (name == "src") {
      if (has_src) return false;
      has_src = true;
      return s.plain_string(&src);
    }
    if (name == "dest") {
      if (has_dest) return false;
      has_dest = true;
      return s.plain_string(&dest);
    }
    if (name == "body") {
      if (has_body) return false;
      has_body = true;
      if (s.peek_ws() != '{') return false;
      body_begin = s.position();
      bool ok = members(s, kBodyOrder, body_member);
      body_end = s.position();
      return ok;
    }
    return s.scalar(&ignored);
  };
  if (!members(s, kEnvelopeOrder, envelope_member)) return false;
  s.skip_ws();
  if (!s.at_end() || !has_src || !has_body) return false;
  if (src.empty() || src.size() > limits::kIdBytesMax) return false;
  if (type.kind != Kind::kString || msg_id.kind != Kind::kInt) return false;

  std::string_view name = type.text;
  MsgType t = classify_type(name, src.front() == 'n');
  if (t == MsgType::kPeer) {
    return peer_body(src, dest, name, msg_id.text,
                     std::string_view(body_begin, static_cast<std::size_t>(body_end - body_begin)),
                     req);
  }
  bool single_key = t == MsgType::kWrite || t == MsgType::kKvRead || t == MsgType::kBenchWrite ||
                    t == MsgType::kRead || t == MsgType::kCas;
  if (!single_key || unchecked) return false;
  if (key.kind == Kind::kString ? key.text.size() > limits::kKeyBytesMax
                                : key.kind != Kind::kInt) {
    return false;
  }
  bool writes = t == MsgType::kWrite || t == MsgType::kBenchWrite;
  if (writes && value.kind == Kind::kNone) return false;
  if (t == MsgType::kCas && (from.kind == Kind::kNone || to.kind == Kind::kNone)) return false;
  // Raw text of a string value: its quotes, which the scan left out, are the bytes around it.
  auto raw = [](const Token& tok) {
    if (tok.kind != Kind::kString) return tok.text;
    return std::string_view(tok.text.data() - 1, tok.text.size() + 2);
  };
  // At most 64 KiB + 2 for a string; the general parse reports a longer one.
  if (raw(value).size() > limits::kValueBytesMax || raw(from).size() > limits::kValueBytesMax ||
      raw(to).size() > limits::kValueBytesMax) {
    return false;
  }

  fill_envelope(req, src, dest, t, name, msg_id.text);
  req->key.push_back(key.kind == Kind::kInt ? key::kIntTag : key::kStringTag);
  req->key.append(key.text);  // an integer's text in plain form is its canonical decimal
  if (writes) req->value.assign(raw(value));
  if (t == MsgType::kCas) {
    req->from.assign(raw(from));
    req->value.assign(raw(to));
  }
  return true;
}

}  // namespace gossip_kv
