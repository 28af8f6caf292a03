// Keys are JSON strings or integers, and the key 1 and the key "1" differ. Inside the node a key
// is one byte string: a tag ('s' or 'i') then the string's UTF-8 bytes or the integer's decimal
// digits. The encoding is what the store hashes, compares and stores.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gossip_kv::key {

inline constexpr char kStringTag = 's';
inline constexpr char kIntTag = 'i';

// Appends the encoding of a string key to out.
void encode_string(std::string_view s, std::string& out);
// Appends the encoding of an integer key to out.
void encode_int(std::int64_t i, std::string& out);

// True when the encoded key is an integer key.
inline bool is_int(std::string_view encoded) { return !encoded.empty() && encoded[0] == kIntTag; }
// The string's bytes or the integer's digits.
inline std::string_view body(std::string_view encoded) { return encoded.substr(1); }

// 64-bit hash of an encoded key (xxh3): picks the shard and the worker.
std::uint64_t hash(std::string_view encoded);

}  // namespace gossip_kv::key
