// A small JSON helper shared by the store and the codec.
#pragma once

#include <string_view>

namespace gossip_kv::json {

// True when two raw JSON texts denote the same JSON value (numbers compare by value, so 1 and
// 1.0 are equal; object members compare regardless of order). Invalid JSON equals nothing.
bool values_equal(std::string_view a, std::string_view b);

}  // namespace gossip_kv::json
