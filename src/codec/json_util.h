// Small JSON helpers shared by the store and the codec.
#pragma once

#include <string>
#include <string_view>

namespace gossip_kv::json {

// True when two raw JSON texts denote the same JSON value (numbers compare by value, so 1 and
// 1.0 are equal; object members compare regardless of order). Invalid JSON equals nothing.
bool values_equal(std::string_view a, std::string_view b);

// Appends s to out as a JSON string literal, quotes included.
void append_quoted(std::string_view s, std::string& out);

}  // namespace gossip_kv::json
