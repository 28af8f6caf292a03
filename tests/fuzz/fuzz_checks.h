// Invariant checks shared by the fuzz targets (tests/fuzz/*_fuzz.cpp). Each check aborts with a
// message when the node's output or decoded state breaks a rule, so libFuzzer records the input.
// The UTF-8 check is written here independently of gossip_kv::json::valid_utf8.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include "gossip_kv/limits.h"

namespace gossip_kv::fuzz {

[[noreturn]] inline void violated(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz invariant violated: %s: %.*s\n", what,
               static_cast<int>(detail.size() > 400 ? 400 : detail.size()), detail.data());
  std::abort();
}
#define FUZZ_CHECK(cond, detail) \
  do {                           \
    if (!(cond)) ::gossip_kv::fuzz::violated(#cond, (detail)); \
  } while (false)

// Strict RFC 3629 UTF-8.
inline bool strict_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                  : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    std::uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1Fu : n == 3 ? c & 0x0Fu : c & 0x07u;
    for (std::size_t k = 1; k < n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

// SAX pass checking that every decoded string and member name is valid UTF-8 (a \udc00 escape
// decodes to invalid bytes even though the text itself is ASCII) and measuring nesting.
struct StrictHandler : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, StrictHandler> {
  bool ok = true;
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool String(const char* s, rapidjson::SizeType n, bool) {
    ok = ok && strict_utf8(std::string_view(s, n));
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType n, bool c) { return String(s, n, c); }
  bool StartObject() { return open(); }
  bool StartArray() { return open(); }
  bool EndObject(rapidjson::SizeType) { return --depth, true; }
  bool EndArray(rapidjson::SizeType) { return --depth, true; }
  bool open() {
    if (++depth > deepest) deepest = depth;
    return true;
  }
};

struct JsonFacts {
  bool valid = false;       // parses as one JSON text
  bool strings_ok = false;  // every decoded string valid UTF-8
  std::size_t depth = 0;    // deepest nesting (0: a scalar)
};

inline JsonFacts json_facts(std::string_view text) {
  rapidjson::MemoryStream is(text.data(), text.size());
  StrictHandler h;
  rapidjson::Reader r;
  // Not kParseFullPrecisionFlag: its strtod calls __builtin_clzll(0) on "0e55" (UB).
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                              rapidjson::kParseValidateEncodingFlag;
  JsonFacts f;
  f.valid = !r.Parse<kFlags>(is, h).IsError();
  f.strings_ok = h.ok;
  f.depth = h.deepest;
  return f;
}

// One rendered output line: valid UTF-8, exactly one '\n' (at the end), one JSON object with
// string src and dest and an object body, and no invalid decoded string.
inline void check_output_line(std::string_view line) {
  FUZZ_CHECK(!line.empty() && line.back() == '\n', line);
  std::string_view text = line.substr(0, line.size() - 1);
  FUZZ_CHECK(text.find('\n') == std::string_view::npos, line);
  FUZZ_CHECK(strict_utf8(text), line);
  JsonFacts f = json_facts(text);
  FUZZ_CHECK(f.valid && f.strings_ok, line);
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  FUZZ_CHECK(!d.HasParseError() && d.IsObject(), line);
  FUZZ_CHECK(d.HasMember("src") && d["src"].IsString(), line);
  FUZZ_CHECK(d.HasMember("dest") && d["dest"].IsString(), line);
  FUZZ_CHECK(d.HasMember("body") && d["body"].IsObject(), line);
  FUZZ_CHECK(d["body"].HasMember("msg_id") && d["body"]["msg_id"].IsUint64(), line);
}

}  // namespace gossip_kv::fuzz
