#include "gossip_kv/key.h"

#include <charconv>
#include <xxhash.h>

namespace gossip_kv::key {

void encode_string(std::string_view s, std::string& out) {
  out.push_back(kStringTag);
  out.append(s);
}

void encode_int(std::int64_t i, std::string& out) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, i);
  out.push_back(kIntTag);
  out.append(digits, end);
}

std::uint64_t hash(std::string_view encoded) {
  return XXH3_64bits(encoded.data(), encoded.size());
}

}  // namespace gossip_kv::key
