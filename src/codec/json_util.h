// Small JSON helpers shared by the store and the codec.
#pragma once

#include <cstddef>
#include <string_view>

namespace gossip_kv::json {

// True when two raw JSON texts denote the same JSON value (numbers compare by value, so 1 and
// 1.0 are equal; object members compare regardless of order). Invalid JSON equals nothing.
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

}  // namespace gossip_kv::json
