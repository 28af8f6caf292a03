// Ring, the replication engine's double-ended queue: it must behave as std::deque does for every
// operation the engine uses, across growth, wrap-around and shrinking, and stop allocating once
// a list hovers around a size.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/ring.h"

namespace gossip_kv {
namespace {

// An element that owns heap memory, so that a moved-from or stale slot shows up as a wrong value.
struct Owned {
  std::unique_ptr<std::string> s;
  Owned() = default;
  explicit Owned(int v) : s(std::make_unique<std::string>(std::to_string(v))) {}
  [[nodiscard]] int value() const { return s ? std::stoi(*s) : -1; }
};

void expect_same(const Ring<Owned>& ring, const std::deque<int>& model, std::uint64_t seed, int step) {
  ASSERT_EQ(ring.size(), model.size()) << "seed " << seed << " step " << step;
  std::size_t i = 0;
  for (const Owned& o : ring) {
    ASSERT_EQ(o.value(), model[i]) << "seed " << seed << " step " << step << " at " << i;
    ASSERT_EQ(ring[i].value(), model[i]);
    ++i;
  }
}

TEST(Ring, EveryOperationMatchesADequeThroughGrowthWrapAndShrinking) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng(seed);
    Ring<Owned> ring;
    std::deque<int> model;
    int next = 0;
    // Phases that grow past several doublings, then drain below a quarter (shrinking), with
    // the head wrapping around the array throughout.
    for (int step = 0; step < 3'000; ++step) {
      bool growing = (step / 500) % 2 == 0;
      std::uint64_t op = rng() % 100;
      if (op < (growing ? 55u : 25u)) {
        ring.emplace_back(next);
        model.push_back(next++);
      } else if (op < 75 && !model.empty()) {
        ring.pop_front();
        model.pop_front();
      } else if (op < 82 && !model.empty()) {
        ring.pop_back();
        model.pop_back();
      } else if (op < 88) {  // insert anywhere (the engine inserts near the back)
        std::size_t at = model.empty() ? 0 : rng() % (model.size() + 1);
        auto it = ring.insert(ring.begin() + static_cast<std::ptrdiff_t>(at), Owned(next));
        EXPECT_EQ(it->value(), next);
        model.insert(model.begin() + static_cast<std::ptrdiff_t>(at), next++);
      } else if (op < 94 && !model.empty()) {  // erase a range anywhere, the front included
        std::size_t from = rng() % model.size();
        if (rng() % 2 == 0) from = 0;
        std::size_t to = from + rng() % (model.size() - from + 1);
        ring.erase(ring.begin() + static_cast<std::ptrdiff_t>(from), ring.begin() + static_cast<std::ptrdiff_t>(to));
        model.erase(model.begin() + static_cast<std::ptrdiff_t>(from), model.begin() + static_cast<std::ptrdiff_t>(to));
      } else if (op < 97 && !model.empty()) {  // erase one
        std::size_t at = rng() % model.size();
        ring.erase(ring.begin() + static_cast<std::ptrdiff_t>(at));
        model.erase(model.begin() + static_cast<std::ptrdiff_t>(at));
      } else if (op < 98) {  // a copy and a move are the same list
        Ring<Owned> copy;
        copy.emplace_back(-5);
        for (const Owned& o : ring) copy.emplace_back(o.value());
        copy.pop_front();
        ring = std::move(copy);
      } else if (op == 98 && !model.empty()) {
        ASSERT_EQ(ring.front().value(), model.front());
        ASSERT_EQ(ring.back().value(), model.back());
      } else if (op == 99 && rng() % 20 == 0) {
        ring.clear();
        model.clear();
      }
      expect_same(ring, model, seed, step);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

TEST(Ring, SearchesAndReverseWalksSeeTheFrontToBackOrder) {
  Ring<int> ring;
  for (int i = 0; i < 40; ++i) ring.push_back(i);
  for (int i = 0; i < 30; ++i) ring.pop_front();  // the head is now mid-array
  for (int i = 40; i < 60; ++i) ring.push_back(i);  // and the back wraps past its end
  ASSERT_EQ(ring.size(), 30u);
  auto it = std::upper_bound(ring.begin(), ring.end(), 44);
  ASSERT_NE(it, ring.end());
  EXPECT_EQ(*it, 45);
  EXPECT_EQ(it - ring.begin(), 15);
  std::vector<int> backwards(ring.rbegin(), ring.rend());
  ASSERT_EQ(backwards.size(), 30u);
  EXPECT_EQ(backwards.front(), 59);
  EXPECT_EQ(backwards.back(), 30);
}

TEST(Ring, ShrinksWhenItDrainsAndKeepsItsArrayWhileItHovers) {
  Ring<int> ring;
  for (int i = 0; i < 100'000; ++i) ring.push_back(i);
  EXPECT_GE(ring.capacity(), 100'000u);
  while (ring.size() > 10) ring.pop_front();
  for (int i = 0; i < 10'000; ++i) {  // and goes on at that size
    ring.push_back(i);
    ring.pop_front();
  }
  EXPECT_LE(ring.capacity(), 64u) << "a drained burst gives its array back";
  // Around a steady size, pushes and pops at the same pace never resize it.
  for (int i = 0; i < 1'000; ++i) ring.push_back(i);
  std::size_t cap = ring.capacity();
  for (int i = 0; i < 100'000; ++i) {
    ring.push_back(i);
    ring.pop_front();
  }
  EXPECT_EQ(ring.capacity(), cap);
  // Emptied at once after a burst (clear(), a large erase), it gives its array back as it goes
  // on being used at a small size.
  for (int i = 0; i < 100'000; ++i) ring.push_back(i);
  ring.clear();
  for (int i = 0; i < 100'000; ++i) {
    ring.push_back(i);
    ring.pop_front();
  }
  EXPECT_LE(ring.capacity(), 64u) << "clear() after a burst";
  for (int i = 0; i < 100'000; ++i) ring.push_back(i);
  ring.erase(ring.begin() + 10, ring.end());
  EXPECT_EQ(ring.back(), 9);
  for (int i = 0; i < 100'000; ++i) {
    ring.push_back(i);
    ring.pop_front();
  }
  EXPECT_LE(ring.capacity(), 64u) << "a large erase";
}

TEST(Ring, AListFilledAndDrainedEveryRoundKeepsItsArray) {
  Ring<int> ring;
  for (int i = 0; i < 1'000; ++i) ring.push_back(i);
  ring.clear();
  std::size_t cap = ring.capacity();
  for (int round = 0; round < 1'000; ++round) {
    int fill = 300 + (round * 7919) % 700;  // 300..999: at times under a quarter of 1,024
    for (int i = 0; i < fill; ++i) ring.push_back(i);
    if (round % 2 == 0) {
      ring.clear();
    } else {
      while (!ring.empty()) ring.erase(ring.begin(), ring.begin() + std::min<std::ptrdiff_t>(100, static_cast<std::ptrdiff_t>(ring.size())));
    }
    ASSERT_EQ(ring.capacity(), cap) << "round " << round << " grew or shrank it";
  }
}

TEST(Ring, PushingOneOfItsOwnElementsCopiesItBeforeGrowing) {
  Ring<std::string> ring;
  for (int i = 0; i < 8; ++i) ring.push_back("element " + std::to_string(i) + " long enough for the heap");
  ASSERT_EQ(ring.size(), ring.capacity()) << "full: the next push grows the array";
  ring.push_back(ring.front());  // as std::deque allows
  ASSERT_EQ(ring.size(), 9u);
  EXPECT_EQ(ring.back(), ring.front());
  EXPECT_EQ(ring.back(), "element 0 long enough for the heap");
}

}  // namespace
}  // namespace gossip_kv
