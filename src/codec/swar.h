// swar: eight bytes at a time in one 64-bit word, for the JSON scanners (the line decoder's
// fast path, flat_line.cpp, and the peer decoder's, peer_wire.cpp).
//
// Each flag function sets the high bit of every byte that matches. The lowest flagged byte is
// always a true match; bytes above it may be flagged falsely (a borrow runs upwards), so
// callers read only the first: first_flagged(). Little-endian: the lowest byte is the first
// in memory.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace gossip_kv::swar {

static_assert(std::endian::native == std::endian::little, "the SWAR scans assume little-endian");

inline constexpr std::uint64_t kOnes = 0x0101010101010101ull;
inline constexpr std::uint64_t kHighs = 0x8080808080808080ull;

// REQUIRES: p points at 8 readable bytes.
inline std::uint64_t load8(const char* p) {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

constexpr std::uint64_t zero_bytes(std::uint64_t w) { return (w - kOnes) & ~w & kHighs; }
constexpr std::uint64_t bytes_equal(std::uint64_t w, char c) {
  return zero_bytes(w ^ (kOnes * static_cast<unsigned char>(c)));
}
constexpr std::uint64_t control_bytes(std::uint64_t w) {  // below 0x20 (not 0x80 and up)
  return (w - kOnes * 0x20) & ~w & kHighs;
}
// Where a run of a JSON string's plain bytes stops: a quote, a backslash or a control byte.
constexpr std::uint64_t string_stops(std::uint64_t w) {
  return bytes_equal(w, '"') | bytes_equal(w, '\\') | control_bytes(w);
}
// The index of the lowest flagged byte. REQUIRES: flags != 0.
constexpr std::size_t first_flagged(std::uint64_t flags) {
  return static_cast<std::size_t>(std::countr_zero(flags)) / 8;
}

// Eight ASCII digits? (Each byte's high nibble is 3, and adding 6 does not carry into it.)
constexpr bool eight_digits(std::uint64_t w) {
  return ((w & 0xF0F0F0F0F0F0F0F0ull) | (((w + kOnes * 0x06) & 0xF0F0F0F0F0F0F0F0ull) >> 4)) ==
         0x3333333333333333ull;
}
// Their value, the first byte the most significant digit. REQUIRES: eight_digits(w).
constexpr std::uint64_t eight_digits_value(std::uint64_t w) {
  w -= kOnes * '0';
  w = w * 10 + (w >> 8);  // pairs of digits, in every other byte
  return (((w & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
          (((w >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >>
         32;
}

}  // namespace gossip_kv::swar
