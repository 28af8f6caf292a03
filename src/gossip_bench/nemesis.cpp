#include "nemesis.h"

#include <algorithm>
#include <numeric>

namespace gossip_bench {
namespace {

std::vector<int> shuffled_nodes(int n, std::mt19937_64& rng) {
  std::vector<int> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 1);
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

std::string names(const std::vector<int>& nodes) {
  std::string s;
  for (int v : nodes) s += (s.empty() ? "n" : " n") + std::to_string(v);
  return s;
}

// Cuts every link between the two sides, both ways.
void split(Fault& f, const std::vector<int>& side_a, const std::vector<int>& side_b) {
  for (int a : side_a) {
    for (int b : side_b) {
      f.cut(a, b);
      f.cut(b, a);
    }
  }
}

void majorities_ring(Fault& f, int n, std::mt19937_64& rng) {
  std::vector<int> ring = shuffled_nodes(n, rng);
  int m = n / 2 + 1;
  for (int p = 0; p < n; ++p) {
    // The window of m consecutive ring nodes whose middle (index m/2) is ring[p].
    std::vector<bool> hears(static_cast<std::size_t>(n) + 1, false);
    for (int j = 0; j < m; ++j) hears[static_cast<std::size_t>(ring[static_cast<std::size_t>(((p - m / 2 + j) % n + n) % n)])] = true;
    for (int from = 1; from <= n; ++from) {
      if (!hears[static_cast<std::size_t>(from)]) f.cut(from, ring[static_cast<std::size_t>(p)]);
    }
  }
  f.description = "ring " + names(ring) + " (each hears " + std::to_string(m) + ")";
}

// A fault on every link: kind, and the share of messages it touches, for people.
Fault link_fault(const char* kind, double probability, int n, const char* what) {
  Fault f(n);
  f.kind = kind;
  f.description = std::to_string(static_cast<int>(probability * 100 + 0.5)) + "% of messages " + what;
  return f;
}

}  // namespace

Fault::Fault(int nodes) : nodes_(nodes), drops_(static_cast<std::size_t>((nodes + 1) * (nodes + 1)), 0) {}

bool Fault::cuts_anything() const {
  return std::any_of(drops_.begin(), drops_.end(), [](std::uint8_t d) { return d != 0; });
}

bool Fault::does_anything() const {
  return cuts_anything() || !paused.empty() || !killed.empty() || loss > 0 || duplicate > 0;
}

Fault make_fault(FaultKind kind, int n, std::mt19937_64& rng) {
  Fault f(n);
  f.kind = to_string(kind);
  std::vector<int> order = shuffled_nodes(n, rng);
  switch (kind) {
    case FaultKind::kOne: {
      std::vector<int> rest(order.begin() + 1, order.end());
      split(f, {order[0]}, rest);
      f.description = "n" + std::to_string(order[0]) + " isolated";
      break;
    }
    case FaultKind::kMajority: {
      auto minority = static_cast<std::ptrdiff_t>(n / 2);
      std::vector<int> small(order.begin(), order.begin() + minority);
      std::vector<int> large(order.begin() + minority, order.end());
      std::sort(small.begin(), small.end());
      std::sort(large.begin(), large.end());
      split(f, small, large);
      f.description = names(small) + " | " + names(large);
      break;
    }
    case FaultKind::kMajoritiesRing:
      majorities_ring(f, n, rng);
      break;
  }
  return f;
}

Fault make_pause(PauseKind kind, int n, std::mt19937_64& rng) {
  Fault f(n);
  f.kind = "pause";
  std::vector<int> order = shuffled_nodes(n, rng);
  // A one-node cluster has nothing to pause against: its only node would serve no one.
  int count = n == 1 ? 0 : kind == PauseKind::kOne ? 1 : std::max(1, (n - 1) / 2);
  f.paused.assign(order.begin(), order.begin() + count);
  std::sort(f.paused.begin(), f.paused.end());
  f.description = names(f.paused) + " paused";
  return f;
}

Fault make_kill(PauseKind kind, int n, std::mt19937_64& rng) {
  Fault f = make_pause(kind, n, rng);
  f.kind = "kill";
  f.killed = std::move(f.paused);
  f.paused.clear();
  f.description = names(f.killed) + " killed, restarted empty on heal";
  return f;
}

Fault make_loss(double probability, int n) {
  Fault f = link_fault("loss", probability, n, "lost");
  f.loss = probability;
  return f;
}

Fault make_duplicate(double probability, int n) {
  Fault f = link_fault("duplicate", probability, n, "delivered twice");
  f.duplicate = probability;
  return f;
}

}  // namespace gossip_bench
