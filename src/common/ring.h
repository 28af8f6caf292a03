// A double-ended queue in one power-of-two array: what the replication engine's FIFO lists
// (writes in flight, versions held, acknowledgements owed) need from std::deque, without its
// allocation of a 512-byte block every few pushes and its free as the front passes one. Once
// grown to a list's working size, pushing and popping allocate nothing. It gives memory back
// as it is used below a quarter full: after kSparseOpsToShrink pops or erases that leave it so,
// with no push filling it to a quarter in between, it halves (down to kKeptSlots). So a burst's
// peak is not held for good, while a list that fills and drains every round (acknowledgements
// owed, then sent and cleared) keeps its array instead of growing it again each round.
//
// Not a general container: T must be default-constructible and move-assignable (slots are
// constructed up front), and iterators are invalidated by every push, insert, erase and pop.
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <memory>
#include <utility>

#include "common/assert.h"

namespace gossip_kv {

template <typename T>
class Ring {
 public:
  // A ring of at most this many slots is never shrunk: the lists' common sizes stay in place.
  static constexpr std::size_t kKeptSlots = 64;
  static constexpr std::size_t kSparseOpsToShrink = 64;

  template <bool kConst>
  class Iter {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = std::conditional_t<kConst, const T*, T*>;
    using reference = std::conditional_t<kConst, const T&, T&>;
    using RingPtr = std::conditional_t<kConst, const Ring*, Ring*>;

    Iter() = default;
    Iter(RingPtr ring, std::size_t i) : ring_(ring), i_(i) {}
    operator Iter<true>() const { return {ring_, i_}; }  // NOLINT: as std's iterators convert

    reference operator*() const { return (*ring_)[i_]; }
    pointer operator->() const { return &(*ring_)[i_]; }
    reference operator[](difference_type n) const { return (*ring_)[i_ + static_cast<std::size_t>(n)]; }
    Iter& operator++() { ++i_; return *this; }
    Iter& operator--() { --i_; return *this; }
    Iter operator++(int) { Iter t = *this; ++i_; return t; }
    Iter operator--(int) { Iter t = *this; --i_; return t; }
    Iter& operator+=(difference_type n) { i_ += static_cast<std::size_t>(n); return *this; }
    Iter& operator-=(difference_type n) { i_ -= static_cast<std::size_t>(n); return *this; }
    friend Iter operator+(Iter a, difference_type n) { return a += n; }
    friend Iter operator+(difference_type n, Iter a) { return a += n; }
    friend Iter operator-(Iter a, difference_type n) { return a -= n; }
    friend difference_type operator-(const Iter& a, const Iter& b) {
      return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
    }
    friend bool operator==(const Iter& a, const Iter& b) { return a.i_ == b.i_; }
    friend bool operator!=(const Iter& a, const Iter& b) { return a.i_ != b.i_; }
    friend bool operator<(const Iter& a, const Iter& b) { return a.i_ < b.i_; }
    friend bool operator>(const Iter& a, const Iter& b) { return a.i_ > b.i_; }
    friend bool operator<=(const Iter& a, const Iter& b) { return a.i_ <= b.i_; }
    friend bool operator>=(const Iter& a, const Iter& b) { return a.i_ >= b.i_; }

   private:
    friend class Ring;
    RingPtr ring_ = nullptr;
    std::size_t i_ = 0;  // from the front
  };
  using iterator = Iter<false>;
  using const_iterator = Iter<true>;
  using reverse_iterator = std::reverse_iterator<iterator>;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;
  using value_type = T;

  Ring() = default;
  Ring(Ring&& other) noexcept { swap(other); }
  Ring& operator=(Ring&& other) noexcept {
    Ring(std::move(other)).swap(*this);
    return *this;
  }
  Ring(const Ring& other) { *this = other; }
  Ring& operator=(const Ring& other) {
    if (this == &other) return *this;
    clear();
    for (const T& v : other) push_back(v);
    return *this;
  }
  ~Ring() = default;

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] std::size_t capacity() const { return cap_; }

  T& operator[](std::size_t i) {
    GOSSIP_KV_ASSERT(i < size_);
    return slot(i);
  }
  const T& operator[](std::size_t i) const {
    GOSSIP_KV_ASSERT(i < size_);
    return slot(i);
  }
  T& front() { return (*this)[0]; }
  const T& front() const { return (*this)[0]; }
  T& back() { return (*this)[size_ - 1]; }
  const T& back() const { return (*this)[size_ - 1]; }

  iterator begin() { return {this, 0}; }
  iterator end() { return {this, size_}; }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size_}; }
  reverse_iterator rbegin() { return reverse_iterator(end()); }
  reverse_iterator rend() { return reverse_iterator(begin()); }
  const_reverse_iterator rbegin() const { return const_reverse_iterator(end()); }
  const_reverse_iterator rend() const { return const_reverse_iterator(begin()); }

  template <typename... Args>
  T& emplace_back(Args&&... args) {
    T value(std::forward<Args>(args)...);  // before a resize: args may name an element
    if (size_ == cap_) resize_to(cap_ == 0 ? 8 : 2 * cap_);
    T& last = slot(size_);
    last = std::move(value);
    ++size_;
    if (size_ >= cap_ / 4) sparse_ops_ = 0;
    return last;
  }
  void push_back(const T& v) { emplace_back(v); }
  void push_back(T&& v) { emplace_back(std::move(v)); }

  void pop_front() {
    GOSSIP_KV_ASSERT(size_ > 0);
    slot(0) = T();  // what it owned goes now, as with std::deque
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
    shrink_if_sparse();
  }
  void pop_back() {
    GOSSIP_KV_ASSERT(size_ > 0);
    slot(size_ - 1) = T();
    --size_;
    shrink_if_sparse();
  }

  // Inserts before pos, moving the elements after it one slot on.
  iterator insert(const_iterator pos, T v) {
    std::size_t at = pos.i_;
    GOSSIP_KV_ASSERT(at <= size_);
    emplace_back();
    for (std::size_t i = size_ - 1; i > at; --i) slot(i) = std::move(slot(i - 1));
    slot(at) = std::move(v);
    return {this, at};
  }

  // Erases [first, last): from the front by moving the head, elsewhere by moving the rest up.
  iterator erase(const_iterator first, const_iterator last) {
    std::size_t from = first.i_, to = last.i_;
    GOSSIP_KV_ASSERT(from <= to && to <= size_);
    std::size_t n = to - from;
    if (n == 0) return {this, from};
    if (from == 0) {
      for (std::size_t i = 0; i < n; ++i) slot(i) = T();
      head_ = (head_ + n) & (cap_ - 1);
    } else {
      for (std::size_t i = to; i < size_; ++i) slot(i - n) = std::move(slot(i));
      for (std::size_t i = size_ - n; i < size_; ++i) slot(i) = T();
    }
    size_ -= n;
    shrink_if_sparse();
    return {this, from};
  }
  iterator erase(const_iterator pos) { return erase(pos, pos + 1); }

  void clear() { erase(begin(), end()); }

  void swap(Ring& other) noexcept {
    std::swap(slots_, other.slots_);
    std::swap(cap_, other.cap_);
    std::swap(head_, other.head_);
    std::swap(size_, other.size_);
    std::swap(sparse_ops_, other.sparse_ops_);
  }

 private:
  T& slot(std::size_t i) { return slots_[(head_ + i) & (cap_ - 1)]; }
  const T& slot(std::size_t i) const { return slots_[(head_ + i) & (cap_ - 1)]; }
  // Counts a pop or erase that left the ring under a quarter full; the kSparseOpsToShrink-th
  // since it last was fuller halves it.
  void shrink_if_sparse() {
    if (cap_ <= kKeptSlots || size_ >= cap_ / 4) return;
    if (++sparse_ops_ < kSparseOpsToShrink) return;
    sparse_ops_ = 0;
    resize_to(cap_ / 2);
  }
  void resize_to(std::size_t cap) {
    auto slots = std::make_unique<T[]>(cap);
    for (std::size_t i = 0; i < size_; ++i) slots[i] = std::move(slot(i));
    slots_ = std::move(slots);
    cap_ = cap;
    head_ = 0;
  }

  std::unique_ptr<T[]> slots_;
  std::size_t cap_ = 0;  // a power of two, or 0
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::size_t sparse_ops_ = 0;  // pops and erases under a quarter full since it was fuller
};

}  // namespace gossip_kv
