// Small JSON helpers shared by the store and the codec.
#pragma once

#include <cstddef>
#include <string_view>

namespace gossip_kv::json {

// True when two raw JSON texts denote the same JSON value (numbers compare by value, so 1 and
// 1.0 are equal; object members compare regardless of order). Invalid JSON, and JSON nested
// deeper than limits::kValueDepthMax, equals nothing (the node never stores such values).
bool values_equal(std::string_view a, std::string_view b);

// The position of the value after a member name ended at pos: skips JSON whitespace and the
// colon. REQUIRES: pos <= text.size(). Inline: the codec calls it for every captured member.
inline std::size_t skip_to_value(std::string_view text, std::size_t pos) {
  while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\r' ||
                               text[pos] == '\n' || text[pos] == ':')) {
    ++pos;
  }
  return pos;
}

// True when s is well-formed UTF-8 (RFC 3629): no overlong forms, no encoded surrogates
// (U+D800..U+DFFF, which a lone "\udc00" escape decodes to), nothing above U+10FFFF.
bool valid_utf8(std::string_view s);

// False when no string decoded from raw JSON text can be invalid UTF-8, given that the raw bytes
// are valid UTF-8 (the line parser checks the whole line first; the nested parsers pass
// kParseValidateEncodingFlag): then only a \u escape (a lone surrogate, "\udc00") can produce
// invalid bytes, and the text has none. One memchr-speed scan instead of a check per decoded
// string.
inline bool may_decode_invalid_utf8(std::string_view raw_json) {
  return raw_json.find("\\u") != std::string_view::npos;
}

// The node refuses a value holding a raw carriage return (JSON whitespace between tokens):
// values come back exactly as written, and a reader that breaks lines at CR (Java's readLine,
// as Maelstrom reads a node) would see the reply split in two. Tabs are kept.
inline constexpr std::string_view kRawCrInValue =
    "value holds a raw carriage return between tokens (it would split the reply line)";

// True when text is exactly one JSON scalar in plain form: true, false, null, an integer of at
// most 18 digits, or a string without escapes or control characters. Such text is valid JSON
// (given valid UTF-8) without a parse; false says nothing (parse it to know). Defined in
// flat_line.cpp: it is the line fast path's own scalar rule.
bool plain_scalar(std::string_view text);

// The deepest nesting of arrays and objects in JSON text (0 for a scalar), counted without
// parsing; stops counting once it passes `stop_above`.
std::size_t nesting_depth(std::string_view text, std::size_t stop_above);

}  // namespace gossip_kv::json
