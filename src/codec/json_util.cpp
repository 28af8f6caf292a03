#include "codec/json_util.h"

#include <cstdint>
#include <cstring>

#include <rapidjson/document.h>

#include "gossip_kv/limits.h"

namespace gossip_kv::json {

bool values_equal(std::string_view a, std::string_view b) {
  // Document's operator== recurses once per level: bound the levels before comparing. The
  // iterative parser itself uses no stack per level.
  if (nesting_depth(a, limits::kValueDepthMax) > limits::kValueDepthMax ||
      nesting_depth(b, limits::kValueDepthMax) > limits::kValueDepthMax) {
    return false;
  }
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                              rapidjson::kParseValidateEncodingFlag;
  // Both documents and their parse stack live in per-thread buffers, so that a cas on the
  // request path allocates nothing for values of up to a few KiB (tests/alloc); larger ones
  // spill into heap chunks, freed on return.
  using Pool = rapidjson::MemoryPoolAllocator<>;
  using Doc = rapidjson::GenericDocument<rapidjson::UTF8<>, Pool, Pool>;
  struct Buffers {
    alignas(16) char values[16 * 1024];
    alignas(16) char stack[4 * 1024];
  };
  thread_local Buffers buffers;
  Pool values(buffers.values, sizeof buffers.values);
  Pool stack(buffers.stack, sizeof buffers.stack);
  Doc da(&values, 256, &stack);
  Doc db(&values, 256, &stack);
  da.Parse<kFlags>(a.data(), a.size());
  db.Parse<kFlags>(b.data(), b.size());
  if (da.HasParseError() || db.HasParseError()) return false;
  return da == db;
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t n = s.size();
  // Most text is ASCII only: one test for the whole of it.
  std::uint64_t high = 0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, p + i, 8);
    high |= word;
  }
  for (; i < n; ++i) high |= p[i];
  if ((high & 0x8080808080808080ull) == 0) return true;
  i = 0;
  while (i < n) {
    // ASCII eight bytes at a time: most strings (keys, types, ids) are ASCII only.
    if (n - i >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // Ranges of the second byte per lead byte (Unicode 15, table 3-7).
    unsigned lo = 0x80;
    unsigned hi = 0xBF;
    std::size_t len = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // U+D800..U+DFFF would follow
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (n - i < len) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0u) != 0x80u) return false;
    }
    i += len;
  }
  return true;
}

std::size_t nesting_depth(std::string_view text, std::size_t stop_above) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > stop_above) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace gossip_kv::json
