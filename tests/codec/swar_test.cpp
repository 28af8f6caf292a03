// swar: each flag function against the plain byte test it replaces, for every byte value at
// every position of a word; the digit reader against std::from_chars.
#include "codec/swar.h"

#include <charconv>
#include <cstdint>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace gossip_kv {
namespace {

// The first byte of the eight that `stops` by a plain test, or 8 for none.
template <typename Stops>
std::size_t first_by_bytes(const char* p, Stops stops) {
  for (std::size_t i = 0; i < 8; ++i) {
    if (stops(static_cast<unsigned char>(p[i]))) return i;
  }
  return 8;
}

template <typename Flags>
std::size_t first_by_word(const char* p, Flags flags) {
  std::uint64_t f = flags(swar::load8(p));
  return f == 0 ? 8 : swar::first_flagged(f);
}

// Every byte value at every position, in front of bytes that could themselves be flagged
// falsely (the byte above a match borrows), and behind bytes that match nothing.
TEST(Swar, TheFirstFlaggedByteIsTheFirstMatch) {
  auto stop = [](unsigned char c) { return c == '"' || c == '\\' || c < 0x20; };
  for (char filler : {'a', '!', '#', ' ', '\x80', '\xff', '\x7f', '\x01'}) {
    for (int pos = 0; pos < 8; ++pos) {
      for (int b = 0; b < 256; ++b) {
        char w[8];
        for (char& c : w) c = filler;
        w[pos] = static_cast<char>(b);
        // What follows a match may be anything; make it a byte that matches on its own too.
        if (pos < 7) w[pos + 1] = static_cast<char>(b ^ 1);
        ASSERT_EQ(first_by_word(w, swar::string_stops), first_by_bytes(w, stop))
            << "filler " << int(static_cast<unsigned char>(filler)) << " byte " << b << " at " << pos;
        ASSERT_EQ(first_by_word(w, [](std::uint64_t x) { return swar::bytes_equal(x, '"'); }),
                  first_by_bytes(w, [](unsigned char c) { return c == '"'; }));
        ASSERT_EQ(first_by_word(w, swar::control_bytes),
                  first_by_bytes(w, [](unsigned char c) { return c < 0x20; }));
      }
    }
  }
}

TEST(Swar, EightDigitsIsExactlyEightAsciiDigits) {
  for (int pos = 0; pos < 8; ++pos) {
    for (int b = 0; b < 256; ++b) {
      char w[9] = "31415926";
      w[pos] = static_cast<char>(b);
      bool digit = b >= '0' && b <= '9';
      ASSERT_EQ(swar::eight_digits(swar::load8(w)), digit) << "byte " << b << " at " << pos;
    }
  }
}

TEST(Swar, EightDigitsValueAgreesWithFromChars) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    std::string s = std::to_string(rng() % 100'000'000);
    s = std::string(8 - s.size(), '0') + s;  // leading zeros too
    std::uint64_t want = 0;
    std::from_chars(s.data(), s.data() + 8, want);
    ASSERT_EQ(swar::eight_digits_value(swar::load8(s.data())), want) << s;
  }
  for (const char* s : {"00000000", "99999999", "10000000", "00000001"}) {
    std::uint64_t want = 0;
    std::from_chars(s, s + 8, want);
    EXPECT_EQ(swar::eight_digits_value(swar::load8(s)), want) << s;
  }
}

}  // namespace
}  // namespace gossip_kv
